"""Bounded reading of a library directory: ``library.json`` and ``arrays.npz``.

Every file must be a regular file (no link or device) inside the library directory,
``library.json`` at most :data:`~cosim.library.LIBRARY_JSON_MAX_BYTES`, ``arrays.npz`` at
most :data:`~cosim.library.ARRAYS_MAX_BYTES`. Whatever is wrong is a one-line
:class:`~cosim.errors.LibraryError` (paths and keys with their control characters escaped),
and a path that is no library gets a ``cosim characterize --out`` suggestion that never
points at something to lose.
"""

from __future__ import annotations

import os
import stat
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from cosim.errors import LibraryError
from cosim.fileio import LIBRARY_MARKER, npz_problem, open_regular, read_json_bounded
from cosim.library.common import (
    ARRAYS_MAX_BYTES,
    LIBRARY_JSON_MAX_BYTES,
    reason,
    short,
    show,
)

__all__ = [
    "arrays_name",
    "check_library_dir",
    "fresh_dir",
    "out_suggestion",
    "read_library_arrays",
    "read_library_json",
]


def fresh_dir(near: Path, base: str = "cosim-library") -> str:
    """A directory name beside ``near`` that does not exist (for a suggestion)."""
    for i in range(1, 1000):
        cand = near.parent / (base if i == 1 else f"{base}-{i}")
        if not os.path.lexists(cand):
            return str(cand)
    return str(near.parent / f"{base}-new")


def out_suggestion(path: Path) -> str:
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
    return fresh_dir(path)


def check_library_dir(path: Path) -> Path:
    """``path / library.json``, after checking that ``path`` is a library directory.

    Every failure is a one-line :class:`LibraryError` naming ``path`` (its control
    characters escaped): a path that names no file at all (a NUL byte, a name longer than
    the file system allows), one that cannot be looked at, a missing path, a file.
    """
    shown = show(path)
    if "\0" in os.fsdecode(path):  # no file name holds one (os.stat raises ValueError)
        raise LibraryError(
            f"{shown} is not a surrogate library: the path holds a NUL byte, which no file name can"
        )
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        raise LibraryError(
            f"{shown} is not a surrogate library (it does not exist); create one with "
            f"`cosim characterize --out {show(out_suggestion(path))}`"
        ) from None
    except (OSError, ValueError) as exc:  # a name too long, no permission, a loop of links
        raise LibraryError(f"cannot read the surrogate library {shown} ({reason(exc)})") from None
    if not stat.S_ISDIR(st.st_mode):
        what = "a file" if stat.S_ISREG(st.st_mode) else "not a directory"
        raise LibraryError(
            f"{shown} is {what}, not a surrogate library: a library is the directory that "
            f"`cosim characterize --out DIR` writes; create one with "
            f"`cosim characterize --out {show(fresh_dir(path))}`"
        )
    lib_file = path / LIBRARY_MARKER
    if not os.path.lexists(lib_file):
        raise LibraryError(
            f"{shown} is not a surrogate library (no library.json); create one with "
            f"`cosim characterize --out {show(out_suggestion(path))}`"
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
    lib_file = check_library_dir(path)
    try:
        doc = read_json_bounded(
            lib_file, max_bytes=LIBRARY_JSON_MAX_BYTES, what="library file", error=LibraryError
        )
    except LibraryError as exc:
        raise LibraryError(f"{exc}; re-run cosim characterize") from None
    if not isinstance(doc, dict) or "schema_version" not in doc:
        raise LibraryError(f"{show(lib_file)} is not a cosim surrogate library (no schema_version)")
    return doc


def arrays_name(lib_file: Path, doc: dict[str, Any]) -> str:
    """The arrays file named in ``doc`` (``library.json`` at ``lib_file``): a plain name
    inside the library directory."""
    name = doc.get("arrays_file", "arrays.npz")
    if (
        not isinstance(name, str)
        or name in ("", ".", "..")
        or "\0" in name
        or Path(name).name != name
        or name != name.strip()
    ):
        raise LibraryError(
            f"{show(lib_file)}: arrays_file must name a file inside the library directory, "
            f"got {short(name)}; the library is corrupt — re-run cosim characterize"
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
    arrays_file = path / arrays_name(path / LIBRARY_MARKER, doc)
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
                f"cannot read {show(arrays_file)} ({show(problem)}); re-run cosim characterize"
            )
        try:
            with np.load(fh, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise LibraryError(
                f"cannot read {show(arrays_file)} ({reason(exc)}); re-run cosim characterize"
            ) from None
