"""Recognising what cosim wrote: the marker files of its directories, and the signs of its
own files (JSON with a top-level ``"written_by": "cosim <version>"`` key, a model or
checkpoint ``.npz`` whose ``meta`` entry says so, a PNG whose ``Software`` text starts with
``cosim``: :func:`is_cosim_file`).

Nothing here writes, and nothing here decides what may be replaced: that is
:mod:`cosim.fileio.ownership`.
"""

from __future__ import annotations

import io
import json
import os
import struct
import sys
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from cosim.errors import CosimError
from cosim.fileio.reading import (
    NPY_READ_ERRORS,
    _zip_directory_ok,
    open_regular,
    read_json_bounded,
    read_npy_header,
)

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

FILE_KINDS = {
    "json": "JSON output",
    "png": "plot",
    "model": "model file",
    "checkpoint": "training checkpoint",
    "onnx": "model export (ONNX)",
}
#: ``producer_name`` of the ONNX files ``cosim export`` writes.
ONNX_PRODUCER = b"cosim"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# -------------------------------------------------------------------- cosim's own files
def try_json(path: Path, max_bytes: int = JSON_MAX_BYTES) -> Any:
    try:
        return read_json_bounded(path, max_bytes=max_bytes)
    except CosimError:
        return None


def is_cosim_json(doc: Any) -> bool:
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


def onnx_producer(path: str | os.PathLike[str]) -> bytes | None:
    """The ``producer_name`` of an ONNX file, read from its first bytes without onnx.

    An ``onnx.ModelProto`` serializes ``ir_version`` (field 1, a varint) then
    ``producer_name`` (field 2, length-delimited) first; None for anything else.
    """
    try:
        with open_regular(Path(path), max_bytes=2**40) as fh:
            head = fh.read(64)
    except (CosimError, OSError):
        return None
    if len(head) < 3 or head[0] != 0x08:
        return None
    i = 1
    while i < len(head) and head[i] & 0x80:  # the varint's continuation bytes
        i += 1
    i += 1
    if i + 2 > len(head) or head[i] != 0x12 or head[i + 1] & 0x80:
        return None
    n = head[i + 1]
    name = head[i + 2 : i + 2 + n]
    return name if len(name) == n else None


def is_cosim_file(path: str | os.PathLike[str], kind: str) -> bool:
    """Whether ``path`` is a regular file cosim wrote as ``kind`` (:func:`check_output_file`)."""
    if kind not in FILE_KINDS:
        raise ValueError(f"unknown output file kind {kind!r}; one of {', '.join(FILE_KINDS)}")
    if kind == "json":
        doc = try_json(Path(path))
        return isinstance(doc, dict) and str(doc.get("written_by", "")).startswith("cosim")
    if kind == "onnx":
        return onnx_producer(path) == ONNX_PRODUCER
    if kind == "png":
        sw = png_software(path)
        return sw is not None and sw.startswith("cosim")
    meta = npz_meta(path)
    if meta is None:
        return False
    if kind == "model":
        return meta.get("format") == "cosim-model"
    return "checkpoint_version" in meta
