"""Files cosim writes and reads, in four ideas, one module each.

- :mod:`cosim.fileio.atomic` — atomic writing: a file or directory is written under a
  temporary name beside its destination and renamed into place, with the permissions the
  umask gives; writers that swap the same directory serialize on a lock
  (:func:`atomic_path`, :func:`write_json_atomic`, :func:`write_output_json`,
  :func:`save_npz_atomic`, :func:`atomic_directory`, :func:`output_directory`).
- :mod:`cosim.fileio.recognition` — what cosim wrote: the marker files of its directories
  (:data:`LIBRARY_MARKER`, :data:`REPORT_MARKER`) and how it recognises a file of its own
  (:func:`is_cosim_file`, :func:`npz_meta`, :func:`png_software`).
- :mod:`cosim.fileio.ownership` — what cosim may replace: the checks that it replaces
  nothing else (:func:`check_output_dir`, :func:`check_output_file`).
- :mod:`cosim.fileio.reading` — bounded, safe reading of paths a user gave: only a regular
  file of a sane size, a ``.npz`` checked before NumPy loads it (:func:`stat_path`,
  :func:`open_regular`, :func:`read_json_bounded`, :func:`npz_problem`).

Two helper modules serve them: :mod:`cosim.fileio.text` (user text escaped for a one-line
message, :func:`show_path`) and :mod:`cosim.fileio.paths` (output paths resolved, created,
checked creatable). Each module imports only those before it in
``text, paths, reading, recognition, ownership, atomic``; there is no cycle.

Every public name is re-exported here: import from ``cosim.fileio``.
"""

from __future__ import annotations

from cosim.fileio.atomic import (
    LOCK_TIMEOUT_S,
    atomic_directory,
    atomic_path,
    call_atomic,
    current_umask,
    dumps_json,
    mark_output_dir,
    output_directory,
    save_npz_atomic,
    write_bytes_atomic,
    write_json_atomic,
    write_output_json,
    write_text_atomic,
)
from cosim.fileio.ownership import check_output_dir, check_output_file
from cosim.fileio.reading import (
    NPY_READ_ERRORS,
    ZIP_DIRECTORY_MAX_BYTES,
    ZIP_MAX_ENTRIES,
    array_dtype_problem,
    int_digits_limit,
    npz_problem,
    open_regular,
    read_json_bounded,
    read_npy_header,
    stat_path,
)
from cosim.fileio.recognition import (
    JSON_MAX_BYTES,
    LIBRARY_FILES,
    LIBRARY_MARKER,
    NPZ_META_MAX_BYTES,
    PNG_MAX_CHUNKS,
    PNG_TEXT_MAX_BYTES,
    REPORT_JSON,
    REPORT_MARKER,
    is_cosim_file,
    npz_meta,
    png_metadata,
    png_software,
)
from cosim.fileio.text import error_text, path_problem, show_path, show_text

__all__ = [
    "JSON_MAX_BYTES",
    "LIBRARY_FILES",
    "LIBRARY_MARKER",
    "LOCK_TIMEOUT_S",
    "NPY_READ_ERRORS",
    "NPZ_META_MAX_BYTES",
    "PNG_MAX_CHUNKS",
    "PNG_TEXT_MAX_BYTES",
    "REPORT_JSON",
    "REPORT_MARKER",
    "ZIP_DIRECTORY_MAX_BYTES",
    "ZIP_MAX_ENTRIES",
    "array_dtype_problem",
    "atomic_directory",
    "atomic_path",
    "call_atomic",
    "check_output_dir",
    "check_output_file",
    "current_umask",
    "dumps_json",
    "error_text",
    "int_digits_limit",
    "is_cosim_file",
    "mark_output_dir",
    "npz_meta",
    "npz_problem",
    "open_regular",
    "output_directory",
    "path_problem",
    "png_metadata",
    "png_software",
    "read_json_bounded",
    "read_npy_header",
    "save_npz_atomic",
    "show_path",
    "show_text",
    "stat_path",
    "write_bytes_atomic",
    "write_json_atomic",
    "write_output_json",
    "write_text_atomic",
]
