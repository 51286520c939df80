"""CIFAR-10's python batches, unpickled with numpy's array as the only allowed global."""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np

from cosim.datasets.dataset import Dataset
from cosim.datasets.reading import check_dir, present, read_data_file
from cosim.errors import DataError
from cosim.fileio import error_text, show_path, show_text
from cosim.quant import DEFAULT_IN_BITS, Preprocessing

# The python batches pickle a numpy array; only these globals may be looked up while
# loading, so a file that is not a CIFAR batch cannot run code.
_CIFAR_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class _CifarUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _CIFAR_GLOBALS:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR batch")
        if module == "numpy.core.multiarray":  # numpy 2 renamed it; avoid its shim's warning
            module = "numpy._core.multiarray"
        return super().find_class(module, name)


def read_cifar_batch(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read one CIFAR-10 python batch into ``(uint8 (N, 3, 32, 32), int64 labels)``.

    The file is checked to be a pickle whose only globals are numpy's array
    reconstruction before anything in it is built.
    """
    path = Path(path)
    raw = read_data_file(path, "CIFAR-10 batch")
    if len(raw) < 2 or raw[0] != 0x80 or raw[1] > pickle.HIGHEST_PROTOCOL:
        raise DataError(
            f"{show_path(path)} is not a CIFAR-10 python batch (not a pickle); use the "
            "'CIFAR-10 python version' files data_batch_1..5 and test_batch"
        )
    try:
        obj = _CifarUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except Exception as exc:  # any failure of a foreign or damaged pickle
        raise DataError(
            f"{show_path(path)} is not a readable CIFAR-10 python batch: {error_text(exc)}"
        ) from exc
    if not isinstance(obj, dict) or b"data" not in obj or b"labels" not in obj:
        raise DataError(
            f"{show_path(path)}: not a CIFAR-10 batch (expected a dict with data and labels)"
        )
    data, labels = obj[b"data"], obj[b"labels"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2:
        raise DataError(f"{show_path(path)}: b'data' must be a uint8 array of shape (N, 3072)")
    if data.shape[1] != 3072:
        raise DataError(
            f"{show_path(path)}: b'data' has {data.shape[1]} columns, expected 3072 (3x32x32)"
        )
    try:
        y = np.asarray(labels, dtype=np.int64)
    except (TypeError, ValueError, OverflowError) as exc:
        raise DataError(f"{show_path(path)}: b'labels' is not a list of integers") from exc
    if y.shape != (data.shape[0],):
        raise DataError(f"{show_path(path)}: {data.shape[0]} images but {y.size} labels")
    return data.reshape(-1, 3, 32, 32), y


def load_cifar10(directory: Path, name: str) -> Dataset:
    """CIFAR-10 python version: five training batches and one test batch."""
    directory = check_dir(directory, name)
    files = [directory / f"data_batch_{i}" for i in range(1, 6)] + [directory / "test_batch"]
    missing = [f.name for f in files if not present(f)]  # read_cifar_batch names odd ones
    if missing:
        raise DataError(
            f"dataset {show_text(name)}: {show_path(directory)} lacks {', '.join(missing)}; "
            "point it at the extracted cifar-10-batches-py directory"
        )
    parts = [read_cifar_batch(f) for f in files]
    x_train = np.concatenate([p[0] for p in parts[:5]])
    y_train = np.concatenate([p[1] for p in parts[:5]])
    prep = Preprocessing(offset=0.0, scale=256.0, in_bits=DEFAULT_IN_BITS, input_shape=(3, 32, 32))
    return Dataset(name, x_train, y_train, parts[5][0], parts[5][1], 10, prep)
