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
and holds real numbers, that every block is well formed (:func:`load_library`) and — when a
card is given — that the library was characterized for that card. Whatever is wrong is a
one-line :class:`~cosim.errors.LibraryError` (paths and keys with their control characters
escaped).

A library is the output of a characterization: every number of a block (its surrogate and
its ``extra``) is finite, and a NaN or infinity there means the file is corrupt. Only
``validation.json`` and the validation summary in ``library.json`` are read as they are:
they are the characterization's report to a reader, never an input of the engine (a
metric that was not measured is ``null`` there).
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import platform
import stat
import zipfile
from collections.abc import Mapping
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
from cosim.messages import error_text
from cosim.messages import show_text as _show

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


def _short(value: Any, limit: int = 60) -> str:
    """``repr(value)`` on one line, cut to ``limit`` characters."""
    try:
        text = repr(value)
    except ValueError:  # an int of more digits than Python converts to text
        return "<an integer of thousands of digits>"
    return _show(text, limit)


def _field(where: tuple[Any, ...]) -> str:
    """The key path ``("blocks", "sar_adc", "extra", "mc", 0, "bits")`` as
    ``blocks.sar_adc.extra.mc[0].bits``."""
    out = ""
    for part in where:
        out += f"[{part}]" if isinstance(part, int) else ("." if out else "") + _show(part, 60)
    return out


def _detail(exc: BaseException) -> str:
    """A decoder's exception for a message: a deliberate error's text, anything else's
    class and text (``TypeError: ...``)."""
    if isinstance(exc, CosimError):
        return _reason(exc)
    return f"{type(exc).__name__}: {_reason(exc)}"


#: The largest integer a float holds: a stored integer beyond it is no usable number.
_FLOAT_MAX = int(np.finfo(float).max)


def _join_arrays(obj: Any, arrays: dict[str, np.ndarray], where: tuple[Any, ...]) -> Any:
    """``obj`` (a block's ``surrogate`` or ``extra`` from ``library.json``, found at the key
    path ``where``) with every ``{"$array": key}`` replaced by its array from
    ``arrays.npz``, after checking that every number in it is finite and every array holds
    real numbers (booleans, integers or finite floats).

    Raises
    ------
    LibraryError
        An array is missing, complex, of strings or objects, or holds NaN/inf; a number is
        NaN, infinite or an integer beyond any float. The message names the field.
    """
    if isinstance(obj, dict):
        if set(obj) == {"$array"}:
            key = obj["$array"]
            if not isinstance(key, str) or key not in arrays:
                raise LibraryError(
                    f"the surrogate library's arrays.npz lacks {_short(key)} "
                    f"({_field(where)}); the library is incomplete — re-run cosim characterize"
                )
            arr = arrays[key]
            if arr.dtype.kind not in "biuf":
                what = "complex numbers" if arr.dtype.kind == "c" else f"dtype {arr.dtype}"
                raise LibraryError(
                    f"array {_short(key)} ({_field(where)}) in the surrogate library holds "
                    f"{what}, not real numbers; the library is corrupt — re-run cosim "
                    "characterize"
                )
            if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
                raise LibraryError(
                    f"array {_short(key)} ({_field(where)}) in the surrogate library holds "
                    "NaN or inf; the library is corrupt — re-run cosim characterize"
                )
            return arr
        return {k: _join_arrays(v, arrays, (*where, k)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_join_arrays(v, arrays, (*where, i)) for i, v in enumerate(obj)]
    if isinstance(obj, float) and not math.isfinite(obj):
        raise LibraryError(
            f"{_field(where)} = {obj!r} is not a finite number; "
            "the library is corrupt — re-run cosim characterize"
        )
    if isinstance(obj, int) and not isinstance(obj, bool) and abs(obj) > _FLOAT_MAX:
        raise LibraryError(
            f"{_field(where)} = {_short(obj)} is beyond any float; "
            "the library is corrupt — re-run cosim characterize"
        )
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
            have = ", ".join(_show(n, 60) for n in sorted(self.surrogates))
            raise LibraryError(
                f"the surrogate library {_show(self.path)} has no '{_show(name, 60)}' block "
                f"(it has: {have}); re-run cosim characterize with a card that enables it"
            )
        return self.surrogates[name]

    @property
    def adc_architecture(self) -> AdcArchitecture:
        """The ADC architecture of the library's card (``adc.architecture``)."""
        try:
            return adc_architecture(self.card.adc.architecture)
        except CosimError as exc:
            raise LibraryError(f"the surrogate library {_show(self.path)}: {_show(exc)}") from None

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
    raise LibraryError(f"unknown surrogate kind {_short(kind)} in the library")


def _expected_kinds(card: Card) -> dict[str, str]:
    """The surrogate kind of every block of ``card``'s chip, by block name."""
    kinds = {b: b for b in ("crossbar", "tia", "subtractor", "sense_row")}
    try:
        arch = adc_architecture(card.adc.architecture)
    except CosimError:
        return kinds  # an architecture that does not load: named when the ADC is used
    kinds[arch.block] = arch.kind
    return kinds


def _load_block(
    name: str, b: dict[str, Any], arrays: dict[str, np.ndarray], card: Card, where: str
) -> tuple[Any, dict[str, Any]]:
    """The surrogate and the ``extra`` of block ``name`` (``b``, from ``library.json``)."""
    block = f"block '{_show(name, 60)}' of {where}"
    kind = b.get("kind", name)
    if not isinstance(kind, str):
        raise LibraryError(f"{block}: unknown surrogate kind {_short(kind)}; corrupt file")
    try:
        decode = _decoder(kind)
    except LibraryError as exc:
        raise LibraryError(f"{block}: {_show(exc)}") from None
    want = _expected_kinds(card).get(name)
    if want is not None and kind != want:
        raise LibraryError(
            f"{block}: its surrogate kind is {_short(kind)}, but the block '{name}' holds a "
            f"'{want}' surrogate; the library is corrupt — re-run cosim characterize"
        )
    for key, default in (("surrogate", None), ("extra", {}), ("netlist_hashes", {})):
        value = b.get(key, default)
        if not isinstance(value, dict):
            got = "it is missing" if key not in b else f"not {_short(value, 30)}"
            raise LibraryError(
                f"{block}: '{key}' must be a table (a JSON object), {got}; the library is "
                "corrupt — re-run cosim characterize"
            )
    try:
        sd = _join_arrays(b["surrogate"], arrays, ("blocks", name, "surrogate"))
        extra = _join_arrays(b.get("extra", {}), arrays, ("blocks", name, "extra"))
    except RecursionError:
        raise LibraryError(f"{block} is nested too deeply; the library is corrupt") from None
    except LibraryError as exc:  # it names the field: blocks.NAME.extra...
        raise LibraryError(f"{where}: {_show(exc)}") from None
    try:
        return decode(sd), extra
    except RecursionError:
        raise LibraryError(f"{block} is nested too deeply; the library is corrupt") from None
    except Exception as exc:  # whatever the decoder raises, a malformed block is corrupt
        raise LibraryError(
            f"{block} cannot be decoded ({_detail(exc)}); the library is corrupt or from "
            "another cosim"
        ) from None


def _kind_mismatch(value: Any, template: Any) -> str | None:
    """What ``value`` is instead of the kind of ``template`` (a number, an array, a table),
    or None where they agree (or ``template`` is of another kind)."""
    if isinstance(template, (int, float, np.number)) and not isinstance(template, bool):
        ok = isinstance(value, (int, float, np.number)) and not isinstance(value, bool)
        want = "a number"
    elif isinstance(template, (np.ndarray, list)):
        ok, want = isinstance(value, (np.ndarray, list)), "an array"
    elif isinstance(template, Mapping):
        ok, want = isinstance(value, Mapping), "a table"
    else:
        return None
    if ok:
        return None
    got = "an array" if isinstance(value, (np.ndarray, list)) else type(value).__name__
    return f"must be {want}, not {'null' if value is None else got}"


def _check_adc_models(
    card: Card, surrogates: dict[str, Any], extras: dict[str, Any], where: str
) -> None:
    """Decode the ADC's model at every resolution its block stores (``extra.by_bits``), as
    :meth:`SurrogateLibrary.adc_models_by_bits` and the engine do, so that a malformed one
    is a :class:`LibraryError` now, naming the block and the field, not a crash later.

    Each ``by_bits`` entry is first compared field by field with the nominal surrogate's
    :meth:`to_dict` (a number where it has a number, an array where it has an array)."""
    try:
        arch = adc_architecture(card.adc.architecture)
    except CosimError:
        return  # named when the ADC is used
    name = arch.block
    if name not in surrogates or "by_bits" not in extras.get(name, {}):
        return
    block = f"block '{name}' of {where}"
    table = extras[name]["by_bits"]
    if isinstance(table, Mapping):
        template = surrogates[name].to_dict()
        for bits, entry in table.items():
            if not isinstance(entry, Mapping):
                continue  # models_by_bits names it
            for key, value in entry.items():
                problem = _kind_mismatch(value, template.get(key))
                if problem is not None:
                    field_ = _field(("extra", "by_bits", str(bits), key))
                    raise LibraryError(
                        f"{block}: {field_} {problem} (the ADC model at that resolution); "
                        "the library is corrupt — re-run cosim characterize"
                    )
    try:
        arch.models_by_bits(extras[name])
    except RecursionError:
        raise LibraryError(f"{block}: extra.by_bits is nested too deeply; corrupt file") from None
    except Exception as exc:  # whatever the decoder raises, a malformed model is corrupt
        raise LibraryError(
            f"{block}: extra.by_bits cannot be decoded ({_detail(exc)}); the library is "
            "corrupt — re-run cosim characterize"
        ) from None


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
    """``path / library.json``, after checking that ``path`` is a library directory.

    Every failure is a one-line :class:`LibraryError` naming ``path`` (its control
    characters escaped): a path that names no file at all (a NUL byte, a name longer than
    the file system allows), one that cannot be looked at, a missing path, a file.
    """
    shown = _show(path)
    if "\0" in os.fsdecode(path):  # no file name holds one (os.stat raises ValueError)
        raise LibraryError(
            f"{shown} is not a surrogate library: the path holds a NUL byte, which no file name can"
        )
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        raise LibraryError(
            f"{shown} is not a surrogate library (it does not exist); create one with "
            f"`cosim characterize --out {_show(_out_suggestion(path))}`"
        ) from None
    except (OSError, ValueError) as exc:  # a name too long, no permission, a loop of links
        raise LibraryError(f"cannot read the surrogate library {shown} ({_reason(exc)})") from None
    if not stat.S_ISDIR(st.st_mode):
        what = "a file" if stat.S_ISREG(st.st_mode) else "not a directory"
        raise LibraryError(
            f"{shown} is {what}, not a surrogate library: a library is the directory that "
            f"`cosim characterize --out DIR` writes; create one with "
            f"`cosim characterize --out {_show(_fresh_dir(path))}`"
        )
    lib_file = path / LIBRARY_MARKER
    if not os.path.lexists(lib_file):
        raise LibraryError(
            f"{shown} is not a surrogate library (no library.json); create one with "
            f"`cosim characterize --out {_show(_out_suggestion(path))}`"
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
        raise LibraryError(
            f"{_show(lib_file)} is not a cosim surrogate library (no schema_version)"
        )
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
            f"{_show(lib_file)}: arrays_file must name a file inside the library directory, "
            f"got {_short(name)}; the library is corrupt — re-run cosim characterize"
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
            raise LibraryError(
                f"cannot read {_show(arrays_file)} ({_show(problem)}); re-run cosim characterize"
            )
        try:
            with np.load(fh, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise LibraryError(
                f"cannot read {_show(arrays_file)} ({_reason(exc)}); re-run cosim characterize"
            ) from None


def load_library(path: str | Path, card: Card | None = None) -> SurrogateLibrary:
    """Load and check a surrogate library directory.

    Every file is read bounded: ``library.json`` and ``validation.json`` at most
    :data:`LIBRARY_JSON_MAX_BYTES`, the arrays at most :data:`ARRAYS_MAX_BYTES`; each must
    be a regular file (not a link or device) inside the library directory.

    Every block is checked as the engine will use it: its ``kind`` names its surrogate
    (and a block of the card's chip — ``crossbar``, ``tia``, ``subtractor``, ``sense_row``
    and the ADC's — has the kind of that block), its ``surrogate`` and ``extra`` are tables,
    every number in them is finite and every array real (:func:`_join_arrays`), the
    surrogate decodes through its own ``from_dict``, and so does the ADC's model at every
    resolution it stores (:meth:`SurrogateLibrary.adc_models_by_bits`). ``validation.json``
    must be a JSON object; its values are read as they are.

    Raises
    ------
    LibraryError
        Missing or corrupt files, another schema version, a block that is malformed or fails
        to decode, or (with ``card``) a library characterized for a different hardware card.
        The message is one line and names the block and the field.
    """
    path = Path(path)
    doc = read_library_json(path)
    lib_file = path / LIBRARY_MARKER
    where = _show(lib_file)
    if doc["schema_version"] != SCHEMA_VERSION:
        raise LibraryError(
            f"{where} has schema version {_short(doc['schema_version'])}, this cosim reads "
            f"version {SCHEMA_VERSION}; re-run cosim characterize to rebuild it"
        )
    for key in ("card", "card_hash", "blocks"):
        if key not in doc:
            raise LibraryError(f"{where} lacks '{key}'; the library is corrupt")
    if not isinstance(doc["blocks"], dict) or not all(
        isinstance(b, dict) for b in doc["blocks"].values()
    ):
        raise LibraryError(f"{where}: 'blocks' must map block names to objects; corrupt file")
    try:
        lib_card = Card.from_dict(doc["card"])
    except CardError as exc:
        raise LibraryError(f"the card stored in {where} is invalid: {exc}") from None
    if lib_card.physics_hash() != doc["card_hash"]:
        raise LibraryError(f"{where}: the stored card does not match its hash; corrupt file")
    if card is not None and card.physics_hash() != lib_card.physics_hash():
        diffs = card_differences(card, lib_card)
        raise LibraryError(
            f"the surrogate library {_show(path)} was characterized for card "
            f"'{_show(lib_card.name, 100)}', which differs from card '{_show(card.name, 100)}' "
            f"in: {', '.join(diffs)}; run `cosim characterize --card <your card> --out <new "
            "dir>` and use that library"
        )
    arrays = read_library_arrays(path, doc)
    surrogates, extras = {}, {}
    for name, b in doc["blocks"].items():
        surrogates[name], extras[name] = _load_block(name, b, arrays, lib_card, where)
    _check_adc_models(lib_card, surrogates, extras, where)
    validation: dict[str, Any] = {}
    vfile = path / "validation.json"
    if os.path.lexists(vfile):
        # read as it is (a report to a reader, never an input of the engine): only its
        # shape is checked
        validation = read_json_bounded(
            vfile, max_bytes=LIBRARY_JSON_MAX_BYTES, what="library file", error=LibraryError
        )
        if not isinstance(validation, dict):
            raise LibraryError(f"{_show(vfile)} is corrupt (not a JSON object)")
    meta = {k: v for k, v in doc.items() if k not in ("blocks", "card")}
    return SurrogateLibrary(path, lib_card, meta, surrogates, extras, validation)


def _reason(exc: BaseException) -> str:
    """An exception in a few words on one line (an OSError without its path)."""
    return error_text(exc, 300)
