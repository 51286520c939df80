"""Writing a surrogate library directory: ``library.json``, ``arrays.npz``, ``validation.json``.

The directory is written under a temporary name and renamed into place, so a reader never
sees half a library and an interrupted write keeps the old one. Writing replaces only a
missing path, an empty directory or an earlier library (nothing else in it):
:func:`cosim.fileio.check_output_dir`.
"""

from __future__ import annotations

import datetime as _dt
import platform
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from cosim.card import Card
from cosim.fileio import (
    LIBRARY_FILES,
    LIBRARY_MARKER,
    atomic_directory,
    check_output_dir,
    dumps_json,
)
from cosim.library.common import SCHEMA_VERSION
from cosim.library.validation import BlockValidation, validation_from_dict, validation_to_dict

__all__ = ["split_arrays", "write_library"]


def split_arrays(obj: Any, prefix: str, arrays: dict[str, np.ndarray]) -> Any:
    """``obj`` with every ndarray replaced by ``{"$array": key}`` (``key``: its dotted path
    from ``prefix``), the arrays collected into ``arrays``."""
    if isinstance(obj, np.ndarray):
        key = prefix
        arrays[key] = obj
        return {"$array": key}
    if isinstance(obj, dict):
        return {k: split_arrays(v, f"{prefix}.{k}", arrays) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [split_arrays(v, f"{prefix}.{i}", arrays) for i, v in enumerate(obj)]
    return obj


def write_library(
    out_dir: str | Path,
    card: Card,
    blocks: dict[str, Any],
    validation: Mapping[str, BlockValidation | Mapping[str, Any]],
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
        ``{name: BlockValidation}`` (or the validation dict a block's characterization
        returned, checked through :meth:`BlockValidation.from_dict`); goes to
        ``validation.json``.
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
    LibraryError
        A validation dict lacks ``n_heldout`` or has a malformed headline metric.
    """
    out_dir = Path(out_dir)
    check_output_dir(out_dir, kind="library", marker=LIBRARY_MARKER, contents=LIBRARY_FILES)
    records = validation_to_dict(validation_from_dict(validation))
    arrays: dict[str, np.ndarray] = {}
    doc_blocks = {}
    for name, b in blocks.items():
        sur = b["surrogate"]
        doc_blocks[name] = {
            "kind": getattr(sur, "kind", name),
            "surrogate": split_arrays(sur.to_dict(), f"{name}.surrogate", arrays),
            "netlist_hashes": b.get("netlist_hashes", {}),
            "extra": split_arrays(b.get("extra", {}), f"{name}.extra", arrays),
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
        "validation_summary": {k: _summary(v) for k, v in records.items()},
        "arrays_file": "arrays.npz",
    }
    with atomic_directory(
        out_dir, kind="library", marker=LIBRARY_MARKER, contents=LIBRARY_FILES
    ) as tmp:
        with open(tmp / "arrays.npz", "wb") as fh:
            entries: dict[str, Any] = arrays  # numpy's stub: **kwds beside allow_pickle: bool
            np.savez(fh, **entries)
        (tmp / "library.json").write_text(dumps_json(doc), encoding="utf-8")
        (tmp / "validation.json").write_text(dumps_json(records), encoding="utf-8")
    return out_dir


def _summary(v: dict[str, Any]) -> dict[str, Any]:
    """The scalar figures of one block's validation (for ``library.json``)."""
    return {k: x for k, x in v.items() if isinstance(x, (int, float, str, bool)) or x is None}
