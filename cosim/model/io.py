"""Reading and writing model files (format: :mod:`cosim.model.format`).

``save_model(model, path, extra_arrays=None)`` writes one atomically; ``load_model(path)``
reads and validates one (:mod:`cosim.model.validate`), every problem a
:class:`~cosim.errors.ModelFileError` naming the file; ``read_npz`` is the bounded reader
both use (training checkpoints too).
"""

from __future__ import annotations

import json
import os
import stat
import warnings
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from cosim.errors import ModelFileError
from cosim.fileio import (
    NPY_READ_ERRORS,
    dumps_json,
    error_text,
    int_digits_limit,
    npz_problem,
    save_npz_atomic,
    show_path,
    stat_path,
)
from cosim.model.format import FORMAT, FORMAT_VERSION, Model, WeightLayer
from cosim.model.validate import brief, build_model, model_error, short
from cosim.quant import GridError


# ------------------------------------------------------------------------------------ save
def model_arrays(model: Model) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The file's metadata (a JSON-able dict) and its layer arrays (``L{i}.*``) of ``model``:
    what :func:`save_model` writes and :func:`cosim.model.validate.build_model` reads."""
    arrays: dict[str, np.ndarray] = {}
    layers_meta = []
    for i, lay in enumerate(model.layers):
        g = lay.geometry()
        if isinstance(lay, WeightLayer):
            arrays[f"L{i}.unipolar"] = np.asarray(lay.unipolar, dtype=bool)
            if lay.quantized:
                assert lay.n_w is not None and lay.n_b is not None
                assert lay.w_grid is not None and lay.in_grid is not None
                assert lay.b_grid is not None
                arrays[f"L{i}.n_w"] = lay.n_w.astype(np.int16)
                arrays[f"L{i}.n_b"] = lay.n_b.astype(np.int32)
                g["w_grid"] = lay.w_grid.to_dict()
                g["in_grid"] = lay.in_grid.to_dict()
                g["out_grid"] = None if lay.out_grid is None else lay.out_grid.to_dict()
                g["b_grid"] = lay.b_grid.to_dict()
            else:
                arrays[f"L{i}.w"] = np.asarray(lay.w, dtype=np.float32)
                arrays[f"L{i}.b"] = np.asarray(lay.b, dtype=np.float32)
        layers_meta.append(g)
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "scheme": model.scheme,
        "architecture": model.architecture,
        "n_classes": model.n_classes,
        "preprocessing": model.preprocessing.to_dict(),
        "input_hi": model.input_hi,
        "layers": layers_meta,
        "info": model.info,
    }
    return meta, arrays


def save_model(
    model: Model, path: str | Path, extra_arrays: dict[str, np.ndarray] | None = None
) -> None:
    """Write ``model`` to ``path`` (``.npz`` + JSON metadata) atomically."""
    meta, arrays = model_arrays(model)
    arrays["meta"] = np.array(dumps_json(meta))
    for k, v in (extra_arrays or {}).items():
        arrays["shadow." + k] = v
    save_npz_atomic(path, **arrays)


# ------------------------------------------------------------------------------------ load
#: Largest model file (or checkpoint) :func:`read_npz` opens: 4 GiB, about 100 times the
#: largest model ``cosim train`` writes (cnn6 with its float shadow weights).
MAX_MODEL_BYTES = 4 << 30


def _open_regular(path: Path, what: str) -> BinaryIO:
    """Open ``path`` for reading if it is a regular file of at most :data:`MAX_MODEL_BYTES`.

    A directory, FIFO or device (``/dev/zero``) is refused before anything is read; so is a
    path no file can have (a NUL byte, a name longer than the file system allows).
    """
    st = stat_path(
        path, what=what, error=ModelFileError, missing="; train one with `cosim train --out`"
    )
    _check_regular(path, st.st_mode, what)
    try:
        # O_NONBLOCK: should a FIFO replace the file after the check, opening it does not
        # wait for a writer; fstat below then refuses it
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise ModelFileError(f"cannot read {what} {show_path(path)}: {error_text(exc)}") from None
    fh = os.fdopen(fd, "rb")
    try:
        st = os.fstat(fd)
        _check_regular(path, st.st_mode, what)
        if st.st_size > MAX_MODEL_BYTES:
            raise ModelFileError(
                f"{what} {show_path(path)} is larger than any model file ({st.st_size} bytes, "
                f"limit {MAX_MODEL_BYTES}); pass the .npz that `cosim train` wrote"
            )
    except BaseException:
        fh.close()
        raise
    return fh


def _check_regular(path: Path, mode: int, what: str) -> None:
    if stat.S_ISDIR(mode):
        raise ModelFileError(
            f"{what} {show_path(path)} is a directory, not a {what}; pass the .npz that "
            "`cosim train` wrote"
        )
    if not stat.S_ISREG(mode):
        raise ModelFileError(
            f"{what} {show_path(path)} is not a regular file (a FIFO, socket or device); pass "
            "the .npz that `cosim train` wrote"
        )


def read_npz(path: str | Path, what: str = "model file") -> dict[str, np.ndarray]:
    """All arrays of an ``.npz`` (no pickle), with corrupt files as ModelFileError.

    ``path`` must be a regular file of at most :data:`MAX_MODEL_BYTES`; a directory, FIFO
    or device is refused without reading it. Before any array is loaded the archive is
    checked (:func:`cosim.fileio.npz_problem`): members that are all ``.npy`` arrays with
    complete headers, of real numbers, booleans or text (no Python objects, no complex
    numbers, which a real array would silently lose the imaginary part of), declaring no
    more data than they hold and together at most :data:`MAX_MODEL_BYTES`.
    """
    path = Path(path)

    def corrupt(reason: str) -> ModelFileError:
        return ModelFileError(
            f"{what} {show_path(path)} is corrupt or not a cosim .npz file ({reason}); retrain "
            "it with `cosim train`"
        )

    with _open_regular(path, what) as fh:
        problem = npz_problem(fh, MAX_MODEL_BYTES)
        if problem is not None:
            raise corrupt(problem)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # nothing a damaged file does is printed
                with np.load(fh, allow_pickle=False) as z:
                    arrays = {k: z[k] for k in z.files}
        except NPY_READ_ERRORS as exc:
            raise corrupt(error_text(exc)) from exc
    odd = sorted(k for k, v in arrays.items() if not isinstance(v, np.ndarray))
    if odd:  # np.load hands members that are not .npy arrays over as bytes
        raise corrupt(f"member {odd[0]!a} is not an array")
    return arrays


def _read_meta(path: Path, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    arr = arrays.get("meta")
    if arr is None:
        raise model_error(path, "has no metadata; it was not written by `cosim train`")
    if arr.dtype.kind != "U" or arr.ndim != 0:
        raise model_error(path, "its metadata is not a text string; the file is corrupt")
    # cosim writes ASCII; check the UTF-32 code units before making a str of them (NumPy
    # builds broken str objects from code points past U+10FFFF) and refuse surrogates
    order = arr.dtype.byteorder if arr.dtype.byteorder in "<>" else "="
    units = np.frombuffer(arr.tobytes(), dtype=np.dtype(np.uint32).newbyteorder(order))
    if np.any((units > 0x10FFFF) | ((units >= 0xD800) & (units <= 0xDFFF))):
        raise model_error(path, "its metadata is not valid Unicode text; the file is corrupt")
    text = str(arr)
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as exc:
        raise model_error(
            path, f"metadata is not valid JSON ({brief(exc)}); the file is corrupt"
        ) from exc
    except ValueError as exc:  # an integer of more digits than int() converts
        raise model_error(
            path,
            f"metadata is not valid JSON (it holds an integer of more than {int_digits_limit()} "
            "digits); the file is corrupt",
        ) from exc
    except (RecursionError, MemoryError) as exc:
        raise model_error(path, "its metadata nests too deeply; the file is corrupt") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise model_error(path, f"is not a {FORMAT} file")
    version = meta.get("format_version")
    if type(version) is not int or version != FORMAT_VERSION:
        raise model_error(
            path,
            f"has format version {short(version)} but this cosim reads version "
            f"{FORMAT_VERSION}; retrain the model with this cosim version (or use the cosim "
            "that wrote it)",
        )
    return meta


def load_model(path: str | Path) -> Model:
    """Load and validate a model file.

    Every metadata field is checked for its type and range (naming the field, e.g.
    ``info.test_accuracy`` or ``layers[2].w_grid.bits``), the geometry of every layer for
    consistency (conv output sizes, pooling, flatten, the chain of shapes), the arrays for
    their shapes, dtypes and finiteness, and quantized levels for lying on their grids.

    Raises
    ------
    ModelFileError
        For any problem: a missing, non-regular, oversized, truncated or corrupt file, a
        foreign format or version, a field of the wrong type or range, inconsistent arrays.
    """
    path = Path(path)
    arrays = read_npz(path)
    meta = _read_meta(path, arrays)
    try:
        return build_model(path, meta, arrays)
    except ModelFileError:
        raise
    except (GridError, KeyError, TypeError, ValueError, IndexError, OverflowError) as exc:
        # the checks above should leave nothing for here; kept as a last line of defence
        raise model_error(
            path, f"inconsistent metadata or arrays ({brief(repr(exc))}); the file is corrupt"
        ) from exc
