"""Datasets for ``cosim train``: read from local files only, never downloaded.

=====================  ========================================================================
spec                   source
=====================  ========================================================================
``digits``             scikit-learn's bundled 8x8 digits (the embedded default); a fixed
                       stratified 80/20 split (seed 0), samples shaped (1, 8, 8), raw 0..16
``digits28``           an MNIST-like STAND-IN (not MNIST): the digits upsampled bilinearly to
                       20x20 and centred in a black 28x28 frame (uint8, zero background);
                       samples shaped (1, 28, 28), so LeNet-5 runs on them
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

One module per idea: :mod:`~cosim.datasets.specs` (a spec checked and loaded; the
digits), :mod:`~cosim.datasets.dataset` (the :class:`Dataset`),
:mod:`~cosim.datasets.reading` (bounded reading of user paths), and one per file format:
:mod:`~cosim.datasets.idx`, :mod:`~cosim.datasets.har`, :mod:`~cosim.datasets.cifar`.
Every public name is re-exported here: import from ``cosim.datasets``.

Examples
--------
>>> ds = load_dataset("digits")
>>> ds.x_train.shape[1:], ds.n_classes
((1, 8, 8), 10)
"""

from __future__ import annotations

from cosim.datasets.cifar import load_cifar10, read_cifar_batch
from cosim.datasets.dataset import Dataset
from cosim.datasets.har import load_har
from cosim.datasets.idx import load_idx_dir, read_idx
from cosim.datasets.reading import MAX_FILE_BYTES, read_data_file
from cosim.datasets.specs import (
    DATASETS,
    FASHION_MNIST_DIR,
    load_dataset,
    load_digits,
    load_digits28,
    parse_spec,
)

__all__ = [
    "DATASETS",
    "FASHION_MNIST_DIR",
    "MAX_FILE_BYTES",
    "Dataset",
    "load_cifar10",
    "load_dataset",
    "load_digits",
    "load_digits28",
    "load_har",
    "load_idx_dir",
    "parse_spec",
    "read_cifar_batch",
    "read_data_file",
    "read_idx",
]
