"""Datasets for ``cosim train``: read from local files only, never downloaded.

=====================  ========================================================================
spec                   source
=====================  ========================================================================
``digits``             scikit-learn's bundled 8x8 digits (the embedded default); a fixed
                       stratified 80/20 split (seed 0), samples shaped (1, 8, 8), raw 0..16
``fashion-mnist``      Debian's ``dataset-fashion-mnist`` IDX files in
                       ``/usr/share/datasets/fashion-mnist``; ``fashion-mnist:DIR`` reads DIR
``mnist:DIR``          IDX files (``train-images-idx3-ubyte`` ..., gzipped or not)
``har:DIR``            the UCI HAR layout: ``train/X_train.txt``, ``train/y_train.txt``,
                       ``test/X_test.txt``, ``test/y_test.txt``; 561 features in [-1, 1],
                       labels 1..6 (stored 0..5)
``cifar10:DIR``        the python batches ``data_batch_1`` .. ``data_batch_5`` and
                       ``test_batch``: dicts with ``b'data'`` uint8 (N, 3072) and
                       ``b'labels'``; samples shaped (3, 32, 32)
=====================  ========================================================================

Every loader returns a :class:`Dataset` of *raw* samples (uint8 or float32) with int64 labels
``0 .. n_classes - 1`` and the :class:`~cosim.quant.Preprocessing` that maps raw values onto
``[0, 1]`` for the input DACs. Anything missing, malformed, non-finite or of the wrong shape
raises :class:`~cosim.errors.DataError` naming the file and what to do. A path that is not what
it should be (a file given as the dataset's directory, a directory, FIFO or device where a data
file belongs) is named as such; data files are read only if they are regular files of at most
:data:`MAX_FILE_BYTES` (gzipped IDX files: also at most that much once decompressed).

Examples
--------
>>> ds = load_dataset("digits")
>>> ds.x_train.shape[1:], ds.n_classes
((1, 8, 8), 10)
"""

from __future__ import annotations

import gzip
import io
import math
import os
import pickle
import stat
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cosim.errors import DataError
from cosim.fileio import error_text, path_problem, show_path, show_text, stat_path
from cosim.quant import DEFAULT_IN_BITS, Preprocessing

#: Where Debian's ``dataset-fashion-mnist`` package installs its files.
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")

DATASETS = ("digits", "fashion-mnist", "mnist:DIR", "har:DIR", "cifar10:DIR")

#: Largest data file read (and largest decompressed IDX file): 2 GiB, four times the largest
#: IDX set in use (EMNIST ByClass training images, ~550 MB).
MAX_FILE_BYTES = 2 << 30


@dataclass(frozen=True)
class Dataset:
    """Raw train/test samples of one dataset.

    Attributes
    ----------
    name
        The spec it was loaded from (``"digits"``, ``"mnist:/data/mnist"``...).
    x_train, x_test
        Raw samples, shape ``(N,) + preprocessing.input_shape``.
    y_train, y_test
        int64 labels in ``0 .. n_classes - 1``.
    n_classes
        Number of classes.
    preprocessing
        Affine map of raw values onto ``[0, 1]`` plus the input shape and DAC bits.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    preprocessing: Preprocessing

    def __post_init__(self) -> None:
        for split, x, y in (
            ("train", self.x_train, self.y_train),
            ("test", self.x_test, self.y_test),
        ):
            _check_samples(self.name, split, x, y, self.n_classes, self.preprocessing.input_shape)


def _check_samples(
    name: str, split: str, x: np.ndarray, y: np.ndarray, n_classes: int, shape: tuple[int, ...]
) -> None:
    if x.ndim < 2 or tuple(x.shape[1:]) != tuple(shape):
        raise DataError(
            f"dataset {show_text(name)}: {split} samples have shape {tuple(x.shape)}, expected "
            f"(N, {', '.join(map(str, shape))}); check the files are the dataset's real format"
        )
    if y.ndim != 1 or y.shape[0] != x.shape[0]:
        raise DataError(
            f"dataset {show_text(name)}: {split} has {x.shape[0]} samples but labels of shape "
            f"{tuple(y.shape)}; the sample and label files do not belong together"
        )
    if x.shape[0] == 0:
        raise DataError(f"dataset {show_text(name)}: the {split} split is empty")
    if x.dtype.kind == "f" and not np.all(np.isfinite(x)):
        bad = int(np.size(x) - np.count_nonzero(np.isfinite(x)))
        raise DataError(
            f"dataset {show_text(name)}: {split} samples hold {bad} NaN/inf values; clean the data "
            "(cosim does not impute missing values)"
        )
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        raise DataError(
            f"dataset {show_text(name)}: {split} labels span {y.min()}..{y.max()}, expected "
            f"0..{n_classes - 1}"
        )


def parse_spec(spec: str) -> tuple[str, Path | None]:
    """Split ``NAME[:PATH]`` and check the name.

    Examples
    --------
    >>> parse_spec("mnist:/data/mnist")
    ('mnist', PosixPath('/data/mnist'))
    """
    name, sep, path = spec.partition(":")
    name = name.strip().lower()
    known = ("digits", "fashion-mnist", "mnist", "har", "cifar10")
    if name not in known:
        raise DataError(
            f"unknown dataset {spec!r}: choose one of {', '.join(DATASETS)} "
            "(PATH is a local directory; cosim never downloads data)"
        )
    if sep and not path:
        raise DataError(f"dataset {spec!r}: empty path after ':'")
    if name in ("mnist", "har", "cifar10") and not sep:
        raise DataError(f"dataset {name} needs a directory: use --dataset {name}:DIR")
    if name == "digits" and sep:
        raise DataError("dataset digits is bundled with scikit-learn and takes no path")
    if not sep:
        return name, None
    try:
        return name, Path(path).expanduser()
    except RuntimeError:  # ~user of no such user: Path cannot determine the home directory
        raise DataError(
            f"dataset {spec!r}: cannot expand {show_text(path.split('/')[0])} (no such user's "
            "home directory); give the path in full"
        ) from None


def _check_dir(directory: Path, name: str) -> Path:
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


def _present(path: Path) -> bool:
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


def _gunzip(raw: bytes, path: Path) -> bytes:
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


def load_dataset(spec: str) -> Dataset:
    """Load a dataset from its spec (see the module docstring for the list)."""
    name, path = parse_spec(spec)
    if name == "digits":
        return load_digits()
    if name == "fashion-mnist":
        directory = path if path is not None else FASHION_MNIST_DIR
        if path is None and not directory.is_dir():
            raise DataError(
                f"fashion-mnist: {show_path(directory)} does not exist; install Debian's "
                "dataset-fashion-mnist package or pass --dataset fashion-mnist:DIR"
            )
        return load_idx_dir(directory, name=spec)
    if name == "mnist":
        return load_idx_dir(path, name=spec)  # type: ignore[arg-type]
    if name == "har":
        return load_har(path, name=spec)  # type: ignore[arg-type]
    return load_cifar10(path, name=spec)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------- digits
def load_digits() -> Dataset:
    """scikit-learn's 8x8 digits with a fixed stratified 80/20 train/test split."""
    from sklearn.datasets import load_digits as _load

    bunch = _load()
    x = bunch.data.astype(np.float32).reshape(-1, 1, 8, 8)
    y = bunch.target.astype(np.int64)
    rng = np.random.default_rng(0)  # the split is part of the dataset, not of training
    test = np.zeros(len(y), dtype=bool)
    for c in range(10):
        idx = np.flatnonzero(y == c)
        idx = rng.permutation(idx)
        test[idx[: round(0.2 * len(idx))]] = True
    prep = Preprocessing(offset=0.0, scale=16.0, in_bits=DEFAULT_IN_BITS, input_shape=(1, 8, 8))
    return Dataset("digits", x[~test], y[~test], x[test], y[test], 10, prep)


# ------------------------------------------------------------------------------------ IDX
_IDX_FILES = {
    "train_x": ("train-images-idx3-ubyte", "train-images.idx3-ubyte"),
    "train_y": ("train-labels-idx1-ubyte", "train-labels.idx1-ubyte"),
    "test_x": ("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"),
    "test_y": ("t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte"),
}


def _find(directory: Path, names: tuple[str, ...], what: str) -> Path:
    for n in names:
        for cand in (directory / n, directory / (n + ".gz")):
            if _present(cand):  # read_idx says so if it is not a regular file
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
        raw = _gunzip(raw, path)
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
    directory = _check_dir(directory, name)
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


# ------------------------------------------------------------------------------------ HAR
def _read_table(path: Path, name: str) -> np.ndarray:
    if not _present(path):
        raise DataError(
            f"dataset {show_text(name)}: missing {show_path(path)}; a UCI HAR directory holds "
            "train/X_train.txt, train/y_train.txt, test/X_test.txt and test/y_test.txt"
        )
    raw = read_data_file(path, f"dataset {show_text(name)}: HAR file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{show_path(path)} is not a text file of numbers (byte 0x{raw[exc.start]:02x} at "
            f"offset {exc.start} is not UTF-8)"
        ) from None
    rows = [line.split() for line in text.splitlines() if line.strip()]
    if not rows:
        raise DataError(f"{show_path(path)} is empty; it should hold one row of numbers per sample")
    widths = {len(r) for r in rows}
    if len(widths) > 1:
        raise DataError(
            f"{show_path(path)}: rows have different numbers of columns {sorted(widths)}"
        )
    try:
        return np.array(rows, dtype=np.float64).reshape(len(rows), -1)
    except ValueError as exc:
        raise DataError(
            f"{show_path(path)}: not a whitespace-separated table of numbers ({error_text(exc)})"
        ) from exc


def load_har(directory: Path, name: str) -> Dataset:
    """UCI HAR: 561 features scaled to [-1, 1], activity labels 1..6."""
    directory = _check_dir(directory, name)
    out = {}
    for split in ("train", "test"):
        x = _read_table(directory / split / f"X_{split}.txt", name)
        y = _read_table(directory / split / f"y_{split}.txt", name)
        if y.shape[1] != 1:
            raise DataError(
                f"dataset {show_text(name)}: y_{split}.txt must hold one label per line"
            )
        if not np.all(np.isfinite(x)):
            raise DataError(
                f"dataset {show_text(name)}: X_{split}.txt holds NaN/inf values; clean the data "
                "first"
            )
        if np.any(y != np.round(y)) or y.min() < 1 or y.max() > 6:
            raise DataError(
                f"dataset {show_text(name)}: y_{split}.txt labels must be integers 1..6"
            )
        out[split] = (x.astype(np.float32), y[:, 0].astype(np.int64) - 1)
    nf = out["train"][0].shape[1]
    if out["test"][0].shape[1] != nf:
        raise DataError(
            f"dataset {show_text(name)}: X_train has {nf} features but X_test has "
            f"{out['test'][0].shape[1]}"
        )
    prep = Preprocessing(offset=-1.0, scale=2.0, in_bits=DEFAULT_IN_BITS, input_shape=(nf,))
    return Dataset(name, *out["train"], *out["test"], 6, prep)


# -------------------------------------------------------------------------------- CIFAR-10
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
    directory = _check_dir(directory, name)
    files = [directory / f"data_batch_{i}" for i in range(1, 6)] + [directory / "test_batch"]
    missing = [f.name for f in files if not _present(f)]  # read_cifar_batch names odd ones
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
