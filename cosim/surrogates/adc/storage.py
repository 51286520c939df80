"""What every fitted ADC model (:class:`~cosim.surrogates.adc.sar.SarAdcModel`,
:class:`~cosim.surrogates.adc.flash.FlashAdcModel`) does the same way: its library entry
(``to_dict``/``from_dict``), the per-resolution table the library stores
(``extra["by_bits"]``), the nominal a Monte-Carlo draw starts from, and the check of the
codes an energy query names.

Each architecture passes its own block name and noun, so the messages name the converter.

Examples
--------
>>> from cosim.surrogates.adc.flash import FlashAdcModel
>>> d = model_to_dict(FlashAdcModel.ideal(1, 1.0), ("bits", "v_ref_v"))
>>> d["kind"], d["bits"]
('flash_adc', 1)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Protocol, TypeVar

import numpy as np

from cosim.errors import LibraryError
from cosim.surrogates.base import as_float_array, require_keys


class StoredModel(Protocol):
    """A fitted ADC model as the library stores it."""

    kind: ClassVar[str]

    @property
    def bits(self) -> int: ...
    @property
    def v_ref_v(self) -> float: ...


M = TypeVar("M", bound=StoredModel)


def model_to_dict(model: StoredModel, keys: tuple[str, ...]) -> dict[str, Any]:
    """``kind`` and the fields ``keys`` of ``model``, arrays copied (JSON-able; see
    :mod:`cosim.surrogates.base`)."""
    out: dict[str, Any] = {"kind": model.kind}
    for k in keys:
        v = getattr(model, k)
        out[k] = np.array(v) if isinstance(v, np.ndarray) else v
    return out


def model_from_dict(cls: type[M], d: Mapping[str, Any], keys: tuple[str, ...]) -> M:
    """Rebuild a ``cls`` from :func:`model_to_dict` output; :class:`LibraryError` naming
    the ``cls.kind`` entry on a bad one."""
    block = cls.kind
    if not isinstance(d, Mapping):
        raise LibraryError(f"the {block} entry in the surrogate library is not a table")
    require_keys(dict(d), ("kind", *keys), f"the {block} model")
    if d["kind"] != cls.kind:
        raise LibraryError(f"expected a '{cls.kind}' surrogate, found '{d['kind']}'")
    vals: dict[str, Any] = {}
    for k in keys:
        arr = as_float_array(d[k], f"{block}.{k}")
        vals[k] = arr if arr.ndim else float(arr)
    bits = vals["bits"]
    if not isinstance(bits, float) or bits != int(bits):
        raise LibraryError(f"{block}.bits = {bits!r} is not an integer")
    vals["bits"] = int(bits)
    try:
        return cls(**vals)
    except ValueError as exc:
        raise LibraryError(f"{block} model in the surrogate library: {exc}") from None


def models_by_bits_table(
    cls: type[M],
    extra: Mapping[str, Any],
    bits: int | None,
    *,
    noun: str,
    min_bits: int,
    max_bits: int,
    check_bits: Callable[[Any, str], int],
) -> dict[int, M]:
    """The nominal ``cls`` model at every resolution stored in a block's
    ``extra["by_bits"]`` (``{"1": model.to_dict(), ...}``), ascending; every resolution
    from ``min_bits`` up to ``bits`` (default the highest stored) must be there.
    ``noun`` ("ADC model", ...) names the models in the errors."""
    block = cls.kind
    if not isinstance(extra, Mapping) or "by_bits" not in extra:
        raise LibraryError(
            f"the {block} block of the surrogate library has no per-resolution {noun}s "
            "(extra.by_bits); it predates them — re-run cosim characterize"
        )
    table = extra["by_bits"]
    if not isinstance(table, Mapping) or not table:
        raise LibraryError(f"the {block} block's by_bits entry is not a non-empty table")
    models: dict[int, M] = {}
    for key, d in table.items():
        try:
            n = int(key)
        except (TypeError, ValueError):
            raise LibraryError(
                f"the {block} block's by_bits table has a key {key!r} that is not a resolution"
            ) from None
        if not min_bits <= n <= max_bits or str(n) != str(key).strip():
            raise LibraryError(
                f"the {block} block's by_bits table has a key {key!r}; keys are resolutions "
                f"{min_bits}..{max_bits}"
            )
        try:
            m = model_from_dict(cls, d, cls._KEYS)  # type: ignore[attr-defined]
        except LibraryError as exc:
            raise LibraryError(f"the {n}-bit {noun} (by_bits): {exc}") from None
        if m.bits != n:
            raise LibraryError(f"the by_bits entry '{key}' holds a {m.bits}-bit {noun}")
        models[n] = m
    top = max(models) if bits is None else check_bits(bits, "bits")
    missing = [n for n in range(min_bits, top + 1) if n not in models]
    if missing:
        have = ", ".join(str(n) for n in sorted(models))
        need = ", ".join(str(n) for n in missing)
        raise LibraryError(
            f"the {block} block's by_bits table lacks the {need}-bit {noun} (it has "
            f"{have}); re-run cosim characterize"
        )
    refs = {m.v_ref_v for m in models.values()}
    if len(refs) > 1:
        raise LibraryError(f"the by_bits {noun}s disagree on v_ref_v: {sorted(refs)}")
    return dict(sorted(models.items()))


def pick_nominal(
    nominal: M | Mapping[int, M],
    card: Any,
    bits: int | None,
    *,
    noun: str,
    hint: str,
    check_bits: Callable[[Any, str], int],
) -> M:
    """The nominal a Monte-Carlo instance starts from: ``nominal`` itself (its resolution
    must be ``bits`` when given), or the table's entry at ``bits`` (default
    ``card.adc.bits``). ``noun`` names the model, ``hint`` ends the resolution error."""
    if isinstance(nominal, Mapping):
        n = card.adc.bits if bits is None else check_bits(bits, "bits")
        if n not in nominal:
            raise ValueError(f"no {n}-bit nominal {noun} (have {sorted(nominal)})")
        return nominal[n]
    if bits is not None and check_bits(bits, "bits") != nominal.bits:
        raise ValueError(
            f"sample_instance got a {nominal.bits}-bit nominal model for bits={bits}; pass "
            f"the nominal of that resolution{hint}"
        )
    return nominal


def check_codes(codes: Any, bits: int) -> np.ndarray:
    """``codes`` as an integer array of codes ``0 .. 2**bits - 1``."""
    c = np.asarray(codes)
    if c.dtype.kind not in "iu":
        raise ValueError("codes must be integers")
    if c.size and (c.min() < 0 or c.max() >= 2**bits):
        raise ValueError(f"codes must lie in 0..{2**bits - 1} for a {bits}-bit ADC")
    return c
