"""Atomic writing: a reader never sees half a file, and a failed write changes nothing.

A file or directory is written under a temporary name in the same directory, then renamed
into place, so a reader never sees half of it and an interrupted write leaves the previous
version intact (:func:`atomic_path`, :func:`atomic_directory`). Files and directories get the
permissions the user's umask gives (not the 0600/0700 of :mod:`tempfile`); writers that swap
the same directory serialize on a lock.

A writer of a user's output checks its path first (:mod:`cosim.fileio.ownership`):
:func:`write_output_json` for a JSON file, :func:`atomic_directory` for a directory replaced
whole, :func:`output_directory` for a directory created and marked as cosim's
(:func:`mark_output_dir`).
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from cosim.errors import CosimError
from cosim.fileio.ownership import check_output_dir, check_output_file
from cosim.fileio.paths import _entries, _make_dirs, _normalize, _remove_empty
from cosim.fileio.recognition import is_cosim_json, try_json
from cosim.fileio.text import show_path

#: Seconds a writer waits for another one to finish swapping the same directory.
LOCK_TIMEOUT_S = 120.0

_umask_lock = threading.Lock()


# -------------------------------------------------------------------------------- umask
def current_umask() -> int:
    """The process's umask, read without changing it where the system allows.

    Linux reports it in ``/proc/self/status``; elsewhere it is read by setting it twice
    (to the restrictive 0o077 in between, under a lock), so that a file another thread
    creates meanwhile is never more open than intended.
    """
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _umask_lock:
        old = os.umask(0o077)
        os.umask(old)
    return old


def _file_mode() -> int:
    return 0o666 & ~current_umask()


def _dir_mode() -> int:
    return 0o777 & ~current_umask()


# ----------------------------------------------------------------------- atomic writing
@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` if the block succeeds.

    The file gets the mode the umask gives a new file. Missing parent directories are
    created; a file standing where a directory is needed is a :class:`CosimError`.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> with atomic_path(d / "x.txt") as tmp:
    ...     _ = tmp.write_text("hello")
    >>> (d / "x.txt").read_text()
    'hello'
    """
    path = Path(path)
    _make_dirs(path.parent)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        os.fchmod(fd, _file_mode())
    finally:
        os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} as JSON")


def dumps_json(obj: Any) -> str:
    """Serialize ``obj`` to indented JSON, accepting NumPy scalars and arrays."""
    return json.dumps(obj, indent=2, default=_json_default, allow_nan=True) + "\n"


def write_json_atomic(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as JSON to ``path`` atomically (cosim's internal files)."""
    write_text_atomic(path, dumps_json(obj))


def write_output_json(path: str | os.PathLike[str], obj: dict[str, Any]) -> None:
    """Write a user-requested JSON output (``--json``) atomically, marked as cosim's.

    The file gets a first top-level key ``"written_by": "cosim <version>"``, by which
    :func:`check_output_file` recognises it later. ``path`` is checked first (with
    ``kind="json"``): a foreign file, a directory or a link there is a :class:`CosimError`.
    """
    from cosim import __version__

    if not isinstance(obj, dict):
        raise TypeError(f"a JSON output must be a dict, got {type(obj).__name__}")
    check_output_file(path, kind="json")
    doc = {"written_by": f"cosim {__version__}"}
    doc.update((k, v) for k, v in obj.items() if k != "written_by")
    write_json_atomic(path, doc)


def save_npz_atomic(path: str | os.PathLike[str], **arrays: np.ndarray) -> None:
    """Save arrays to an uncompressed ``.npz`` atomically (no pickled objects)."""
    # numpy's stub types savez's **kwds beside its keyword allow_pickle: bool
    entries: dict[str, Any] = arrays
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **entries)


def call_atomic(path: str | os.PathLike[str], writer: Callable[[Path], None]) -> None:
    """Call ``writer(tmp_path)`` and rename the result onto ``path``."""
    with atomic_path(path) as tmp:
        writer(tmp)


# ------------------------------------------------------------------- output directories
def mark_output_dir(path: str | os.PathLike[str], *, kind: str, marker: str) -> Path:
    """Write the ``marker`` file into the existing directory ``path`` (if it lacks one)."""
    from cosim import __version__

    target = Path(path) / marker
    if not is_cosim_json(try_json(target)):
        write_json_atomic(target, {"written_by": f"cosim {__version__}", "kind": kind})
    return target


@contextmanager
def output_directory(path: str | os.PathLike[str], *, kind: str, marker: str) -> Iterator[Path]:
    """Check, create and mark the output directory ``path``; undo that if the block fails.

    :func:`check_output_dir` first; then the directory (and missing parents) is created and
    ``marker`` written into it. If the block raises, what this created is removed again
    when nothing else was written there: the marker, then the directories (only those it
    created, only if empty). A directory that already existed is never removed.
    """
    check_output_dir(path, kind=kind, marker=marker, replace=False)
    dest = Path(path)
    created = _make_dirs(dest)
    marker_path = dest / marker
    had_marker = os.path.lexists(marker_path)
    try:
        if not had_marker:
            mark_output_dir(dest, kind=kind, marker=marker)
        yield dest
    except BaseException:
        if not had_marker:
            try:
                only_marker = _entries(dest, 2) == [marker]
            except OSError:
                only_marker = False
            if only_marker:
                Path(marker_path).unlink(missing_ok=True)
        _remove_empty(created)
        raise


@contextmanager
def _locked(directory: Path, what: str | os.PathLike[str]) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``directory`` (its own fd: nothing is left behind)."""
    try:
        import fcntl
    except ImportError:  # no flock on this system: writers are not serialized
        yield
        return
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        deadline = time.monotonic() + LOCK_TIMEOUT_S
        delay = 0.001
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise CosimError(
                        f"another process has been writing {show_path(what)} for over "
                        f"{LOCK_TIMEOUT_S:.0f} s (lock on {show_path(directory)}); let it finish "
                        "or stop it, then retry"
                    ) from None
                time.sleep(delay)
                delay = min(2 * delay, 0.02)
        yield
    finally:
        os.close(fd)


def _swap_in(tmp: Path, dest: Path) -> None:
    """Rename ``tmp`` onto ``dest`` (absent, empty or to be replaced); restore on failure."""
    try:
        os.rename(tmp, dest)  # onto nothing, or onto an empty directory
        return
    except OSError as exc:
        if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
            raise
    old = dest.with_name(f".{dest.name}.old-{os.getpid()}-{secrets.token_hex(4)}")
    os.rename(dest, old)
    try:
        os.rename(tmp, dest)
    except BaseException:
        os.rename(old, dest)
        raise
    shutil.rmtree(old, ignore_errors=True)


@contextmanager
def atomic_directory(
    path: str | os.PathLike[str],
    *,
    kind: str,
    marker: str,
    contents: Collection[str] | None = None,
) -> Iterator[Path]:
    """Build a directory under a temporary name, then swap it in place of ``path``.

    ``path`` must pass :func:`check_output_dir` (replaced whole): missing, empty, or a cosim
    ``kind`` directory holding ``marker``; it is checked before the block and again, under a
    lock, just before the swap. Concurrent writers of the same destination serialize on an
    ``flock`` of its parent directory (the last one wins; nothing is left beside it). On
    failure the old directory is untouched and the temporary one removed. The new directory
    gets the mode the umask gives.
    """
    check_output_dir(path, kind=kind, marker=marker, replace=True, contents=contents)
    dest = _normalize(path)
    created = _make_dirs(dest.parent)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    except BaseException:
        _remove_empty(created)
        raise
    try:
        os.chmod(tmp, _dir_mode())
        yield tmp
        with _locked(dest.parent, path):
            check_output_dir(path, kind=kind, marker=marker, replace=True, contents=contents)
            _swap_in(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        _remove_empty(created)
        raise
