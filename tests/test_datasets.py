"""Dataset loaders on small files written in each dataset's real format, and their errors."""

from __future__ import annotations

import gzip
import os
import pickle
import re
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cosim import datasets
from cosim.datasets import (
    FASHION_MNIST_DIR,
    load_dataset,
    parse_spec,
    read_cifar_batch,
    read_idx,
)
from cosim.errors import DataError


# ------------------------------------------------------------------------------ writers
def write_idx(path: Path, arr: np.ndarray, gz: bool = False) -> None:
    """IDX: magic 0x00 0x00 0x08 ndim, big-endian int32 dims, then uint8 data."""
    raw = bytes([0, 0, 8, arr.ndim]) + b"".join(struct.pack(">i", d) for d in arr.shape)
    raw += arr.astype(np.uint8).tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        raw = gzip.compress(raw)
    path.write_bytes(raw)


def write_mnist_dir(d: Path, n_train=64, n_test=32, gz=False, rng=None) -> Path:
    rng = rng or np.random.default_rng(0)
    d.mkdir(parents=True, exist_ok=True)
    write_idx(d / "train-images-idx3-ubyte", rng.integers(0, 256, (n_train, 28, 28)), gz)
    write_idx(d / "train-labels-idx1-ubyte", rng.integers(0, 10, n_train), gz)
    write_idx(d / "t10k-images-idx3-ubyte", rng.integers(0, 256, (n_test, 28, 28)), gz)
    write_idx(d / "t10k-labels-idx1-ubyte", rng.integers(0, 10, n_test), gz)
    return d


def write_har_dir(d: Path, n_train=40, n_test=20, n_feat=561, rng=None) -> Path:
    """UCI HAR layout: space-separated features in [-1, 1], one label 1..6 per line."""
    rng = rng or np.random.default_rng(0)
    for split, n in (("train", n_train), ("test", n_test)):
        (d / split).mkdir(parents=True, exist_ok=True)
        x = rng.uniform(-1, 1, (n, n_feat))
        lines = ["  " + " ".join(f"{v:.8e}" for v in row) for row in x]  # real files: "  -2.5e-001"
        (d / split / f"X_{split}.txt").write_text("\n".join(lines) + "\n")
        y = rng.integers(1, 7, n)
        (d / split / f"y_{split}.txt").write_text("\n".join(map(str, y)) + "\n")
    return d


class _Py2Pickler(pickle._Pickler):
    """Writes what Python 2's cPickle wrote for CIFAR-10: protocol 2, byte strings as
    SHORT_BINSTRING/BINSTRING and numpy globals under ``numpy.core.multiarray``."""

    def save_bytes(self, obj):
        n = len(obj)
        if n < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([n]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", n) + obj)
        self.memoize(obj)

    def save_str(self, obj):
        self.save_bytes(obj.encode("latin-1"))

    def save_global(self, obj, name=None):
        module = getattr(obj, "__module__", None)
        name = name or obj.__qualname__
        if module == "numpy._core.multiarray" or module == "numpy.core.multiarray":
            module = "numpy.core.multiarray"
        self.write(pickle.GLOBAL + f"{module}\n{name}\n".encode())
        self.memoize(obj)

    dispatch = dict(pickle._Pickler.dispatch)  # noqa: RUF012 - the pickler protocol
    dispatch[bytes] = save_bytes
    dispatch[str] = save_str


def write_cifar_batch(path: Path, n: int, rng, label=b"training batch 1 of 5") -> None:
    obj = {
        b"batch_label": label,
        b"labels": [int(v) for v in rng.integers(0, 10, n)],
        b"data": rng.integers(0, 256, (n, 3072)).astype(np.uint8),
        b"filenames": [b"img_%d.png" % i for i in range(n)],
    }
    with open(path, "wb") as fh:
        _Py2Pickler(fh, protocol=2).dump(obj)


def write_cifar_dir(d: Path, n=8, rng=None) -> Path:
    rng = rng or np.random.default_rng(0)
    d.mkdir(parents=True, exist_ok=True)
    for i in range(1, 6):
        write_cifar_batch(d / f"data_batch_{i}", n, rng)
    write_cifar_batch(d / "test_batch", n, rng, label=b"testing batch 1 of 1")
    return d


# -------------------------------------------------------------------------------- tests
def test_digits_is_bundled_and_split_fixed():
    a, b = load_dataset("digits"), load_dataset("digits")
    assert a.x_train.shape == (1438, 1, 8, 8) and a.x_test.shape == (359, 1, 8, 8)
    assert np.array_equal(a.y_test, b.y_test)
    assert set(np.unique(a.y_test)) == set(range(10))
    assert a.preprocessing.scale == 16.0


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_idx_dir(tmp_path, gz):
    d = write_mnist_dir(tmp_path / "m", gz=gz)
    ds = load_dataset(f"mnist:{d}")
    assert ds.x_train.shape == (64, 1, 28, 28) and ds.x_train.dtype == np.uint8
    assert ds.x_test.shape == (32, 1, 28, 28) and ds.y_train.dtype == np.int64
    raw = read_idx(d / ("train-images-idx3-ubyte" + (".gz" if gz else "")))
    assert np.array_equal(raw, ds.x_train[:, 0])
    assert load_dataset(f"fashion-mnist:{d}").x_train.shape == (64, 1, 28, 28)


@pytest.mark.skipif(not FASHION_MNIST_DIR.is_dir(), reason="dataset-fashion-mnist not installed")
def test_installed_fashion_mnist():
    ds = load_dataset("fashion-mnist")
    assert ds.x_train.shape == (60000, 1, 28, 28) and ds.x_test.shape == (10000, 1, 28, 28)
    assert np.bincount(ds.y_train).tolist() == [6000] * 10


def test_har_dir(tmp_path):
    ds = load_dataset(f"har:{write_har_dir(tmp_path / 'UCI HAR Dataset')}")
    assert ds.x_train.shape == (40, 561) and ds.n_classes == 6
    assert ds.y_train.min() >= 0 and ds.y_train.max() <= 5
    assert ds.preprocessing.offset == -1.0 and ds.preprocessing.scale == 2.0


def test_cifar10_dir_in_the_python2_pickle_format(tmp_path):
    d = write_cifar_dir(tmp_path / "cifar-10-batches-py")
    assert (d / "test_batch").read_bytes()[:2] == b"\x80\x02"
    ds = load_dataset(f"cifar10:{d}")
    assert ds.x_train.shape == (40, 3, 32, 32) and ds.x_test.shape == (8, 3, 32, 32)
    x, y = read_cifar_batch(d / "data_batch_1")
    # the row layout is 1024 red, 1024 green, 1024 blue values, row-major 32x32
    with open(d / "data_batch_1", "rb") as fh:
        raw = pickle.load(fh, encoding="bytes")
    assert np.array_equal(x.reshape(len(x), -1), raw[b"data"])
    assert y.tolist() == raw[b"labels"]


def test_cifar_batch_that_would_run_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (Path.touch, (tmp_path / "pwned",))

    p = tmp_path / "data_batch_1"
    p.write_bytes(pickle.dumps({b"data": Evil()}, protocol=2))
    with pytest.raises(DataError, match="not a readable CIFAR-10"):
        read_cifar_batch(p)
    assert not (tmp_path / "pwned").exists()


# ------------------------------------------------------------------------------- errors
@pytest.mark.parametrize("spec", ["imagenet", "mnist2:/x", "", "svhn:/data"])
def test_unknown_dataset(spec):
    with pytest.raises(DataError, match="unknown dataset"):
        load_dataset(spec)


@pytest.mark.parametrize("spec", ["mnist", "har", "cifar10"])
def test_dataset_needing_a_path(spec):
    with pytest.raises(DataError, match=f"{spec}:DIR"):
        parse_spec(spec)


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist", "har", "cifar10"])
def test_path_without_the_expected_files(tmp_path, name):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError) as exc:
        load_dataset(f"{name}:{tmp_path / 'empty'}")
    assert str(tmp_path / "empty") in str(exc.value)
    with pytest.raises(DataError, match="not a directory"):
        load_dataset(f"{name}:{tmp_path / 'missing'}")


def test_corrupt_idx_files(tmp_path):
    d = write_mnist_dir(tmp_path / "m")
    f = d / "train-images-idx3-ubyte"
    good = f.read_bytes()
    f.write_bytes(good[:-10])  # truncated
    with pytest.raises(DataError, match="truncated or corrupt"):
        load_dataset(f"mnist:{d}")
    f.write_bytes(b"\x08\x03" + good[2:])  # bad magic
    with pytest.raises(DataError, match="not an IDX file"):
        load_dataset(f"mnist:{d}")
    f.write_bytes(good)
    write_idx(d / "train-labels-idx1-ubyte", np.zeros(63))  # labels of another set
    with pytest.raises(DataError, match="do not belong together"):
        load_dataset(f"mnist:{d}")


def test_har_with_nan_and_wrong_shapes(tmp_path):
    d = write_har_dir(tmp_path / "h", n_feat=5)
    x = d / "train" / "X_train.txt"
    good = x.read_text()
    x.write_text(good.replace(good.split()[3], "NaN", 1))
    with pytest.raises(DataError, match="NaN"):
        load_dataset(f"har:{d}")
    lines = good.splitlines()
    x.write_text("\n".join([*lines[:-1], lines[-1] + " 0.5"]) + "\n")  # ragged row
    with pytest.raises(DataError, match="different numbers of columns"):
        load_dataset(f"har:{d}")
    x.write_text(good)
    (d / "test" / "X_test.txt").write_text("0.1 0.2\n" * 20)  # 2 features instead of 5
    with pytest.raises(DataError, match="features"):
        load_dataset(f"har:{d}")
    write_har_dir(d, n_feat=5)
    (d / "train" / "y_train.txt").write_text("7\n" * 40)
    with pytest.raises(DataError, match=r"1\.\.6"):
        load_dataset(f"har:{d}")


def test_cifar_wrong_format(tmp_path):
    d = write_cifar_dir(tmp_path / "c", n=4)
    (d / "data_batch_3").write_bytes(b"PK\x03\x04 not a pickle")
    with pytest.raises(DataError, match="not a CIFAR-10 python batch"):
        load_dataset(f"cifar10:{d}")
    with open(d / "data_batch_3", "wb") as fh:
        _Py2Pickler(fh, protocol=2).dump(
            {b"data": np.zeros((4, 1024), np.uint8), b"labels": [0] * 4}
        )
    with pytest.raises(DataError, match="3072"):
        load_dataset(f"cifar10:{d}")


# ------------------------------------------------------- paths that are not what they seem
@pytest.mark.parametrize("name", ["mnist", "fashion-mnist", "har", "cifar10"])
def test_a_file_or_device_given_as_the_directory(tmp_path, name):
    f = tmp_path / "data.bin"
    f.write_bytes(b"\x00" * 16)
    with pytest.raises(DataError, match=r"data\.bin is a file, not a directory"):
        load_dataset(f"{name}:{f}")
    with pytest.raises(DataError, match=r"does not exist"):
        load_dataset(f"{name}:{tmp_path / 'missing'}")
    if Path("/dev/null").exists():
        with pytest.raises(DataError, match=r"/dev/null is a FIFO, socket or device"):
            load_dataset(f"{name}:/dev/null")


@pytest.mark.skipif(sys.platform == "darwin", reason="macOS file systems refuse non-UTF-8 names")
def test_paths_that_are_not_utf8(tmp_path):
    odd = os.fsdecode(b"data-\xff")  # how Python spells an undecodable file name
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(f"mnist:{tmp_path / odd}")
    d = write_mnist_dir(tmp_path / odd)
    assert load_dataset(f"mnist:{d}").n_classes == 10
    h = write_har_dir(tmp_path / (odd + "-har"), n_feat=4)
    assert load_dataset(f"har:{h}").x_train.shape[1:] == (4,)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX FIFOs")
def test_fifos_and_directories_where_data_files_belong(tmp_path):
    """Never opened for reading (a FIFO would block, a device would never end)."""
    d = write_mnist_dir(tmp_path / "m")
    f = d / "train-labels-idx1-ubyte"
    f.unlink()
    os.mkfifo(f)
    with pytest.raises(DataError, match="train-labels-idx1-ubyte is not a regular file"):
        load_dataset(f"mnist:{d}")
    f.unlink()
    f.mkdir()
    with pytest.raises(DataError, match="train-labels-idx1-ubyte is a directory, not a file"):
        load_dataset(f"mnist:{d}")
    h = write_har_dir(tmp_path / "h", n_feat=3)
    (h / "test" / "y_test.txt").unlink()
    os.mkfifo(h / "test" / "y_test.txt")
    with pytest.raises(DataError, match=r"y_test\.txt is not a regular file"):
        load_dataset(f"har:{h}")
    c = write_cifar_dir(tmp_path / "c", n=2)
    (c / "data_batch_2").unlink()
    os.mkfifo(c / "data_batch_2")
    with pytest.raises(DataError, match=r"CIFAR-10 batch .*data_batch_2 is not a regular file"):
        load_dataset(f"cifar10:{c}")
    if Path("/dev/zero").exists():
        for read in (read_idx, read_cifar_batch):
            with pytest.raises(DataError, match="/dev/zero is not a regular file"):
                read("/dev/zero")


def test_idx_headers_truncations_and_gzip_damage(tmp_path, monkeypatch):
    d = write_mnist_dir(tmp_path / "m")
    f = d / "train-labels-idx1-ubyte"
    good = f.read_bytes()
    for raw, pattern in [
        (b"", "not an IDX file"),
        (good[:3], "not an IDX file"),
        (b"\x01\x00" + good[2:], "not an IDX file"),
        (bytes([0, 0, 0x0D, 1]) + good[4:], "type code 0x0d"),
        (bytes([0, 0, 8, 0]), "truncated IDX header"),
        (bytes([0, 0, 8, 3, 0, 0]), "truncated IDX header"),
        (good[:6], "truncated IDX header"),
        (good[:-1], "truncated or corrupt"),
        (good + b"\x00", "truncated or corrupt"),
        # dims whose product overflows 64 bits (np.prod wrapped it to 0 = the data length)
        (bytes([0, 0, 8, 3]) + (2**31).to_bytes(4, "big") * 3, "truncated or corrupt"),
        (gzip.compress(good)[:-12], "damaged .gz"),
        (b"\x1f\x8b" + b"not gzip at all", "damaged .gz"),
        (gzip.compress(good)[:30] + bytes([gzip.compress(good)[30] ^ 0xFF]), "damaged .gz"),
    ]:
        f.write_bytes(raw)
        with pytest.raises(DataError, match=pattern):
            load_dataset(f"mnist:{d}")
    f.write_bytes(good)
    # a small .gz that decompresses beyond the bound is refused while decompressing
    monkeypatch.setattr(datasets.reading, "MAX_FILE_BYTES", 64 * 1024)
    bomb = d / "t10k-labels-idx1-ubyte"
    bomb.unlink()
    (d / "t10k-labels-idx1-ubyte.gz").write_bytes(
        gzip.compress(bytes([0, 0, 8, 1]) + (10**6).to_bytes(4, "big") + b"\x00" * 10**6)
    )
    with pytest.raises(DataError, match=r"decompresses to more than 64 KiB"):
        load_dataset(f"mnist:{d}")
    (d / "big").write_bytes(b"\x00" * (64 * 1024 + 1))
    with pytest.raises(DataError, match=r"big holds more than 64 KiB"):
        read_idx(d / "big")


def test_har_text_that_is_not_utf8_or_empty(tmp_path):
    h = write_har_dir(tmp_path / "h", n_feat=3)
    x = h / "train" / "X_train.txt"
    good = x.read_bytes()
    x.write_bytes(good.replace(b"e", b"\xe9", 1))  # a Latin-1 byte inside a number
    with pytest.raises(DataError, match=r"X_train\.txt is not a text file of numbers \(byte 0xe9"):
        load_dataset(f"har:{h}")
    x.write_bytes(b"\n  \n")
    with pytest.raises(DataError, match=r"X_train\.txt is empty"):
        load_dataset(f"har:{h}")


def test_cifar_labels_too_large_for_int64(tmp_path):
    d = write_cifar_dir(tmp_path / "c", n=2)
    with open(d / "test_batch", "wb") as fh:
        _Py2Pickler(fh, protocol=2).dump(
            {b"data": np.zeros((2, 3072), np.uint8), b"labels": [2**70, 0]}
        )
    with pytest.raises(DataError, match="labels"):
        load_dataset(f"cifar10:{d}")


def test_train_cli_reports_dataset_path_problems_in_one_line(tmp_path, capsys):
    from cosim.cli import main

    f = tmp_path / "file"
    f.write_text("x")
    for spec in (f"mnist:{f}", "cifar10:/dev/null", f"har:{tmp_path / 'missing'}"):
        code = main(["train", "--dataset", spec, "--epochs", "1", "--out", str(tmp_path / "m.npz")])
        _, err = capsys.readouterr()
        assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
        assert err.startswith("cosim train: error: dataset ")


@pytest.mark.skipif(sys.platform == "darwin", reason="macOS file systems refuse non-UTF-8 names")
def test_train_cli_with_a_dataset_path_that_is_not_utf8(tmp_path):
    """A real process: its stderr escapes the undecodable byte (capsys would not)."""
    odd = os.fsencode(tmp_path) + b"/x-\xff"
    proc = subprocess.run(
        [sys.executable, "-m", "cosim", "train", "--dataset", b"har:" + odd, "--out",
         os.fsencode(tmp_path / "m.npz")],
        capture_output=True,
        check=False,
    )  # fmt: skip
    err = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == 2 and len(err.strip().splitlines()) == 1, err
    assert err.startswith("cosim train: error: dataset har:") and "x-\\udcff" in err


# ------------------------------------------------- odd paths and user text in messages
def _one_line(exc: pytest.ExceptionInfo) -> str:
    msg = str(exc.value)
    assert msg and "\n" not in msg and "\r" not in msg, repr(msg)
    return msg


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist", "har", "cifar10"])
def test_dataset_paths_no_directory_can_have_are_data_errors(tmp_path, name):
    long = tmp_path / ("x" * 300)  # longer than any file system's NAME_MAX (255 bytes)
    for path, pattern in [
        (long, r"cannot read .*x{300} \(File name too long\)"),
        (long / "sub", r"\(File name too long\)"),
        (tmp_path / "a\x00b", r"a\\x00b holds a NUL byte"),
        (tmp_path / "new\nline", r"new\\nline is not a directory \(it does not exist\)"),
    ]:
        with pytest.raises(DataError, match=rf"^dataset {re.escape(name)}:.*{pattern}") as exc:
            load_dataset(f"{name}:{path}")
        _one_line(exc)


def test_messages_escape_newlines_in_dataset_paths(tmp_path):
    odd = tmp_path / "new\nline"
    odd.mkdir()
    (odd / "file\tname").write_text("x")
    for spec, pattern in [
        (f"mnist:{odd}", r"new\\nline has no train-images-idx3-ubyte"),
        (f"har:{odd}", r"missing .*new\\nline/train/X_train\.txt"),
        (f"cifar10:{odd}", r"new\\nline lacks data_batch_1"),
        (f"mnist:{odd / ('file' + chr(9) + 'name')}", r"file\\tname is a file, not a directory"),
    ]:
        with pytest.raises(DataError, match=pattern) as exc:
            load_dataset(spec)
        assert _one_line(exc).startswith("dataset ")
    write_mnist_dir(odd)
    (odd / "t10k-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01\x00")
    with pytest.raises(DataError, match=r"new\\nline/t10k-labels-idx1-ubyte: truncated") as exc:
        load_dataset(f"mnist:{odd}")
    _one_line(exc)
    h = write_har_dir(tmp_path / "har\r", n_feat=4)
    (h / "train" / "X_train.txt").write_text("1 2 3 a\x00b\n")
    with pytest.raises(DataError, match=r"har\\r/train/X_train\.txt: not a .*table") as exc:
        load_dataset(f"har:{h}")
    _one_line(exc)


def test_data_files_that_no_file_can_have(tmp_path):
    with pytest.raises(DataError, match=r"a\\x00b holds a NUL byte") as exc:
        read_idx(tmp_path / "a\x00b")
    _one_line(exc)
    with pytest.raises(DataError, match=r"\(File name too long\)") as exc:
        read_cifar_batch(tmp_path / ("x" * 300))
    _one_line(exc)
    with pytest.raises(DataError, match=r"new\\nline does not exist") as exc:
        datasets.read_data_file(tmp_path / "new\nline")
    _one_line(exc)


def test_home_directory_of_no_such_user(tmp_path):
    with pytest.raises(DataError, match=r"cannot expand ~no-such-user-cosim") as exc:
        load_dataset("mnist:~no-such-user-cosim/data")
    _one_line(exc)
