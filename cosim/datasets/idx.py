"""IDX files (MNIST, Fashion-MNIST, EMNIST): ``train-images-idx3-ubyte`` ..., gzipped or not."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from cosim.datasets.dataset import Dataset
from cosim.datasets.reading import check_dir, gunzip, present, read_data_file
from cosim.errors import DataError
from cosim.fileio import show_path, show_text
from cosim.quant import DEFAULT_IN_BITS, Preprocessing

_IDX_FILES = {
    "train_x": ("train-images-idx3-ubyte", "train-images.idx3-ubyte"),
    "train_y": ("train-labels-idx1-ubyte", "train-labels.idx1-ubyte"),
    "test_x": ("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"),
    "test_y": ("t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte"),
}


def _find(directory: Path, names: tuple[str, ...], what: str) -> Path:
    for n in names:
        for cand in (directory / n, directory / (n + ".gz")):
            if present(cand):  # read_idx says so if it is not a regular file
                return cand
    raise DataError(
        f"{what}: {show_path(directory)} has no {names[0]} (or {names[0]}.gz); point the "
        "dataset at the directory holding the IDX files"
    )


def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file (uint8 data, optionally gzipped) into an array.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "l"
    >>> _ = p.write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 2, 7, 3]))
    >>> read_idx(p).tolist()
    [7, 3]
    """
    path = Path(path)
    raw = read_data_file(path, "IDX file")
    if raw[:2] == b"\x1f\x8b":
        raw = gunzip(raw, path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError(f"{show_path(path)} is not an IDX file (bad magic number); re-extract it")
    if raw[2] != 0x08:
        raise DataError(
            f"{show_path(path)}: IDX type code 0x{raw[2]:02x} is not unsigned bytes (0x08)"
        )
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise DataError(f"{show_path(path)}: truncated IDX header")
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    n = math.prod(dims)  # Python integers: no overflow for any header
    if len(raw) - header != n:
        raise DataError(
            f"{show_path(path)}: header says {dims} = {n} bytes of data but the file holds "
            f"{len(raw) - header}; the file is truncated or corrupt"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def load_idx_dir(directory: Path, name: str) -> Dataset:
    """MNIST-format directory (MNIST, Fashion-MNIST): 28x28 uint8 images, 10 classes."""
    directory = check_dir(directory, name)
    arrays = {
        k: read_idx(_find(directory, v, f"dataset {show_text(name)}"))
        for k, v in _IDX_FILES.items()
    }
    for k in ("train_x", "test_x"):
        if arrays[k].ndim != 3:
            raise DataError(f"dataset {show_text(name)}: {k} IDX file is not a stack of 2-D images")
    h, w = arrays["train_x"].shape[1:]
    prep = Preprocessing(offset=0.0, scale=256.0, in_bits=DEFAULT_IN_BITS, input_shape=(1, h, w))
    return Dataset(
        name,
        arrays["train_x"][:, None],
        arrays["train_y"].astype(np.int64),
        arrays["test_x"][:, None],
        arrays["test_y"].astype(np.int64),
        10,
        prep,
    )
