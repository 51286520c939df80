"""Bounded, safe reading of paths a user gave.

Every reader here is bounded: it checks that it opens a regular file (no link, device or
pipe) of a sane size, and reads at most that many bytes (:func:`open_regular`,
:func:`read_json_bounded`). A ``.npz`` is checked before NumPy loads it
(:func:`npz_problem`): its zip directory, the ``.npy`` header of each member
(:func:`read_npy_header`) and its dtype (:func:`array_dtype_problem`), so that loading
allocates no more than the caller allows and unpickles nothing.

Every failure is one line of the caller's :class:`~cosim.errors.CosimError` class that names
the path, escaped (:func:`stat_path`; the message helpers are in :mod:`cosim.fileio.text`).
"""

from __future__ import annotations

import json
import os
import stat
import struct
import sys
import tokenize
import warnings
import zipfile
import zlib
from typing import IO, Any, BinaryIO

import numpy as np

from cosim.errors import CosimError
from cosim.fileio.text import error_text, path_problem, show_path

#: The largest central directory of a ``.npz`` that cosim parses (bytes, entries).
ZIP_DIRECTORY_MAX_BYTES = 64 * 2**20
ZIP_MAX_ENTRIES = 1_000_000


# --------------------------------------------------------------------------- user paths
def stat_path(
    path: str | os.PathLike[str],
    *,
    what: str = "file",
    error: type[CosimError] = CosimError,
    follow_symlinks: bool = True,
    missing: str = "",
) -> os.stat_result:
    """``os.stat`` (``os.lstat`` without ``follow_symlinks``) of a path the user gave.

    Every failure is one line of class ``error`` naming the path (escaped by
    :func:`show_path`): ``"{what} {path} does not exist{missing}"`` when it (or a directory
    above it) is missing, otherwise ``"cannot read {what} {path} (reason)"`` — a NUL byte, a
    name longer than the file system allows, no permission, a loop of links.
    """
    problem = path_problem(path)
    if problem is not None:
        raise error(f"{what} {show_path(path)} {problem}")
    try:
        return os.stat(path, follow_symlinks=follow_symlinks)
    except (FileNotFoundError, NotADirectoryError):
        raise error(f"{what} {show_path(path)} does not exist{missing}") from None
    except (OSError, ValueError) as exc:
        raise error(f"cannot read {what} {show_path(path)} ({error_text(exc)})") from None


# ---------------------------------------------------------------------- bounded reading
def open_regular(
    path: str | os.PathLike[str],
    *,
    max_bytes: int,
    what: str = "file",
    error: type[CosimError] = CosimError,
) -> BinaryIO:
    """Open ``path`` for reading if it is a regular file (not a link) of at most ``max_bytes``.

    Parameters
    ----------
    path
        The file.
    max_bytes
        The largest size accepted.
    what
        What the file is, for the message (e.g. ``"library file"``).
    error
        The :class:`CosimError` subclass raised.

    Raises
    ------
    CosimError
        (of class ``error``) The file is missing, a symbolic link, a directory, a device or
        pipe, or larger than ``max_bytes``; the path holds a NUL byte or a name longer than
        the file system allows; the message (one line) names it and says which.
    """
    st = stat_path(path, what=what, error=error, follow_symlinks=False)
    shown = show_path(path)
    if stat.S_ISLNK(st.st_mode):
        raise error(f"{what} {shown} is a symbolic link; cosim reads only a regular file there")
    if stat.S_ISDIR(st.st_mode):
        raise error(f"{what} {shown} is a directory, not a file")
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{what} {shown} is not a regular file (a device, pipe or socket)")
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise error(f"cannot read {what} {shown} ({error_text(exc)})") from None
    fst = os.fstat(fd)
    if not stat.S_ISREG(fst.st_mode):  # replaced between the two looks
        os.close(fd)
        raise error(f"{what} {shown} is not a regular file")
    if fst.st_size > max_bytes:
        os.close(fd)
        raise error(
            f"{what} {shown} is {fst.st_size} bytes, more than the {max_bytes} such a file "
            "may hold; it is not cosim's or it is corrupt"
        )
    return os.fdopen(fd, "rb")


def read_json_bounded(
    path: str | os.PathLike[str],
    *,
    max_bytes: int,
    what: str = "file",
    error: type[CosimError] = CosimError,
) -> Any:
    """Parse a UTF-8 JSON file through :func:`open_regular`; anything wrong is ``error``.

    Every failure is one line naming the file: a path that names no regular file, a file
    larger than ``max_bytes``, text that is not UTF-8 or not JSON, an integer of more digits
    than Python converts (4300), nesting deeper than the parser follows.
    """
    with open_regular(path, max_bytes=max_bytes, what=what, error=error) as fh:
        data = fh.read(max_bytes + 1)
    shown = show_path(path)
    if len(data) > max_bytes:
        raise error(f"{what} {shown} is larger than {max_bytes} bytes")
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise error(
            f"{shown} is corrupt (not UTF-8 text: {exc.reason} at byte {exc.start})"
        ) from None
    except json.JSONDecodeError as exc:
        raise error(f"{shown} is corrupt ({error_text(exc)})") from None
    except ValueError:  # an integer of more digits than int() converts
        raise error(
            f"{shown} is corrupt (it holds an integer of more than {int_digits_limit()} digits)"
        ) from None
    except (RecursionError, MemoryError):
        raise error(f"{shown} is corrupt (JSON nested too deeply)") from None


def int_digits_limit() -> int:
    """The most digits Python converts to an integer (``sys.get_int_max_str_digits``)."""
    return getattr(sys, "get_int_max_str_digits", lambda: 4300)() or 4300


# ------------------------------------------------------------------------- npz archives
def _zip_directory_ok(fh: BinaryIO, size: int) -> bool:
    """The zip's end record claims a central directory within the bounds (checked before
    :mod:`zipfile` parses it)."""
    tail_len = min(size, 65536 + 22)
    fh.seek(size - tail_len)
    tail = fh.read(tail_len)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < 22:
        return False
    entries, cd_size = struct.unpack("<HI", tail[at + 10 : at + 16])
    if entries == 0xFFFF or cd_size == 0xFFFFFFFF:  # zip64: read its end record
        loc = at - 20
        if loc < 0 or tail[loc : loc + 4] != b"PK\x06\x07":
            return False
        (offset,) = struct.unpack("<Q", tail[loc + 8 : loc + 16])
        if offset + 56 > size:
            return False
        fh.seek(offset)
        rec = fh.read(56)
        if rec[:4] != b"PK\x06\x06":
            return False
        entries, cd_size = struct.unpack("<QQ", rec[32:48])
    return entries <= ZIP_MAX_ENTRIES and cd_size <= ZIP_DIRECTORY_MAX_BYTES


#: What reading a damaged or foreign ``.npz`` and the headers of its ``.npy`` members can
#: raise: a damaged zip (``BadZipFile``, ``zlib.error``, ``NotImplementedError`` for an
#: unknown compression, ``RuntimeError`` for an encrypted member), a short read
#: (``EOFError``, ``struct.error``), a header that is not a Python literal (NumPy's
#: ``ast.literal_eval`` and its fallback tokenizer: ``SyntaxError``, ``tokenize.TokenError``,
#: ``RecursionError``, ``MemoryError``), one whose values are wrong (``ValueError``,
#: ``TypeError``, ``OverflowError``), and a warning turned into an error
#: (:func:`read_npy_header`).
NPY_READ_ERRORS: tuple[type[BaseException], ...] = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    NotImplementedError,
    RuntimeError,
    OSError,
    EOFError,
    struct.error,
    KeyError,
    ValueError,
    TypeError,
    OverflowError,
    SyntaxError,
    tokenize.TokenError,
    RecursionError,
    MemoryError,
    Warning,
)


def array_dtype_problem(dtype: np.dtype) -> str | None:
    """Why an array of ``dtype`` is none that cosim stores, or None.

    cosim stores booleans, integers, real floating-point numbers and text. Python objects
    would need a pickle; complex numbers would lose their imaginary part (with a
    ``ComplexWarning``) where a real array is expected; records, raw bytes and dates hold
    no numbers at all.

    Examples
    --------
    >>> array_dtype_problem(np.dtype(complex))
    'holds complex numbers, not real ones'
    >>> array_dtype_problem(np.dtype("<f4")) is None
    True
    """
    if dtype.hasobject:
        return "holds Python objects"
    if dtype.kind == "c":
        return "holds complex numbers, not real ones"
    if dtype.kind == "V":
        return "holds records or raw bytes, not numbers"
    if dtype.kind in "Mm":
        return "holds dates or time spans, not numbers"
    return None


def read_npy_header(member: IO[bytes]) -> tuple[tuple[int, ...], bool, np.dtype]:
    """``(shape, fortran_order, dtype)`` from the header of the ``.npy`` stream ``member``.

    Formats 1.0 and 2.0 (what NumPy writes); a warning while parsing (NumPy warns about
    headers written by Python 2, Python about odd escapes in a literal) is raised as an
    error, so nothing is printed. Anything in :data:`NPY_READ_ERRORS` may be raised.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        version = np.lib.format.read_magic(member)
        try:
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(member)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(member)
            else:
                raise ValueError(f".npy format {version[0]}.{version[1]} is not 1.0 or 2.0")
        except (SyntaxError, tokenize.TokenError) as exc:
            raise ValueError("the header is not a complete Python literal") from exc
    if any(n < 0 for n in shape):
        raise ValueError(f"negative dimension in the shape {shape}")
    return shape, fortran, dtype


def npz_problem(fh: BinaryIO, max_bytes: int) -> str | None:
    """What makes the open ``.npz`` ``fh`` unsafe to load, or None when it is fine.

    Checked without loading any array: a zip whose central directory is within bounds;
    members that are all ``.npy`` files, together at most ``max_bytes`` uncompressed; each
    member's header (format 1.0 or 2.0, a complete Python literal) declares a dtype cosim
    stores (:func:`array_dtype_problem`: no Python objects, no complex numbers) and no
    more data than the member holds. Then ``np.load(fh, allow_pickle=False)`` allocates at
    most about ``max_bytes``. The answer is one line (member names escaped).
    """
    try:
        size = os.fstat(fh.fileno()).st_size
        fh.seek(0)
        if size < 22 or fh.read(4) not in (b"PK\x03\x04", b"PK\x05\x06"):
            return "not a zip archive"
        if not _zip_directory_ok(fh, size):
            return "its zip directory is damaged or implausibly large"
        fh.seek(0)
        total = 0
        with zipfile.ZipFile(fh) as zf:
            for info in zf.infolist():
                name = ascii(info.filename)
                if len(name) > 80:
                    name = name[:76] + "...'"
                if not info.filename.endswith(".npy"):
                    return f"member {name} is not an array"
                total += info.file_size
                if total > max_bytes:
                    return f"its arrays exceed {max_bytes} bytes"
                with zf.open(info) as member:
                    try:
                        shape, _, dtype = read_npy_header(member)
                    except NPY_READ_ERRORS as exc:
                        return f"array {name} has a damaged header ({error_text(exc)})"
                problem = array_dtype_problem(dtype)
                if problem is not None:
                    return f"array {name} {problem}"
                if int(np.prod(shape, dtype=object)) * dtype.itemsize > info.file_size:
                    return f"array {name} is truncated"
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError) as exc:
        return f"not a readable zip archive ({error_text(exc)})"
    except NPY_READ_ERRORS as exc:
        return f"damaged ({error_text(exc)})"
    finally:
        fh.seek(0)
    return None
