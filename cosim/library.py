"""The surrogate library: a directory with ``library.json``, ``arrays.npz``, ``validation.json``.

``library.json`` holds the schema version, the cosim and ngspice versions, the full hardware
card and its hash, the hashes of every netlist that produced data, each block's fitted
surrogate (arrays moved to ``arrays.npz`` and referenced as ``{"$array": key}``) and a
summary of its validation. ``validation.json`` holds each block's errors against held-out
SPICE runs. The directory is written under a temporary name and renamed into place, so a
reader never sees half a library and an interrupted write keeps the old one.

Loading checks the schema version, that every referenced array exists and is finite, and —
when a card is given — that the library was characterized for that card.
"""

from __future__ import annotations

import datetime as _dt
import io
import json
import platform
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cosim.card import Card
from cosim.errors import CardError, LibraryError
from cosim.fileio import atomic_directory, dumps_json

SCHEMA_VERSION = 1
BLOCKS = ("crossbar", "tia", "subtractor", "sar_adc", "sense_row")


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


def _join_arrays(obj: Any, arrays: Any, where: str) -> Any:
    if isinstance(obj, dict):
        if set(obj) == {"$array"}:
            key = obj["$array"]
            if key not in arrays.files:
                raise LibraryError(
                    f"the surrogate library's arrays.npz lacks '{key}' ({where}); "
                    "the library is incomplete — re-run cosim characterize"
                )
            arr = arrays[key]
            if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
                raise LibraryError(f"array '{key}' in the surrogate library holds NaN or inf")
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

    Parameters
    ----------
    blocks
        ``{name: {"surrogate": obj_with_to_dict, "netlist_hashes": {...}, "extra": {...}}}``.
    validation
        ``{name: validation dict}`` (goes to ``validation.json``).
    meta
        Provenance: ngspice version, quick flag, seed, timing, run counts.
    """
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
    out_dir = Path(out_dir)
    with atomic_directory(out_dir) as tmp:
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
    if kind == "sar_adc":
        from cosim.surrogates.adc import SarAdcModel

        return SarAdcModel.from_dict
    if kind == "sense_row":
        from cosim.surrogates.sense_row import SenseRowModel

        return SenseRowModel.from_dict
    raise LibraryError(f"unknown surrogate kind '{kind}' in the library")


def load_library(path: str | Path, card: Card | None = None) -> SurrogateLibrary:
    """Load and check a surrogate library directory.

    Raises
    ------
    LibraryError
        Missing or corrupt files, another schema version, a block that fails to decode, or
        (with ``card``) a library characterized for a different hardware card.
    """
    path = Path(path)
    lib_file = path / "library.json"
    if not lib_file.is_file():
        raise LibraryError(
            f"{path} is not a surrogate library (no library.json); create one with "
            f"`cosim characterize --out {path}`"
        )
    try:
        doc = json.loads(lib_file.read_text("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LibraryError(f"{lib_file} is corrupt ({exc}); re-run cosim characterize") from None
    if not isinstance(doc, dict) or "schema_version" not in doc:
        raise LibraryError(f"{lib_file} is not a cosim surrogate library (no schema_version)")
    if doc["schema_version"] != SCHEMA_VERSION:
        raise LibraryError(
            f"{lib_file} has schema version {doc['schema_version']!r}, this cosim reads "
            f"version {SCHEMA_VERSION}; re-run cosim characterize to rebuild it"
        )
    for key in ("card", "card_hash", "blocks"):
        if key not in doc:
            raise LibraryError(f"{lib_file} lacks '{key}'; the library is corrupt")
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
            f"`cosim characterize --card <your card> --out <dir>` and use that library"
        )
    arrays_file = path / doc.get("arrays_file", "arrays.npz")
    try:
        with open(arrays_file, "rb") as fh:
            arrays = np.load(io.BytesIO(fh.read()), allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise LibraryError(
            f"cannot read {arrays_file} ({exc}); re-run cosim characterize"
        ) from None
    surrogates, extras = {}, {}
    with arrays:
        for name, b in doc["blocks"].items():
            try:
                sd = _join_arrays(b["surrogate"], arrays, name)
                surrogates[name] = _decoder(b.get("kind", name))(sd)
                extras[name] = _join_arrays(b.get("extra", {}), arrays, name)
            except LibraryError:
                raise
            except (KeyError, TypeError, ValueError) as exc:
                raise LibraryError(
                    f"block '{name}' of {lib_file} cannot be decoded ({type(exc).__name__}: "
                    f"{exc}); the library is corrupt or from another cosim"
                ) from None
    validation = {}
    vfile = path / "validation.json"
    if vfile.is_file():
        try:
            validation = json.loads(vfile.read_text("utf-8"))
        except json.JSONDecodeError as exc:
            raise LibraryError(f"{vfile} is corrupt ({exc})") from None
    meta = {k: v for k, v in doc.items() if k not in ("blocks", "card")}
    return SurrogateLibrary(path, lib_card, meta, surrogates, extras, validation)
