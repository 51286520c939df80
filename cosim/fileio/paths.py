"""Output paths: resolved, created, and checked that they can be.

The helpers that :mod:`cosim.fileio.ownership` (which checks a path before a write) and
:mod:`cosim.fileio.atomic` (which writes there) share: a path resolved but for its last
component (:func:`_normalize`), a path that does not exist checked to be creatable
(:func:`_check_creatable`, :func:`_check_path_text`), missing directories created and the
empty ones removed again (:func:`_make_dirs`, :func:`_remove_empty`), a directory listed
(:func:`_entries`). A problem is a :class:`~cosim.errors.CosimError` of one line that names
the path.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from cosim.errors import CosimError
from cosim.fileio.text import error_text, path_problem, show_path


# -------------------------------------------------------------------------------- paths
def _normalize(path: str | os.PathLike[str]) -> Path:
    """Absolute path with every directory above the last component resolved.

    The last component is kept as named (so a symbolic link there is seen as one), except
    ``.``/``..``/``/``, which are resolved whole.
    """
    if os.fspath(path) == "":
        raise CosimError("an empty path was given where a file or directory is expected")
    p = Path(path)
    if p.name in ("", ".", ".."):
        return Path(os.path.realpath(p))
    return Path(os.path.realpath(p.parent)) / p.name


def _make_dirs(directory: Path) -> list[Path]:
    """Create ``directory`` and its missing parents; return those created, outermost first.

    A file (or anything else) in the way is a :class:`CosimError`.
    """
    shown = show_path(directory)
    missing: list[Path] = []
    p = Path(directory)
    while not os.path.isdir(p):
        if os.path.lexists(p):
            raise CosimError(
                f"cannot create directory {shown}: {show_path(p)} exists and is not a directory"
            )
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    created = []
    for m in reversed(missing):
        try:
            os.mkdir(m)
        except FileExistsError:
            if not os.path.isdir(m):
                raise CosimError(
                    f"cannot create directory {shown}: {show_path(m)} exists and is not a directory"
                ) from None
        except NotADirectoryError:
            raise CosimError(
                f"cannot create directory {shown}: a file stands in its path"
            ) from None
        else:
            created.append(m)
    return created


def _remove_empty(created: list[Path]) -> None:
    """Remove the directories in ``created`` (innermost first) that are still empty."""
    for d in reversed(created):
        try:
            os.rmdir(d)
        except OSError:
            return


def _check_creatable(path: str | os.PathLike[str], start: Path, what: str) -> None:
    """``path`` does not exist: its nearest existing ancestor must be a writable directory."""
    shown = show_path(path)
    d = start
    while True:
        try:
            st = os.stat(d)
        except (FileNotFoundError, NotADirectoryError):
            if os.path.lexists(d) and not os.path.exists(d):
                raise CosimError(
                    f"cannot create {what} {shown}: {show_path(d)} is a broken symbolic link"
                ) from None
            if d.parent == d:
                raise CosimError(f"cannot create {what} {shown}: no existing parent") from None
            d = d.parent
            continue
        except OSError as exc:
            raise CosimError(
                f"cannot create {what} {shown}: {show_path(d)}: {error_text(exc)}"
            ) from None
        if not stat.S_ISDIR(st.st_mode):
            raise CosimError(
                f"cannot create {what} {shown}: {show_path(d)} is a file, not a directory; "
                "give a path inside a directory"
            )
        if not os.access(d, os.W_OK | os.X_OK):
            raise CosimError(
                f"cannot create {what} {shown}: no permission to write in {show_path(d)}; "
                "choose a writable location"
            )
        # access() answers for the mode bits only: a read-only mount, a pseudo file system
        # (/proc) or a quota still refuse; a probe file, removed at once, asks the system
        try:
            fd, probe = tempfile.mkstemp(prefix=".cosim-write-check-", dir=d)
        except OSError as exc:
            raise CosimError(
                f"cannot create {what} {shown}: {show_path(d)} takes no new files "
                f"({error_text(exc)}); choose a writable location"
            ) from None
        os.close(fd)
        os.unlink(probe)
        return


def _check_path_text(path: str | os.PathLike[str], what: str) -> None:
    """An output ``path`` holding a NUL byte is a CosimError (before any system call)."""
    problem = path_problem(path)
    if problem is not None:
        raise CosimError(f"cannot write {what} {show_path(path)}: the path {problem}")


def _is_within(inner: str, outer: str) -> bool:
    return inner == outer or Path(inner).is_relative_to(outer)


def _entries(directory: Path, limit: int) -> list[str]:
    names = []
    with os.scandir(directory) as it:
        for e in it:
            names.append(e.name)
            if len(names) >= limit:
                break
    return names
