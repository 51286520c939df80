"""The :class:`Dataset` every loader returns, checked once when it is made."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cosim.errors import DataError
from cosim.fileio import show_text
from cosim.quant import Preprocessing


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
