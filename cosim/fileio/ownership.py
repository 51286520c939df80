"""What cosim owns: recognising its own files and directories, and checking output paths.

Before any work starts, a command checks every path it will write with
:func:`check_output_dir` or :func:`check_output_file`. cosim replaces only what is missing,
empty, or its own: a directory holding cosim's marker file (``library.json`` for a
surrogate library, :data:`REPORT_MARKER` for a report), or a file cosim wrote (JSON with a
top-level ``"written_by": "cosim <version>"`` key, a model or checkpoint ``.npz`` whose
``meta`` entry says so, a PNG whose ``Software`` text starts with ``cosim``:
:func:`is_cosim_file`). Anything else — a foreign file or directory, a symbolic link, a
device — is a :class:`~cosim.errors.CosimError` that names the path, and nothing is touched.

Nothing here writes: creating and marking an output directory, and every write, are in
:mod:`cosim.fileio.atomic`.
"""

from __future__ import annotations

import io
import json
import os
import stat
import struct
import sys
import warnings
import zipfile
from collections.abc import Collection
from pathlib import Path
from typing import Any

import numpy as np

from cosim.errors import CosimError
from cosim.fileio.paths import _check_creatable, _check_path_text, _entries, _is_within, _normalize
from cosim.fileio.reading import (
    NPY_READ_ERRORS,
    _zip_directory_ok,
    open_regular,
    read_json_bounded,
    read_npy_header,
)
from cosim.fileio.text import _named, error_text, show_path

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
#: PNG chunks scanned for the ``Software`` text, and the largest text chunk read (bytes).
PNG_MAX_CHUNKS = 4096
PNG_TEXT_MAX_BYTES = 64 * 2**10

_FILE_KINDS = {
    "json": "JSON output",
    "png": "plot",
    "model": "model file",
    "checkpoint": "training checkpoint",
}
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# -------------------------------------------------------------------- cosim's own files
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


# ------------------------------------------------------------------------ output checks
def _holds_marker(directory: Path, marker: str) -> bool:
    """``directory`` holds ``marker`` as a regular file of cosim's (JSON with cosim's
    signature); a report directory may instead hold cosim's own ``report.json``."""
    if _is_cosim_json(_try_json(directory / marker)):
        return True
    if marker == REPORT_MARKER:
        doc = _try_json(directory / REPORT_JSON)
        return isinstance(doc, dict) and "cosim_version" in doc and "report_version" in doc
    return False


def _not_inside_a_library(dest: Path, shown: str) -> None:
    """A library directory is cosim's as a whole (rewritten by the next characterization,
    which refuses files it did not put there): nothing else may be written into it."""
    parent = dest.parent
    try:
        inside = (parent / LIBRARY_MARKER).is_file()
    except (OSError, ValueError):
        return  # the path checks that follow name the problem
    if inside:
        raise CosimError(
            f"{shown} lies inside the surrogate library {show_path(parent)}, which cosim "
            "writes as a whole: give a path outside it"
        )


def _lstat_output(
    path: str | os.PathLike[str], what: str, cannot: str
) -> tuple[Path, str, os.stat_result | None]:
    """The checks every output path shares: (normalized path, path for messages, its
    ``lstat``, or None when it does not exist and can be created). ``cannot`` is the
    message (with ``{shown}``) for any other failure to look at it."""
    _check_path_text(path, what)
    shown = show_path(path)
    dest = _normalize(path)
    _not_inside_a_library(dest, shown)
    try:
        return dest, shown, os.lstat(dest)
    except (FileNotFoundError, NotADirectoryError):
        _check_creatable(path, dest.parent, what)
        return dest, shown, None
    except OSError as exc:
        raise CosimError(f"{cannot.format(shown=shown)}: {error_text(exc)}") from None


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
    dest, shown, st = _lstat_output(path, what, "cannot use {shown} as the " + what)
    if st is None:
        return Path(path)
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
    dest, shown, st = _lstat_output(path, what, f"cannot write {what} " + "{shown}")
    if st is None:
        return Path(path)
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
