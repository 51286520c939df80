"""Validation records: each block's errors against held-out SPICE runs (``validation.json``).

A block's characterization reports how far its surrogate is from SPICE on runs not used
for fitting. :class:`BlockValidation` holds that report typed: the count every block has
(``n_heldout``), the headline error in the block's own unit (output error in ADC LSBs for
the analog blocks, code agreement for the ADC, bound violations for the sense row) and the
block-specific rest as a read-only mapping. :meth:`BlockValidation.to_dict` gives back the
dict it was read from, key for key and in the same order, so ``validation.json`` and the
validation summary in ``library.json`` are written byte for byte as before.

The records are the characterization's report to a reader, never an input of the engine: a
metric that was not measured is ``null`` (``None``) and a NaN is kept as it is. Only the
shape is checked — a JSON object per block, ``n_heldout`` a count, each headline metric a
number or null — so that a malformed file is a :class:`~cosim.errors.LibraryError` naming
the file, the block and the key, not a ``KeyError`` in a notebook.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar

from cosim.errors import LibraryError
from cosim.fileio import read_json_bounded
from cosim.library.common import LIBRARY_JSON_MAX_BYTES, short, show

#: A value of ``validation.json``: a JSON scalar, list or object.
JsonValue = Any

__all__ = [
    "BlockValidation",
    "read_validation",
    "validation_from_dict",
    "validation_to_dict",
]


def _is_number(value: Any) -> bool:
    # NumPy scalars included: a characterization's own dict may hold them
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _is_count(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and int(value) >= 0


@dataclass(frozen=True)
class BlockValidation:
    """One block's held-out validation against SPICE.

    Parameters
    ----------
    n_heldout
        Held-out SPICE vectors (crossbar), sweep points (TIA, subtractor, sense row) or
        conversions (ADC) the surrogate was compared on; every block has it.
    rms_error_lsb, max_error_lsb
        Analog blocks (crossbar, TIA, subtractor): RMS and largest output error over the
        linear range, in ADC LSBs; ``None`` for the other blocks or where not measured.
    code_agreement
        The ADC: fraction (0..1) of held-out conversions whose code equals SPICE's.
    bound_violations
        The sense row: skipped conversions whose SPICE code needed the skipped MSBs (count).
    mean_skipped_bits_heldout
        The sense row: mean number of MSB cycles skipped on the held-out points.
    extras
        Every other figure of the block (its own keys and units: ``by_case``, ``monte_carlo``,
        ``thresholds_v``, ...), read-only, as JSON values.
    key_order
        The order of the keys as they were read (:meth:`from_dict`), which :meth:`to_dict`
        writes back; empty for a record built in code (headline fields first, then
        ``extras``). Not part of equality.
    """

    n_heldout: int
    rms_error_lsb: float | None = None
    max_error_lsb: float | None = None
    code_agreement: float | None = None
    bound_violations: int | None = None
    mean_skipped_bits_heldout: float | None = None
    extras: Mapping[str, JsonValue] = field(default_factory=lambda: MappingProxyType({}))
    key_order: tuple[str, ...] = field(default=(), compare=False, repr=False)

    #: the headline fields after ``n_heldout``: a number or ``None`` each
    METRICS: ClassVar[tuple[str, ...]] = (
        "rms_error_lsb",
        "max_error_lsb",
        "code_agreement",
        "bound_violations",
        "mean_skipped_bits_heldout",
    )

    def __post_init__(self) -> None:
        if not _is_count(self.n_heldout):
            raise ValueError(
                f"n_heldout must be a count (an integer >= 0), not {short(self.n_heldout)}"
            )
        for name in self.METRICS:
            value = getattr(self, name)
            ok = value is None or (
                _is_count(value) if name == "bound_violations" else _is_number(value)
            )
            if not ok:
                want = "a count" if name == "bound_violations" else "a number"
                raise ValueError(f"{name} must be {want} or null, not {short(value, 30)}")
        if not isinstance(self.extras, Mapping) or not all(isinstance(k, str) for k in self.extras):
            raise ValueError("extras must map names to JSON values")
        named = {f.name for f in fields(self)} - {"extras", "key_order"}
        clash = sorted(named & set(self.extras))
        if clash:
            raise ValueError(f"extras repeat the headline field {short(clash[0])}")
        # a read-only copy: a record does not change under its reader
        object.__setattr__(self, "extras", MappingProxyType(dict(self.extras)))

    def to_dict(self) -> dict[str, JsonValue]:
        """The record as ``validation.json`` stores it (same keys, values and order as the
        dict it was read from; headline metrics that are ``None`` and were not read are
        left out)."""
        present = {"n_heldout": self.n_heldout}
        for name in self.METRICS:
            value = getattr(self, name)
            if value is not None or name in self.key_order:
                present[name] = value
        present.update(self.extras)
        order = [k for k in self.key_order if k in present]
        order += [k for k in present if k not in order]
        return {k: present[k] for k in order}

    @classmethod
    def from_dict(cls, d: Mapping[str, JsonValue], where: str = "validation") -> BlockValidation:
        """A record from one block's validation dict (a characterization's, or
        ``validation.json``'s entry).

        Raises
        ------
        LibraryError
            ``d`` is not an object, lacks ``n_heldout``, or a headline field has the wrong
            type; the message names ``where`` and the key.
        """
        if not isinstance(d, Mapping):
            raise LibraryError(f"{where} must be a JSON object, not {short(d, 30)}")
        if "n_heldout" not in d:
            raise LibraryError(f"{where} lacks 'n_heldout' (the number of held-out runs)")
        bad = next((k for k in d if not isinstance(k, str)), None)
        if bad is not None:
            raise LibraryError(f"{where}: key {short(bad, 30)} is not a name")
        named = {"n_heldout", *cls.METRICS}
        try:
            return cls(
                **{k: v for k, v in d.items() if k in named},
                extras={k: v for k, v in d.items() if k not in named},
                key_order=tuple(d),
            )
        except ValueError as exc:
            raise LibraryError(f"{where}: {show(exc)}") from None


def validation_from_dict(
    doc: Mapping[str, Any], where: str = "validation"
) -> dict[str, BlockValidation]:
    """Records by block name from ``{block: validation dict}`` (``validation.json``).

    Raises
    ------
    LibraryError
        ``doc`` is not an object or a block's entry is malformed; the message names
        ``where``, the block and the key.
    """
    if not isinstance(doc, Mapping):
        raise LibraryError(f"{where} is corrupt (not a JSON object)")
    out: dict[str, BlockValidation] = {}
    for name, entry in doc.items():
        if not isinstance(name, str):
            raise LibraryError(f"{where}: block name {short(name, 30)} is not a name")
        if isinstance(entry, BlockValidation):
            out[name] = entry
        else:
            out[name] = BlockValidation.from_dict(entry, f"{where}: block '{show(name, 60)}'")
    return out


def validation_to_dict(records: Mapping[str, BlockValidation]) -> dict[str, dict[str, JsonValue]]:
    """``{block: record.to_dict()}``: the content of ``validation.json``."""
    return {name: r.to_dict() for name, r in records.items()}


def read_validation(path: str | Path) -> dict[str, BlockValidation]:
    """The records of the library directory ``path`` (``validation.json``, bounded: a
    regular file of at most :data:`~cosim.library.LIBRARY_JSON_MAX_BYTES`); an empty dict
    where the library has none.

    Raises
    ------
    LibraryError
        The file cannot be read, is no JSON, or is malformed (naming the file, the block
        and the key).
    """
    vfile = Path(path) / "validation.json"
    if not os.path.lexists(vfile):
        return {}
    doc = read_json_bounded(
        vfile, max_bytes=LIBRARY_JSON_MAX_BYTES, what="library file", error=LibraryError
    )
    return validation_from_dict(doc, show(vfile))
