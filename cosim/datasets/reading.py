"""Bounded reading of the files and directories a user names as a dataset.

A path that is not what it should be (a file given as the dataset's directory, a directory,
FIFO or device where a data file belongs) is named as such; data files are read only if they
are regular files of at most :data:`MAX_FILE_BYTES` (gzipped files: also at most that much
once decompressed).
"""

from __future__ import annotations

import gzip
import io
import os
import stat
import zlib
from pathlib import Path

from cosim.errors import DataError
from cosim.fileio import error_text, path_problem, show_path, show_text, stat_path

#: Largest data file read (and largest decompressed IDX file): 2 GiB, four times the largest
#: IDX set in use (EMNIST ByClass training images, ~550 MB).
MAX_FILE_BYTES = 2 << 30


def check_dir(directory: Path, name: str) -> Path:
    """``directory`` if it is one; otherwise a DataError saying what it is instead.

    A path no directory can have (a NUL byte, a name longer than the file system allows) or
    cannot be looked at (no permission) is a DataError too, naming it.
    """
    directory = Path(directory)
    label, shown = show_text(name), show_path(directory)
    problem = path_problem(directory)
    if problem is not None:
        raise DataError(f"dataset {label}: {shown} {problem}")
    try:
        st = os.stat(directory)
    except (FileNotFoundError, NotADirectoryError):
        raise DataError(
            f"dataset {label}: {shown} is not a directory (it does not exist)"
        ) from None
    except (OSError, ValueError) as exc:
        raise DataError(f"dataset {label}: cannot read {shown} ({error_text(exc)})") from None
    if stat.S_ISDIR(st.st_mode):
        return directory
    kind = "a file" if stat.S_ISREG(st.st_mode) else "a FIFO, socket or device"
    raise DataError(
        f"dataset {label}: {shown} is {kind}, not a directory; pass the directory that "
        "holds the dataset's files"
    )


def present(path: Path) -> bool:
    """Whether ``path`` exists (like ``Path.exists``); a path that cannot be looked at (a
    name too long, no permission) counts too, so that the reader that opens it says why."""
    try:
        os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return False
    except (OSError, ValueError):
        return True
    return True


def _check_regular(path: Path, mode: int, what: str) -> None:
    if stat.S_ISDIR(mode):
        raise DataError(f"{what} {show_path(path)} is a directory, not a file")
    if not stat.S_ISREG(mode):
        raise DataError(
            f"{what} {show_path(path)} is not a regular file (a FIFO, socket or device)"
        )


def read_data_file(path: str | Path, what: str = "data file") -> bytes:
    """The bytes of ``path``, a regular file of at most :data:`MAX_FILE_BYTES`.

    A directory, FIFO or device (``/dev/zero``) is refused before anything is read, so a
    wrong path can neither block nor read without end.

    Raises
    ------
    DataError
        If the file is missing, not a regular file, larger than the bound or unreadable.
    """
    path = Path(path)
    st = stat_path(path, what=what, error=DataError)
    _check_regular(path, st.st_mode, what)
    try:
        # O_NONBLOCK: should a FIFO replace the file after the check, opening it does not
        # wait for a writer; fstat below then refuses it
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise DataError(f"cannot read {what} {show_path(path)}: {error_text(exc)}") from None
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fd)
        _check_regular(path, st.st_mode, what)
        if st.st_size > MAX_FILE_BYTES:
            raise DataError(_too_big(path, what))
        try:
            raw = fh.read(st.st_size + 1)
            while len(raw) <= MAX_FILE_BYTES and (more := fh.read(1 << 20)):
                raw += more  # the file grew since fstat
        except OSError as exc:
            raise DataError(f"cannot read {what} {show_path(path)}: {error_text(exc)}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise DataError(_too_big(path, what))
    return raw


def _too_big(path: Path, what: str) -> str:
    return (
        f"{what} {show_path(path)} holds more than {_human(MAX_FILE_BYTES)}, more than any dataset "
        "cosim reads; check the path"
    )


def _human(n: int) -> str:
    """A byte count as ``2 GiB``, ``5 MiB`` or ``1000 bytes``."""
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size and n % size == 0:
            return f"{n // size} {unit}"
    return f"{n} bytes"


def gunzip(raw: bytes, path: Path) -> bytes:
    """Decompress a gzipped data file, refusing more than :data:`MAX_FILE_BYTES` of output."""
    parts, total = [], 0
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(raw)) as gz:
            while chunk := gz.read(1 << 22):
                total += len(chunk)
                if total > MAX_FILE_BYTES:
                    raise DataError(
                        f"{show_path(path)} decompresses to more than "
                        f"{_human(MAX_FILE_BYTES)}, more than any IDX file; it is not a dataset "
                        "file"
                    )
                parts.append(chunk)
    except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        raise DataError(
            f"cannot read IDX file {show_path(path)}: {error_text(exc)} (a damaged .gz file)"
        ) from exc
    return b"".join(parts)
