"""The surrogate library: a directory with ``library.json``, ``arrays.npz``, ``validation.json``.

``library.json`` holds the schema version, the cosim and ngspice versions, the full hardware
card and its hash, the hashes of every netlist that produced data, each block's fitted
surrogate (arrays moved to ``arrays.npz`` and referenced as ``{"$array": key}``) and a
summary of its validation. ``validation.json`` holds each block's errors against held-out
SPICE runs, read into typed :class:`BlockValidation` records. The directory is written under
a temporary name and renamed into place, so a reader never sees half a library and an
interrupted write keeps the old one.

One idea per module:

* :mod:`~cosim.library.common`: the format's constants and message helpers;
* :mod:`~cosim.library.writing`: :func:`write_library`;
* :mod:`~cosim.library.reading`: bounded reading of ``library.json`` and ``arrays.npz``
  (regular files inside the directory, ``library.json`` and ``validation.json`` at most
  :data:`LIBRARY_JSON_MAX_BYTES`, ``arrays.npz`` at most :data:`ARRAYS_MAX_BYTES`);
* :mod:`~cosim.library.blocks`: every block checked and decoded (finite numbers, real
  arrays, the kind the card's chip expects, the ADC's model at every resolution);
* :mod:`~cosim.library.validation`: the validation records;
* :mod:`~cosim.library.surrogates`: the loaded :class:`SurrogateLibrary`;
* :mod:`~cosim.library.loading`: :func:`load_library`, which checks the schema version and
  — when a card is given — that the library was characterized for that card;
* :mod:`~cosim.library.shipping`: a library's files as bytes for a cluster worker, and the
  worker's private copy loaded with the same checks.

Whatever is wrong is a one-line :class:`~cosim.errors.LibraryError` (paths and keys with
their control characters escaped). A library is the output of a characterization: every
number of a block (its surrogate and its ``extra``) is finite, and a NaN or infinity there
means the file is corrupt. Only ``validation.json`` and the validation summary in
``library.json`` are read as they are: they are the characterization's report to a reader,
never an input of the engine (a metric that was not measured is ``null`` there).
"""

from cosim.library.blocks import join_arrays
from cosim.library.common import (
    ARRAYS_MAX_BYTES,
    BLOCKS,
    LIBRARY_JSON_MAX_BYTES,
    SCHEMA_VERSION,
)
from cosim.library.loading import card_differences, load_library
from cosim.library.reading import read_library_arrays, read_library_json
from cosim.library.shipping import files_digest, library_files, library_from_files
from cosim.library.surrogates import SurrogateLibrary
from cosim.library.validation import (
    BlockValidation,
    read_validation,
    validation_from_dict,
    validation_to_dict,
)
from cosim.library.writing import write_library

__all__ = [
    "ARRAYS_MAX_BYTES",
    "BLOCKS",
    "LIBRARY_JSON_MAX_BYTES",
    "SCHEMA_VERSION",
    "BlockValidation",
    "SurrogateLibrary",
    "card_differences",
    "files_digest",
    "join_arrays",
    "library_files",
    "library_from_files",
    "load_library",
    "read_library_arrays",
    "read_library_json",
    "read_validation",
    "validation_from_dict",
    "validation_to_dict",
    "write_library",
]
