"""A dataset spec (``NAME[:PATH]``) checked and loaded; the bundled digits."""

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

DATASETS = ("digits", "fashion-mnist", "mnist:DIR", "har:DIR", "cifar10:DIR")


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


def load_dataset(spec: str) -> Dataset:
    """Load a dataset from its spec (see :mod:`cosim.datasets` for the list)."""
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
