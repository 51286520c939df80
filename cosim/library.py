"""The surrogate library: a directory with ``library.json``, ``arrays.npz``, ``validation.json``.

``library.json`` holds the schema version, the cosim and ngspice versions, the full hardware
card and its hash, the hashes of every netlist that produced data, each block's fitted
surrogate (arrays moved to ``arrays.npz`` and referenced as ``{"$array": key}``) and a
summary of its validation. ``validation.json`` holds each block's errors against held-out
SPICE runs. The directory is written under a temporary name and renamed into place, so a
reader never sees half a library and an interrupted write keeps the old one.

Writing replaces only a missing path, an empty directory or an earlier library (nothing
else in it): :func:`cosim.fileio.check_output_dir`. Loading reads every file bounded — each
must be a regular file (no link or device) inside the library directory, ``library.json``
and ``validation.json`` at most :data:`LIBRARY_JSON_MAX_BYTES`, ``arrays.npz`` at most
:data:`ARRAYS_MAX_BYTES` — and checks the schema version, that every referenced array exists
and is finite, and — when a card is given — that the library was characterized for that
card. Whatever is wrong is a one-line :class:`~cosim.errors.LibraryError`.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cosim.card import Card
from cosim.converters import (
    AdcArchitecture,
    AdcSurrogate,
    adc_architecture,
    adc_architecture_for_kind,
)
from cosim.errors import CardError, CosimError, LibraryError
from cosim.fileio import (
    LIBRARY_FILES,
    LIBRARY_MARKER,
    atomic_directory,
    check_output_dir,
    dumps_json,
    npz_problem,
    open_regular,
    read_json_bounded,
)

SCHEMA_VERSION = 1
#: The blocks of a library of the default card; the ADC's block is its architecture's
#: (:attr:`SurrogateLibrary.adc_architecture`, ``sar_adc`` for the SAR).
BLOCKS = ("crossbar", "tia", "subtractor", "sar_adc", "sense_row")
#: The largest ``library.json`` or ``validation.json`` cosim reads (bytes; a library's are
#: tens of kB, the arrays live in ``arrays.npz``).
LIBRARY_JSON_MAX_BYTES = 16 * 2**20
#: The largest ``arrays.npz`` cosim reads, and the most its arrays may hold together (bytes).
ARRAYS_MAX_BYTES = 4 * 2**30


def _split_arrays(obj: Any, prefix: str, arrays: dict[str, np.ndarray]) -> Any:
    """Replace every ndarray in ``obj`` by ``{"$array": key}``, collecting them."""
    if isinstance(obj, np.ndarray):
        key = prefix
        arrays[key] = obj
        return {"$array": key}
    if isinstance(obj, dict):
        return {k: _split_arrays(v, f"{prefix}.{k}", arrays) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_split_arrays(v, f"{prefix}.{i}", arrays) for i, v in enumerate(obj)]
    return obj


def _join_arrays(obj: Any, arrays: dict[str, np.ndarray], where: str) -> Any:
    if isinstance(obj, dict):
        if set(obj) == {"$array"}:
            key = obj["$array"]
            if not isinstance(key, str) or key not in arrays:
                raise LibraryError(
                    f"the surrogate library's arrays.npz lacks {key!r} ({where}); "
                    "the library is incomplete — re-run cosim characterize"
                )
            arr = arrays[key]
            if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
                raise LibraryError(f"array {key!r} in the surrogate library holds NaN or inf")
            return arr
        return {k: _join_arrays(v, arrays, where) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_join_arrays(v, arrays, where) for v in obj]
    return obj


def card_differences(a: Card, b: Card, limit: int = 5) -> list[str]:
    """Keys (``section.key``) whose values differ between two cards."""
    da, db = a.to_dict(), b.to_dict()
    diffs = []
    for sec in da:
        if sec == "card":
            continue
        for k in da[sec]:
            if da[sec][k] != db.get(sec, {}).get(k):
                diffs.append(f"{sec}.{k} ({da[sec][k]!r} vs {db[sec][k]!r})")
    return diffs[:limit]


def write_library(
    out_dir: str | Path,
    card: Card,
    blocks: dict[str, Any],
    validation: dict[str, Any],
    meta: dict[str, Any],
) -> Path:
    """Write a library directory atomically.

    ``out_dir`` must be missing, an empty directory, or a cosim library holding nothing but
    :data:`~cosim.fileio.LIBRARY_FILES` (:func:`~cosim.fileio.check_output_dir`); it is
    checked before and again just before the new library is swapped in.

    Parameters
    ----------
    out_dir
        The library directory.
    card
        The hardware card characterized.
    blocks
        ``{name: {"surrogate": obj_with_to_dict, "netlist_hashes": {...}, "extra": {...}}}``.
    validation
        ``{name: validation dict}`` (goes to ``validation.json``).
    meta
        Provenance: ngspice version, quick flag, seed, timing, run counts.

    Returns
    -------
    Path
        ``out_dir``.

    Raises
    ------
    CosimError
        ``out_dir`` is something cosim must not replace (a file, a link, a foreign
        directory); nothing is written then.
    """
    out_dir = Path(out_dir)
    check_output_dir(out_dir, kind="library", marker=LIBRARY_MARKER, contents=LIBRARY_FILES)
    arrays: dict[str, np.ndarray] = {}
    doc_blocks = {}
    for name, b in blocks.items():
        sur = b["surrogate"]
        doc_blocks[name] = {
            "kind": getattr(sur, "kind", name),
            "surrogate": _split_arrays(sur.to_dict(), f"{name}.surrogate", arrays),
            "netlist_hashes": b.get("netlist_hashes", {}),
            "extra": _split_arrays(b.get("extra", {}), f"{name}.extra", arrays),
        }
    from cosim import __version__

    doc = {
        "schema_version": SCHEMA_VERSION,
        "cosim_version": __version__,
        "created_utc": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "card": card.to_dict(),
        "card_hash": card.physics_hash(),
        **meta,
        "blocks": doc_blocks,
        "validation_summary": {k: _summary(v) for k, v in validation.items()},
        "arrays_file": "arrays.npz",
    }
    with atomic_directory(
        out_dir, kind="library", marker=LIBRARY_MARKER, contents=LIBRARY_FILES
    ) as tmp:
        with open(tmp / "arrays.npz", "wb") as fh:
            np.savez(fh, **arrays)
        (tmp / "library.json").write_text(dumps_json(doc), encoding="utf-8")
        (tmp / "validation.json").write_text(dumps_json(validation), encoding="utf-8")
    return out_dir


def _summary(v: dict[str, Any]) -> dict[str, Any]:
    return {k: x for k, x in v.items() if isinstance(x, (int, float, str, bool)) or x is None}


@dataclass
class SurrogateLibrary:
    """A loaded library: the card it was made for, each block's surrogate, validation."""

    path: Path
    card: Card
    meta: dict[str, Any]
    surrogates: dict[str, Any]
    extras: dict[str, Any]
    validation: dict[str, Any] = field(default_factory=dict)

    def block(self, name: str) -> Any:
        """The surrogate of block ``name``; a clear error if the library lacks it."""
        if name not in self.surrogates:
            raise LibraryError(
                f"the surrogate library {self.path} has no '{name}' block "
                f"(it has: {', '.join(sorted(self.surrogates))}); re-run cosim characterize "
                "with a card that enables it"
            )
        return self.surrogates[name]

    @property
    def adc_architecture(self) -> AdcArchitecture:
        """The ADC architecture of the library's card (``adc.architecture``)."""
        try:
            return adc_architecture(self.card.adc.architecture)
        except CosimError as exc:
            raise LibraryError(f"the surrogate library {self.path}: {exc}") from None

    def adc(self) -> AdcSurrogate:
        """The nominal ADC surrogate at the card's resolution (its architecture's block)."""
        return self.block(self.adc_architecture.block)

    def adc_models_by_bits(self) -> dict[int, AdcSurrogate]:
        """The nominal ADC surrogate at every resolution the library holds, ascending.

        Every resolution ``1 .. card.adc.bits`` when the block's ``extra`` stores them
        (:meth:`AdcArchitecture.models_by_bits`); a library from before per-resolution
        characterization gives the card's resolution only.
        """
        arch = self.adc_architecture
        nominal = self.adc()
        extra = self.extras.get(arch.block, {})
        out: dict[int, AdcSurrogate] = {}
        if "by_bits" in extra:
            out.update(arch.models_by_bits(extra))
        out.setdefault(int(nominal.bits), nominal)
        return dict(sorted(out.items()))


def _decoder(kind: str):
    if kind == "crossbar":
        from cosim.surrogates.crossbar import CrossbarModel

        return CrossbarModel.from_dict
    if kind == "tia":
        from cosim.surrogates.periphery import TiaModel

        return TiaModel.from_dict
    if kind == "subtractor":
        from cosim.surrogates.periphery import SubtractorModel

        return SubtractorModel.from_dict
    if kind == "sense_row":
        from cosim.surrogates.sense_row import SenseRowModel

        return SenseRowModel.from_dict
    arch = adc_architecture_for_kind(kind) if isinstance(kind, str) else None
    if arch is not None:  # an ADC: decoded by its architecture (cosim.converters)
        return arch.from_dict
    raise LibraryError(f"unknown surrogate kind '{kind}' in the library")


def _fresh_dir(near: Path, base: str = "cosim-library") -> str:
    """A directory name beside ``near`` that does not exist (for a suggestion)."""
    for i in range(1, 1000):
        cand = near.parent / (base if i == 1 else f"{base}-{i}")
        if not os.path.lexists(cand):
            return str(cand)
    return str(near.parent / f"{base}-new")


def _out_suggestion(path: Path) -> str:
    """``path`` when ``cosim characterize --out`` may write there (missing, or an empty
    real directory), else a fresh name: a suggestion never points at something to lose."""
    if not os.path.lexists(path):
        return str(path)
    if path.is_dir() and not path.is_symlink():
        try:
            with os.scandir(path) as it:
                if next(it, None) is None:
                    return str(path)
        except OSError:
            pass
    return _fresh_dir(path)


def _check_library_dir(path: Path) -> Path:
    """``path / library.json``, after checking that ``path`` is a library directory."""
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        raise LibraryError(
            f"{path} is not a surrogate library (it does not exist); create one with "
            f"`cosim characterize --out {_out_suggestion(path)}`"
        ) from None
    except OSError as exc:
        raise LibraryError(f"cannot read the surrogate library {path} ({exc.strerror})") from None
    if not stat.S_ISDIR(st.st_mode):
        what = "a file" if stat.S_ISREG(st.st_mode) else "not a directory"
        raise LibraryError(
            f"{path} is {what}, not a surrogate library: a library is the directory that "
            f"`cosim characterize --out DIR` writes; create one with "
            f"`cosim characterize --out {_fresh_dir(path)}`"
        )
    lib_file = path / LIBRARY_MARKER
    if not os.path.lexists(lib_file):
        raise LibraryError(
            f"{path} is not a surrogate library (no library.json); create one with "
            f"`cosim characterize --out {_out_suggestion(path)}`"
        )
    return lib_file


def read_library_json(path: str | Path) -> dict[str, Any]:
    """The parsed ``library.json`` of the library directory ``path`` (bounded, checked).

    Raises
    ------
    LibraryError
        ``path`` is not a directory or lacks ``library.json``; the file is a link, a
        directory, a device, larger than :data:`LIBRARY_JSON_MAX_BYTES`, not UTF-8, not
        JSON, or not a JSON object with a ``schema_version``.
    """
    path = Path(path)
    lib_file = _check_library_dir(path)
    try:
        doc = read_json_bounded(
            lib_file, max_bytes=LIBRARY_JSON_MAX_BYTES, what="library file", error=LibraryError
        )
    except LibraryError as exc:
        raise LibraryError(f"{exc}; re-run cosim characterize") from None
    if not isinstance(doc, dict) or "schema_version" not in doc:
        raise LibraryError(f"{lib_file} is not a cosim surrogate library (no schema_version)")
    return doc


def _arrays_name(lib_file: Path, doc: dict[str, Any]) -> str:
    name = doc.get("arrays_file", "arrays.npz")
    if (
        not isinstance(name, str)
        or name in ("", ".", "..")
        or "\0" in name
        or Path(name).name != name
        or name != name.strip()
    ):
        raise LibraryError(
            f"{lib_file}: arrays_file must name a file inside the library directory, got "
            f"{name!r}; the library is corrupt — re-run cosim characterize"
        )
    return name


def read_library_arrays(path: str | Path, doc: dict[str, Any]) -> dict[str, np.ndarray]:
    """Every array of the library ``path`` whose ``library.json`` is ``doc`` (bounded).

    The arrays file must be a regular file inside the library directory (its name in
    ``arrays_file`` has no directory part), at most :data:`ARRAYS_MAX_BYTES`, an ``.npz``
    without pickled objects whose arrays together fit that bound.

    Raises
    ------
    LibraryError
        Any of that is not so, or the file is unreadable.
    """
    path = Path(path)
    arrays_file = path / _arrays_name(path / LIBRARY_MARKER, doc)
    try:
        fh = open_regular(
            arrays_file, max_bytes=ARRAYS_MAX_BYTES, what="library file", error=LibraryError
        )
    except LibraryError as exc:
        raise LibraryError(
            f"cannot read the library's arrays ({exc}); re-run cosim characterize"
        ) from None
    with fh:
        problem = npz_problem(fh, ARRAYS_MAX_BYTES)
        if problem is not None:
            raise LibraryError(f"cannot read {arrays_file} ({problem}); re-run cosim characterize")
        try:
            with np.load(fh, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise LibraryError(
                f"cannot read {arrays_file} ({exc}); re-run cosim characterize"
            ) from None


def load_library(path: str | Path, card: Card | None = None) -> SurrogateLibrary:
    """Load and check a surrogate library directory.

    Every file is read bounded: ``library.json`` and ``validation.json`` at most
    :data:`LIBRARY_JSON_MAX_BYTES`, the arrays at most :data:`ARRAYS_MAX_BYTES`; each must
    be a regular file (not a link or device) inside the library directory.

    Raises
    ------
    LibraryError
        Missing or corrupt files, another schema version, a block that fails to decode, or
        (with ``card``) a library characterized for a different hardware card.
    """
    path = Path(path)
    doc = read_library_json(path)
    lib_file = path / LIBRARY_MARKER
    if doc["schema_version"] != SCHEMA_VERSION:
        raise LibraryError(
            f"{lib_file} has schema version {doc['schema_version']!r}, this cosim reads "
            f"version {SCHEMA_VERSION}; re-run cosim characterize to rebuild it"
        )
    for key in ("card", "card_hash", "blocks"):
        if key not in doc:
            raise LibraryError(f"{lib_file} lacks '{key}'; the library is corrupt")
    if not isinstance(doc["blocks"], dict) or not all(
        isinstance(b, dict) for b in doc["blocks"].values()
    ):
        raise LibraryError(f"{lib_file}: 'blocks' must map block names to objects; corrupt file")
    try:
        lib_card = Card.from_dict(doc["card"])
    except CardError as exc:
        raise LibraryError(f"the card stored in {lib_file} is invalid: {exc}") from None
    if lib_card.physics_hash() != doc["card_hash"]:
        raise LibraryError(f"{lib_file}: the stored card does not match its hash; corrupt file")
    if card is not None and card.physics_hash() != lib_card.physics_hash():
        diffs = card_differences(card, lib_card)
        raise LibraryError(
            f"the surrogate library {path} was characterized for card '{lib_card.name}', "
            f"which differs from card '{card.name}' in: {', '.join(diffs)}; run "
            f"`cosim characterize --card <your card> --out <new dir>` and use that library"
        )
    arrays = read_library_arrays(path, doc)
    surrogates, extras = {}, {}
    for name, b in doc["blocks"].items():
        try:
            sd = _join_arrays(b["surrogate"], arrays, name)
            surrogates[name] = _decoder(b.get("kind", name))(sd)
            extras[name] = _join_arrays(b.get("extra", {}), arrays, name)
        except LibraryError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            raise LibraryError(
                f"block '{name}' of {lib_file} cannot be decoded ({type(exc).__name__}: "
                f"{exc}); the library is corrupt or from another cosim"
            ) from None
        except RecursionError:
            raise LibraryError(
                f"block '{name}' of {lib_file} is nested too deeply; the library is corrupt"
            ) from None
    validation: dict[str, Any] = {}
    vfile = path / "validation.json"
    if os.path.lexists(vfile):
        validation = read_json_bounded(
            vfile, max_bytes=LIBRARY_JSON_MAX_BYTES, what="library file", error=LibraryError
        )
        if not isinstance(validation, dict):
            raise LibraryError(f"{vfile} is corrupt (not a JSON object)")
    meta = {k: v for k, v in doc.items() if k not in ("blocks", "card")}
    return SurrogateLibrary(path, lib_card, meta, surrogates, extras, validation)
