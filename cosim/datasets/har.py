"""The UCI HAR layout: whitespace-separated tables of 561 features and labels 1..6."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cosim.datasets.dataset import Dataset
from cosim.datasets.reading import check_dir, present, read_data_file
from cosim.errors import DataError
from cosim.fileio import error_text, show_path, show_text
from cosim.quant import DEFAULT_IN_BITS, Preprocessing


def _read_table(path: Path, name: str) -> np.ndarray:
    if not present(path):
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
    directory = check_dir(directory, name)
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
