"""A surrogate library sent to a machine without the client's filesystem (a cluster worker).

The client reads the library's files as bytes (:func:`library_files`); the worker writes
them once into a private directory named by their digest and loads that with the same
checks as any library (:func:`library_from_files`). A worker never needs the client's
path, and a library that changed on the client gets a new digest, never a stale copy.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from cosim.errors import LibraryError
from cosim.fileio import LIBRARY_FILES
from cosim.library.loading import load_library
from cosim.library.surrogates import SurrogateLibrary

__all__ = ["files_digest", "library_files", "library_from_files"]

_MAX_BYTES = 2 << 30  # a library over 2 GiB is not one cosim wrote


def library_files(library: SurrogateLibrary | str | Path) -> dict[str, bytes]:
    """The bytes of each file of a library directory (``library.json``, ``arrays.npz``,
    ``validation.json``), by name.

    Raises
    ------
    LibraryError
        A file is missing, unreadable or larger than 2 GiB.
    """
    root = Path(library.path if isinstance(library, SurrogateLibrary) else library)
    out: dict[str, bytes] = {}
    total = 0
    for name in sorted(LIBRARY_FILES):
        path = root / name
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise LibraryError(
                f"cannot read {path} to send it to the cluster: {exc.strerror or exc}"
            ) from None
        total += len(data)
        if total > _MAX_BYTES:
            raise LibraryError(f"library {root} is over 2 GiB; it is not one cosim wrote")
        out[name] = data
    return out


def files_digest(files: dict[str, bytes]) -> str:
    """SHA-256 over the files' names and contents (hex)."""
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(name.encode())
        h.update(b"\0")
        h.update(hashlib.sha256(files[name]).digest())
    return h.hexdigest()


def _copy_digest(path: Path) -> str | None:
    """The digest of the library files in ``path`` (``None`` when one is missing)."""
    try:
        return files_digest({n: (path / n).read_bytes() for n in LIBRARY_FILES})
    except OSError:
        return None


def library_from_files(files: dict[str, bytes], root: str | Path | None = None) -> SurrogateLibrary:
    """Load a library from :func:`library_files`' bytes.

    The files are written once under ``root`` (default: the temporary directory's
    ``cosim-libraries``) in a directory named by their digest, through a temporary name and
    a rename, so two processes writing the same library at once both end with a whole one.
    A copy there whose files no longer have that digest (damaged, or partly removed by a
    temporary-file cleaner) is replaced.

    Raises
    ------
    LibraryError
        The files do not form a valid library (the checks of :func:`load_library`).
    """
    if set(files) != set(LIBRARY_FILES):
        raise LibraryError(
            f"a shipped library must hold exactly {', '.join(sorted(LIBRARY_FILES))}; "
            f"got {', '.join(sorted(files)) or 'nothing'}"
        )
    base = Path(root) if root is not None else Path(tempfile.gettempdir()) / "cosim-libraries"
    digest = files_digest(files)
    target = base / digest
    if target.exists() and _copy_digest(target) != digest:  # damaged, or half cleaned away
        stale = base / f".stale-{digest[:16]}-{os.getpid()}"
        with contextlib.suppress(OSError):
            os.rename(target, stale)
        shutil.rmtree(stale, ignore_errors=True)
    if not (target / "library.json").is_file():
        base.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".incoming-", dir=base))
        try:
            for name, data in files.items():
                (tmp / name).write_bytes(data)
            try:
                os.rename(tmp, target)
            except OSError:  # another process renamed its whole copy first
                if not (target / "library.json").is_file():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return load_library(target)
