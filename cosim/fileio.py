"""Output files: atomic writes, and never touching what is not cosim's.

Atomic writing: a file or directory is written under a temporary name in the same
directory, then renamed into place, so a reader never sees half of it and an interrupted
write leaves the previous version intact. Files and directories get the permissions the
user's umask gives (not the 0600/0700 of :mod:`tempfile`).

Output checks: before any work starts, a command checks every path it will write with
:func:`check_output_dir` or :func:`check_output_file`. cosim replaces only what is missing,
empty, or its own: a directory holding cosim's marker file (``library.json`` for a
surrogate library, :data:`REPORT_MARKER` for a report), or a file cosim wrote (JSON with a
top-level ``"written_by": "cosim <version>"`` key, a model or checkpoint ``.npz`` whose
``meta`` entry says so, a PNG whose ``Software`` text starts with ``cosim``). Anything else
— a foreign file or directory, a symbolic link, a device — is a :class:`CosimError` that
names the path, and nothing is touched.

Every reader here is bounded: it checks that it opens a regular file (no link, device or
pipe) of a sane size, and reads at most that many bytes.

Every error is one line that names the path: a path (or any other user text) is shown with
its control characters escaped (:func:`show_path`, :func:`show_text`), and a path that no
file can have (a NUL byte, a name longer than the file system allows) is an error of the
caller's class like any other, never a ``ValueError`` or ``OSError``.
"""

from __future__ import annotations

import errno
import io
import json
import os
import secrets
import shutil
import stat
import struct
import sys
import tempfile
import threading
import time
import tokenize
import warnings
import zipfile
import zlib
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from cosim.errors import CosimError

#: The file that marks a directory as a cosim surrogate library.
LIBRARY_MARKER = "library.json"
#: Everything cosim writes into a surrogate library directory.
LIBRARY_FILES = frozenset({"library.json", "arrays.npz", "validation.json"})
#: The file that marks a directory as a cosim report (written when the report starts).
REPORT_MARKER = ".cosim-report"
#: A report directory written before :data:`REPORT_MARKER` existed holds this file.
REPORT_JSON = "report.json"

#: The largest marker or JSON output file cosim reads to recognise its own (bytes).
JSON_MAX_BYTES = 64 * 2**20
#: The largest ``meta`` entry of a model or checkpoint ``.npz`` (bytes).
NPZ_META_MAX_BYTES = 16 * 2**20
#: The largest central directory of a ``.npz`` that cosim parses (bytes, entries).
ZIP_DIRECTORY_MAX_BYTES = 64 * 2**20
ZIP_MAX_ENTRIES = 1_000_000
#: PNG chunks scanned for the ``Software`` text, and the largest text chunk read (bytes).
PNG_MAX_CHUNKS = 4096
PNG_TEXT_MAX_BYTES = 64 * 2**10
#: Seconds a writer waits for another one to finish swapping the same directory.
LOCK_TIMEOUT_S = 120.0

_FILE_KINDS = {
    "json": "JSON output",
    "png": "plot",
    "model": "model file",
    "checkpoint": "training checkpoint",
}
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_umask_lock = threading.Lock()


# ------------------------------------------------------------------------------ umask
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


# ------------------------------------------------------------------------------ paths
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
        return


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


def _named(names: list[str], more: bool) -> str:
    shown = ", ".join(show_text(n) for n in sorted(names)[:4])
    return shown + (", ..." if more or len(names) > 4 else "")


# ------------------------------------------------------------------- user text in errors
def show_text(text: str) -> str:
    """``text`` for a one-line message: every character that is not printable (a newline,
    a tab, NUL, U+2028, the surrogate standing for an undecodable byte) escaped as Python
    writes it in a string literal; printable text is kept as it is.

    Examples
    --------
    >>> print(show_text("new\\nline"), show_text("a\\x00b"), show_text("plain path"))
    new\\nline a\\x00b plain path
    """
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def show_path(path: str | bytes | os.PathLike[str]) -> str:
    """A path (str, bytes or path object) for a one-line message (:func:`show_text`)."""
    return show_text(os.fsdecode(path))


def error_text(exc: BaseException, limit: int = 160) -> str:
    """An exception in a few words on one line, for a message that names the file itself.

    An OSError gives its ``strerror`` (``File name too long``), without the path; anything
    else its text with whitespace runs collapsed and other control characters escaped, cut
    to ``limit`` characters; an exception without text gives its class name.
    """
    reason = getattr(exc, "strerror", None)
    if not (isinstance(reason, str) and reason):
        reason = " ".join(str(exc).split())
    text = show_text(reason) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def path_problem(path: str | bytes | os.PathLike[str]) -> str | None:
    """What keeps ``path`` from naming any file before the system is asked, or None.

    A NUL byte ends a C string, so no file name holds one (Python raises ``ValueError:
    embedded null byte`` for it rather than an OSError).

    Examples
    --------
    >>> path_problem("a\\x00b")
    'holds a NUL byte, which no file name can'
    >>> path_problem("a/b") is None
    True
    """
    text = os.fsdecode(path)
    if "\x00" in text:
        return "holds a NUL byte, which no file name can"
    return None


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


def _check_path_text(path: str | os.PathLike[str], what: str) -> None:
    """An output ``path`` holding a NUL byte is a CosimError (before any system call)."""
    problem = path_problem(path)
    if problem is not None:
        raise CosimError(f"cannot write {what} {show_path(path)}: the path {problem}")


# --------------------------------------------------------------------- bounded reading
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


def _try_json(path: Path, max_bytes: int = JSON_MAX_BYTES) -> Any:
    try:
        return read_json_bounded(path, max_bytes=max_bytes)
    except CosimError:
        return None


def _is_cosim_json(doc: Any) -> bool:
    if not isinstance(doc, dict):
        return False
    by = doc.get("written_by")
    return (isinstance(by, str) and by.startswith("cosim")) or "cosim_version" in doc


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


def read_npy_header(member: BinaryIO) -> tuple[tuple[int, ...], bool, np.dtype]:
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


def npz_meta(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The ``meta`` entry (a 0-d unicode array holding JSON) of an ``.npz``, or None.

    Reads only the zip's directory and that entry, both size-bounded, without pickles;
    a file that is not a regular ``.npz`` with such an entry gives None.
    """
    try:
        with open_regular(path, max_bytes=2**62) as fh:
            size = os.fstat(fh.fileno()).st_size
            if size < 22 or fh.read(4) != b"PK\x03\x04" or not _zip_directory_ok(fh, size):
                return None
            fh.seek(0)
            with zipfile.ZipFile(fh) as zf:
                info = zf.getinfo("meta.npy")
                if info.file_size > NPZ_META_MAX_BYTES:
                    return None
                with zf.open(info) as member:
                    data = member.read(NPZ_META_MAX_BYTES + 1)
        if len(data) > NPZ_META_MAX_BYTES:
            return None
        shape, _, dtype = read_npy_header(io.BytesIO(data))
        if dtype.kind != "U" or shape != ():
            return None
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            arr = np.lib.format.read_array(io.BytesIO(data), allow_pickle=False)
        # UTF-32 code units, decoded strictly: no code point past U+10FFFF, no surrogate
        codec = "utf-32-be" if arr.dtype.byteorder == ">" else "utf-32-le"
        if arr.dtype.byteorder not in "<>" and sys.byteorder == "big":
            codec = "utf-32-be"
        doc = json.loads(arr.tobytes().decode(codec).rstrip("\x00"))
    except CosimError:
        return None
    except NPY_READ_ERRORS:  # json's errors are ValueErrors, as is a too long integer
        return None
    return doc if isinstance(doc, dict) else None


def png_metadata() -> dict[str, str]:
    """The metadata to pass to matplotlib's ``savefig(metadata=...)`` for a cosim PNG.

    Its ``Software`` text (``"cosim <version>"``) is how cosim later recognises the file as
    its own (:func:`png_software`).

    Examples
    --------
    >>> png_metadata()["Software"].startswith("cosim ")
    True
    """
    from cosim import __version__

    return {"Software": f"cosim {__version__}"}


def png_software(path: str | os.PathLike[str]) -> str | None:
    """The ``Software`` text of a PNG file, or None (no such text, or not a PNG).

    Only the chunk headers are parsed (at most :data:`PNG_MAX_CHUNKS` chunks, text chunks of
    at most :data:`PNG_TEXT_MAX_BYTES`); image data is skipped, never read.
    """
    try:
        with open_regular(path, max_bytes=2**62) as fh:
            size = os.fstat(fh.fileno()).st_size
            if fh.read(8) != _PNG_SIGNATURE:
                return None
            pos = 8
            for _ in range(PNG_MAX_CHUNKS):
                head = fh.read(8)
                if len(head) < 8:
                    return None
                length, ctype = struct.unpack(">I4s", head)
                end = pos + 12 + length
                if end > size:
                    return None
                if ctype in (b"tEXt", b"iTXt") and length <= PNG_TEXT_MAX_BYTES:
                    text = _png_text(ctype, fh.read(length))
                    if text is not None:
                        return text
                elif ctype == b"IEND":
                    return None
                fh.seek(end)
                pos = end
    except (CosimError, OSError, struct.error):
        return None
    return None


def _png_text(ctype: bytes, data: bytes) -> str | None:
    key, _, rest = data.partition(b"\0")
    if key != b"Software":
        return None
    if ctype == b"tEXt":
        return rest.decode("latin-1")
    # iTXt: compression flag, method, language\0, translated keyword\0, UTF-8 text
    if len(rest) < 2 or rest[0] != 0:
        return None
    parts = rest[2:].split(b"\0", 2)
    if len(parts) != 3:
        return None
    return parts[2].decode("utf-8", errors="replace")


def is_cosim_file(path: str | os.PathLike[str], kind: str) -> bool:
    """Whether ``path`` is a regular file cosim wrote as ``kind`` (:func:`check_output_file`)."""
    if kind not in _FILE_KINDS:
        raise ValueError(f"unknown output file kind {kind!r}; one of {', '.join(_FILE_KINDS)}")
    if kind == "json":
        doc = _try_json(Path(path))
        return isinstance(doc, dict) and str(doc.get("written_by", "")).startswith("cosim")
    if kind == "png":
        sw = png_software(path)
        return sw is not None and sw.startswith("cosim")
    meta = npz_meta(path)
    if meta is None:
        return False
    if kind == "model":
        return meta.get("format") == "cosim-model"
    return "checkpoint_version" in meta


# -------------------------------------------------------------------- output checks
def _holds_marker(directory: Path, marker: str) -> bool:
    """``directory`` holds ``marker`` as a regular file of cosim's (JSON with cosim's
    signature); a report directory may instead hold cosim's own ``report.json``."""
    if _is_cosim_json(_try_json(directory / marker)):
        return True
    if marker == REPORT_MARKER:
        doc = _try_json(directory / REPORT_JSON)
        return isinstance(doc, dict) and "cosim_version" in doc and "report_version" in doc
    return False


def check_output_dir(
    path: str | os.PathLike[str],
    *,
    kind: str,
    marker: str,
    replace: bool | None = None,
    contents: Collection[str] | None = None,
) -> Path:
    """Check that cosim may write the ``kind`` directory ``path``; raise if not.

    Accepted: a path that does not exist and whose nearest existing ancestor is a writable
    directory; an empty real directory; a real (not a symbolic link) directory holding
    cosim's ``marker`` file (a report directory: :data:`REPORT_MARKER`, or cosim's own
    ``report.json``). Nothing is created or changed.

    Parameters
    ----------
    path
        The output directory.
    kind
        What cosim writes there, for the message (``"library"``, ``"report"``).
    marker
        The file that marks the directory as cosim's (:data:`LIBRARY_MARKER`,
        :data:`REPORT_MARKER`).
    replace
        The directory is replaced whole (default: for a library): it must then hold nothing
        but ``contents``, and must not be or contain the current directory.
    contents
        The names a replaced directory may hold (default: :data:`LIBRARY_FILES` for a
        library; anything for another marker).

    Returns
    -------
    Path
        ``path``, as given.

    Raises
    ------
    CosimError
        One line naming the path (control characters escaped, :func:`show_path`) and
        saying what to do: it is a file, a symbolic link, a device; a non-empty directory
        that is not cosim's; the current directory (when replaced); its parent is a file or
        not writable; it holds a NUL byte or a name longer than the file system allows.
    """
    if replace is None:
        replace = marker == LIBRARY_MARKER
    if contents is None and marker == LIBRARY_MARKER:
        contents = LIBRARY_FILES
    what = f"{kind} directory"
    _check_path_text(path, what)
    shown = show_path(path)
    dest = _normalize(path)
    try:
        st = os.lstat(dest)
    except (FileNotFoundError, NotADirectoryError):
        _check_creatable(path, dest.parent, what)
        return Path(path)
    except OSError as exc:
        raise CosimError(f"cannot use {shown} as the {what}: {error_text(exc)}") from None
    if stat.S_ISLNK(st.st_mode):
        raise CosimError(
            f"{shown} is a symbolic link; cosim does not write a {kind} through a link: give "
            "a new directory path (or the link's target, if that is what you mean)"
        )
    if stat.S_ISREG(st.st_mode):
        raise CosimError(
            f"{shown} is a file, not a directory; cosim writes a {kind} directory there: give a "
            "new or empty directory path (the file is left alone)"
        )
    if not stat.S_ISDIR(st.st_mode):
        raise CosimError(f"{shown} is not a directory (a device, pipe or socket)")
    try:
        names = _entries(dest, 64)
    except OSError as exc:
        raise CosimError(f"cannot use {shown} as the {what}: {error_text(exc)}") from None
    if names and not _holds_marker(dest, marker):
        raise CosimError(
            f"{shown} is a non-empty directory that is not a cosim {kind} (it holds "
            f"{_named(names, len(names) >= 64)}); cosim writes only into a new or empty "
            f"directory or its own {kind}: choose another path, or move that directory away "
            "yourself"
        )
    if replace:
        real = os.path.realpath(dest)
        try:
            cwd: str | None = os.path.realpath(os.getcwd())
        except OSError:  # the current directory was deleted: it is inside nothing
            cwd = None
        if cwd is not None and _is_within(cwd, real):
            raise CosimError(
                f"{shown} is the current directory or contains it; cosim replaces a {kind} "
                "directory whole: give the path of a new directory outside it"
            )
        if contents is not None and names:
            allowed = set(contents) | {marker}
            try:
                with os.scandir(dest) as it:
                    foreign = [e.name for e in it if e.name not in allowed]
            except OSError as exc:
                raise CosimError(f"cannot use {shown} as the {what}: {error_text(exc)}") from None
            if foreign:
                raise CosimError(
                    f"{shown} is a cosim {kind} but also holds {_named(foreign, False)}, which "
                    f"cosim did not write; writing the {kind} would delete them: move them out "
                    "or choose another path"
                )
        parent = dest.parent
        if not os.access(parent, os.W_OK | os.X_OK):
            raise CosimError(
                f"cannot replace {shown}: no permission to write in {show_path(parent)}; choose a "
                "writable location"
            )
    elif not os.access(dest, os.W_OK | os.X_OK):
        raise CosimError(f"cannot write in {shown}: permission denied; choose another path")
    return Path(path)


def check_output_file(path: str | os.PathLike[str], *, kind: str) -> Path:
    """Check that cosim may write the ``kind`` file ``path``; raise if not.

    Accepted: a path that does not exist and can be created (its nearest existing ancestor
    is a writable directory); a regular file (not a symbolic link) that cosim wrote as the
    same ``kind``. Nothing is created or changed.

    Parameters
    ----------
    path
        The output file.
    kind
        ``"json"`` (written by :func:`write_output_json`: top-level ``"written_by":
        "cosim <version>"``), ``"png"`` (``Software`` text starting with ``cosim``, see
        :func:`png_metadata`), ``"model"`` (``.npz`` whose ``meta`` has ``format ==
        "cosim-model"``) or ``"checkpoint"`` (``.npz`` whose ``meta`` has
        ``checkpoint_version``).

    Returns
    -------
    Path
        ``path``, as given.

    Raises
    ------
    CosimError
        One line naming the path (control characters escaped, :func:`show_path`): it is a
        directory, a symbolic link, a device, a file cosim did not write; its parent is a
        file or not writable; it holds a NUL byte or a name longer than the file system
        allows.
    """
    if kind not in _FILE_KINDS:
        raise ValueError(f"unknown output file kind {kind!r}; one of {', '.join(_FILE_KINDS)}")
    what = _FILE_KINDS[kind]
    _check_path_text(path, what)
    shown = show_path(path)
    dest = _normalize(path)
    try:
        st = os.lstat(dest)
    except (FileNotFoundError, NotADirectoryError):
        _check_creatable(path, dest.parent, what)
        return Path(path)
    except OSError as exc:
        raise CosimError(f"cannot write {what} {shown}: {error_text(exc)}") from None
    if stat.S_ISLNK(st.st_mode):
        raise CosimError(
            f"{what} {shown} is a symbolic link; cosim does not write through links: give "
            "another path (or the link's target, if that is what you mean)"
        )
    if stat.S_ISDIR(st.st_mode):
        raise CosimError(f"{what} {shown} is a directory; give a file path (e.g. inside it)")
    if not stat.S_ISREG(st.st_mode):
        raise CosimError(
            f"{what} {shown} is not a regular file (a device, pipe or socket); give a file path"
        )
    if not is_cosim_file(dest, kind):
        raise CosimError(
            f"{shown} exists and is not a {what} that cosim wrote; cosim overwrites only its "
            "own files: choose another path, or delete it yourself"
        )
    if not os.access(dest.parent, os.W_OK | os.X_OK):
        raise CosimError(
            f"cannot replace {shown}: no permission to write in {show_path(dest.parent)}"
        )
    return Path(path)


def mark_output_dir(path: str | os.PathLike[str], *, kind: str, marker: str) -> Path:
    """Write the ``marker`` file into the existing directory ``path`` (if it lacks one)."""
    from cosim import __version__

    target = Path(path) / marker
    if not _is_cosim_json(_try_json(target)):
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


# --------------------------------------------------------------------- atomic writing
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
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)


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


def call_atomic(path: str | os.PathLike[str], writer: Callable[[Path], None]) -> None:
    """Call ``writer(tmp_path)`` and rename the result onto ``path``."""
    with atomic_path(path) as tmp:
        writer(tmp)
