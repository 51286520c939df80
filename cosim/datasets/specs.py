"""A dataset spec (``NAME[:PATH]``) checked and loaded; the bundled digits and their
28x28 stand-in for MNIST (``digits28``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cosim.datasets.cifar import load_cifar10
from cosim.datasets.dataset import Dataset
from cosim.datasets.har import load_har
from cosim.datasets.idx import load_idx_dir
from cosim.errors import DataError
from cosim.fileio import show_path, show_text
from cosim.quant import DEFAULT_IN_BITS, Preprocessing

#: Where Debian's ``dataset-fashion-mnist`` package installs its files.
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")

DATASETS = ("digits", "digits28", "fashion-mnist", "mnist:DIR", "har:DIR", "cifar10:DIR")


def parse_spec(spec: str) -> tuple[str, Path | None]:
    """Split ``NAME[:PATH]`` and check the name.

    Examples
    --------
    >>> parse_spec("mnist:/data/mnist")
    ('mnist', PosixPath('/data/mnist'))
    """
    name, sep, path = spec.partition(":")
    name = name.strip().lower()
    known = ("digits", "digits28", "fashion-mnist", "mnist", "har", "cifar10")
    if name not in known:
        raise DataError(
            f"unknown dataset {spec!r}: choose one of {', '.join(DATASETS)} "
            "(PATH is a local directory; cosim never downloads data)"
        )
    if sep and not path:
        raise DataError(f"dataset {spec!r}: empty path after ':'")
    if name in ("mnist", "har", "cifar10") and not sep:
        raise DataError(f"dataset {name} needs a directory: use --dataset {name}:DIR")
    if name in ("digits", "digits28") and sep:
        raise DataError(f"dataset {name} is bundled with scikit-learn and takes no path")
    if not sep:
        return name, None
    try:
        return name, Path(path).expanduser()
    except RuntimeError:  # ~user of no such user: Path cannot determine the home directory
        raise DataError(
            f"dataset {spec!r}: cannot expand {show_text(path.split('/')[0])} (no such user's "
            "home directory); give the path in full"
        ) from None


def load_dataset(spec: str) -> Dataset:
    """Load a dataset from its spec (see :mod:`cosim.datasets` for the list)."""
    name, path = parse_spec(spec)
    if name == "digits":
        return load_digits()
    if name == "digits28":
        return load_digits28()
    if name == "fashion-mnist":
        directory = path if path is not None else FASHION_MNIST_DIR
        if path is None and not directory.is_dir():
            raise DataError(
                f"fashion-mnist: {show_path(directory)} does not exist; install Debian's "
                "dataset-fashion-mnist package or pass --dataset fashion-mnist:DIR"
            )
        return load_idx_dir(directory, name=spec)
    assert path is not None  # parse_spec: mnist, har and cifar10 need a directory
    if name == "mnist":
        return load_idx_dir(path, name=spec)
    if name == "har":
        return load_har(path, name=spec)
    return load_cifar10(path, name=spec)


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


#: Side of the digit inside a ``digits28`` sample (MNIST centres its digits in a 20 x 20 box
#: of the 28 x 28 image).
DIGITS28_BOX = 20


def _linear_upsample(n_in: int, n_out: int) -> np.ndarray:
    """``(n_out, n_in)`` matrix of linear interpolation between pixel centres (edges held)."""
    pos = (np.arange(n_out) + 0.5) * n_in / n_out - 0.5
    pos = np.clip(pos, 0.0, n_in - 1.0)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, n_in - 1)
    frac = pos - lo
    m = np.zeros((n_out, n_in))
    m[np.arange(n_out), lo] += 1.0 - frac
    m[np.arange(n_out), hi] += frac
    return m


def load_digits28() -> Dataset:
    """An MNIST-like STAND-IN, not MNIST: scikit-learn's 8x8 digits (the same split as
    :func:`load_digits`) upsampled bilinearly to 20x20 and centred in a 28x28 black frame.

    Like MNIST, ink is bright on an exactly zero background (raw uint8 0..255, scale 256),
    so LeNet-5 runs on it and its activations see MNIST-like sparse inputs; it has the
    digits' 1438 / 359 samples and their blurrier strokes (an 8x8 source), so accuracies are
    not MNIST's.

    Examples
    --------
    >>> ds = load_digits28()
    >>> ds.x_train.shape[1:], ds.x_train.dtype.name, int(ds.x_train[:, :, :4].max())
    ((1, 28, 28), 'uint8', 0)
    """
    small = load_digits()
    up = _linear_upsample(8, DIGITS28_BOX)
    pad = (28 - DIGITS28_BOX) // 2

    def big(x: np.ndarray) -> np.ndarray:
        img = np.einsum("ij,njk,lk->nil", up, x[:, 0].astype(np.float64) / 16.0, up)
        out = np.zeros((len(x), 1, 28, 28), dtype=np.uint8)
        out[:, 0, pad : pad + DIGITS28_BOX, pad : pad + DIGITS28_BOX] = np.clip(
            np.rint(img * 255.0), 0, 255
        ).astype(np.uint8)
        return out

    prep = Preprocessing(offset=0.0, scale=256.0, in_bits=DEFAULT_IN_BITS, input_shape=(1, 28, 28))
    return Dataset(
        "digits28",
        big(small.x_train),
        small.y_train,
        big(small.x_test),
        small.y_test,
        10,
        prep,
    )
