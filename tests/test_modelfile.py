"""Model files: every malformed file is one ModelFileError naming the file and the field.

The mutation tests take real model files written by :func:`save_model` (a quantized and a
float digits MLP, a quantized LeNet-5 with convolutions and pooling), set every field of the
JSON metadata in turn to values of the wrong type, NaN, inf, huge, negative and empty, delete
it, cut the file short and flip its bytes, and require :func:`load_model` either to raise
ModelFileError or to return a model that works: it runs forward with finite logits, its
training metadata formats like ``cosim evaluate``'s report, and it saves and loads again.
"""

from __future__ import annotations

import copy
import json
import os
import re
import struct
import sys
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

from cosim.cli import main
from cosim.datasets import load_dataset
from cosim.errors import ModelFileError
from cosim.model import Model, float_forward, integer_forward, load_model, read_npz, save_model
from cosim.model import io as model_io
from cosim.train.trainer import TrainConfig, train

from .test_datasets import write_mnist_dir


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def model_files(tmp_path_factory) -> dict[str, Path]:
    """Real model files of each kind, written by save_model after a short training run."""
    d = tmp_path_factory.mktemp("models")
    digits = load_dataset("digits")
    mnist = load_dataset(f"mnist:{write_mnist_dir(d / 'mnist', n_train=64, n_test=16)}")
    recipes = {
        "mlp-global": (TrainConfig(model="mlp", scheme="global", epochs=1), digits),
        "mlp-float": (TrainConfig(model="mlp", scheme="float", epochs=1), digits),
        "lenet-per-layer": (
            TrainConfig(model="lenet5", scheme="per-layer", epochs=1, batch_size=32),
            mnist,
        ),
    }
    out = {}
    for name, (cfg, ds) in recipes.items():
        outcome = train(cfg, ds, np.random.default_rng(0))
        out[name] = d / f"{name}.npz"
        save_model(outcome.model, out[name])
    return out


def _arrays_and_meta(path: Path) -> tuple[dict[str, np.ndarray], dict]:
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    return arrays, json.loads(str(arrays["meta"]))


def _write(path: Path, arrays: dict[str, np.ndarray], meta) -> Path:
    arrays = dict(arrays)
    arrays["meta"] = np.array(json.dumps(meta, allow_nan=True))
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)
    return path


def _assert_usable(model: Model, tmp: Path) -> None:
    """What every loaded model must support: forward, the evaluate report, a save/load."""
    assert isinstance(model, Model)
    rng = np.random.default_rng(0)
    prep = model.preprocessing
    x = prep.offset + prep.scale * rng.uniform(0.0, 1.0, (3, *prep.input_shape))
    fwd = integer_forward if model.quantized else float_forward
    logits = fwd(model, x).logits
    assert logits.shape == (3, model.n_classes) and np.all(np.isfinite(logits))
    # what cosim evaluate's report and dataset default do with the training metadata
    assert isinstance(model.info, dict)
    text = f"{model.info.get('test_accuracy', float('nan')) * 100:.2f} %"
    assert text.endswith(" %")
    assert isinstance(model.info.get("dataset", ""), str)
    f"{model.architecture} ({model.scheme})".encode()
    again = tmp / "again.npz"
    save_model(model, again)
    load_model(again)


# ----------------------------------------------------------------- metadata mutation
BAD_VALUES = [
    "high",
    "",
    None,
    True,
    False,
    [],
    {},
    [1, 2],
    ["a", "b"],
    0,
    -1,
    1.5,
    -0.0,
    1e308,
    10**30,
    2**63,
    10**400,
    float("nan"),
    float("inf"),
    float("-inf"),
    "\ud800",  # a lone surrogate: not encodable as UTF-8
    "x" * 5000,
]


def _paths(node, prefix=()):
    """Every path (tuple of keys/indices) into a JSON document, containers included."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield (*prefix, k)
            yield from _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield (*prefix, i)
            yield from _paths(v, (*prefix, i))


def _set(meta, path, value):
    node = meta
    for k in path[:-1]:
        node = node[k]
    if value is _DELETE:
        if isinstance(node, dict):
            del node[path[-1]]
        else:
            node.pop(path[-1])
    else:
        node[path[-1]] = value


_DELETE = object()


def _label(path) -> str:
    return "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in path).lstrip(".")


@pytest.mark.parametrize("name", ["mlp-global", "mlp-float", "lenet-per-layer"])
def test_every_metadata_field_mutated_loads_or_is_a_model_file_error(model_files, tmp_path, name):
    arrays, meta = _arrays_and_meta(model_files[name])
    assert isinstance(load_model(model_files[name]), Model)
    paths = list(_paths(meta))
    if name != "mlp-global":  # the free-form training config: once is enough
        paths = [p for p in paths if p[:2] != ("info", "config") or len(p) == 2]
    dst = tmp_path / "mutant.npz"
    outcomes = {"loaded": 0, "refused": 0}
    for path in paths:
        for value in [*BAD_VALUES, _DELETE]:
            mutant = copy.deepcopy(meta)
            _set(mutant, path, value)
            _write(dst, arrays, mutant)
            what = f"{_label(path)} = {value if value is not _DELETE else '<deleted>'!r:.40}"
            try:
                model = load_model(dst)
            except ModelFileError as exc:
                msg = str(exc)
                assert msg.startswith(f"model file {dst}"), what
                assert "\n" not in msg and len(msg) < 600, (what, msg)
                outcomes["refused"] += 1
                continue
            except Exception as exc:  # pragma: no cover - the failure this test looks for
                pytest.fail(f"{what}: {type(exc).__name__}: {exc}")
            try:
                _assert_usable(model, tmp_path)
            except Exception as exc:  # pragma: no cover
                pytest.fail(f"{what} loaded, but the model is unusable: {exc!r}")
            outcomes["loaded"] += 1
    # most mutations must be refused; some are harmless (architecture = "high", input_hi =
    # 1.5, deleting info or anything in the free-form info.config)
    assert outcomes["refused"] > 2 * outcomes["loaded"], outcomes


@pytest.mark.parametrize(
    ("path", "value", "pattern"),
    [
        (("info", "test_accuracy"), "high", r"info\.test_accuracy must be a fraction"),
        (("info", "test_accuracy"), None, r"info\.test_accuracy"),
        (("info", "test_accuracy"), float("nan"), r"info\.test_accuracy .*got nan"),
        (("info", "test_accuracy"), 1.5, r"info\.test_accuracy"),
        (("info",), [1, 2], r"metadata field info must be an object, got \[1, 2\]"),
        (("info", "dataset"), 3, r"info\.dataset must be a dataset spec"),
        (("info", "epochs_trained"), -1, r"info\.epochs_trained must be an integer"),
        (("info", "config"), "adam", r"info\.config must be an object"),
        (("layers",), {"0": {}}, r"field layers must be a list"),
        (("layers",), [], r"field layers must be a list of 1\.\.1000"),
        (("layers", 1), "dense", r"field layers\[1\] must be an object"),
        (("layers", 1, "w_grid"), "0.25", r"layers\[1\]\.w_grid must be an object"),
        (("layers", 1, "w_grid", "bits"), 4.0, r"layers\[1\]\.w_grid\.bits must be an integer"),
        (("layers", 1, "w_grid", "w_max"), "0.25", r"layers\[1\]\.w_grid\.w_max must be a pos"),
        (("layers", 1, "in_grid", "hi"), float("inf"), r"layers\[1\]\.in_grid\.hi"),
        (("layers", 1, "b_grid", "bits"), True, r"layers\[1\]\.b_grid\.bits"),
        (("layers", 1, "out_grid"), [2.0, 3], r"layers\[1\]\.out_grid must be an object"),
        (("layers", 1, "in_shape"), "64", r"layers\[1\]\.in_shape must be a list of 1 sizes"),
        (("layers", 1, "in_shape", 0), -64, r"layers\[1\]\.in_shape\[0\] must be an integer"),
        (("layers", 1, "kind"), "lstm", r"layers\[1\]\.kind must be one of dense"),
        (("layers", 1, "role"), 0, r"layers\[1\]\.role must be one of hidden, head"),
        (("layers", 0, "out_shape"), [63], r"layers\[0\]\.out_shape \[63\] is not the flatten"),
        (("n_classes",), 10.0, r"field n_classes must be an integer"),
        (("n_classes",), -10, r"field n_classes must be an integer"),
        (("n_classes",), True, r"field n_classes must be an integer"),
        (("n_classes",), 10**400, r"field n_classes must be an integer in 1\.\.\d+, got 1000"),
        (("input_hi",), 1e308, r"field input_hi must be a positive number"),
        (("input_hi",), "2.0", r"field input_hi"),
        (("scheme",), ["global"], r"field scheme must be one of float, per-layer, global"),
        (("architecture",), "\ud800", r"field architecture"),
        (("architecture",), "mlp\nfake", r"field architecture must be a short printable"),
        (("preprocessing",), "none", r"field preprocessing must be an object"),
        (("preprocessing", "scale"), 0, r"preprocessing\.scale must be a positive number"),
        (("preprocessing", "offset"), float("nan"), r"preprocessing\.offset"),
        (("preprocessing", "in_bits"), 9, r"preprocessing\.in_bits must be an integer in 1\.\.8"),
        (("preprocessing", "input_shape"), [1, 8], r"input_shape must be a list of 1 or 3"),
        (("format_version",), True, r"has format version True but this cosim reads version 1"),
        (("format_version",), 1.0, r"has format version 1\.0"),
    ],
)
def test_wrong_metadata_names_the_file_and_the_field(model_files, tmp_path, path, value, pattern):
    arrays, meta = _arrays_and_meta(model_files["mlp-global"])
    _set(meta, path, value)
    dst = _write(tmp_path / "bad.npz", arrays, meta)
    with pytest.raises(ModelFileError, match=rf"^model file {re.escape(str(dst))}: .*{pattern}"):
        load_model(dst)


@pytest.mark.parametrize(
    ("field", "value", "pattern"),
    [
        ("kernel", 0, r"layers\[0\]\.kernel must be an integer"),
        ("kernel", 40, r"layers\[0\]\.kernel 40 is larger than the padded input"),
        ("stride", 2, r"layers\[0\]\.out_shape .* does not follow from input"),
        ("padding", "same", r"layers\[0\]\.padding must be an integer"),
    ],
)
def test_conv_geometry_must_agree(model_files, tmp_path, field, value, pattern):
    arrays, meta = _arrays_and_meta(model_files["lenet-per-layer"])
    assert meta["layers"][0]["kind"] == "conv2d"
    meta["layers"][0][field] = value
    with pytest.raises(ModelFileError, match=pattern):
        load_model(_write(tmp_path / "c.npz", arrays, meta))


def test_pool_geometry_must_agree(model_files, tmp_path):
    arrays, meta = _arrays_and_meta(model_files["lenet-per-layer"])
    i = next(i for i, g in enumerate(meta["layers"]) if g["kind"].endswith("pool2d"))
    meta["layers"][i]["size"] = 3
    with pytest.raises(ModelFileError, match=rf"layers\[{i}\]\.(size|out_shape)"):
        load_model(_write(tmp_path / "p.npz", arrays, meta))


def test_evaluate_reports_wrong_metadata_in_one_line(model_files, tmp_path, capsys):
    """The report formats ``info.test_accuracy * 100``: a string there must never get so far."""
    arrays, meta = _arrays_and_meta(model_files["mlp-global"])
    meta["info"]["test_accuracy"] = "high"
    dst = _write(tmp_path / "high.npz", arrays, meta)
    code = main(["evaluate", "--model", str(dst), "--library", str(tmp_path / "lib")])
    _, err = capsys.readouterr()
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cosim evaluate: error: "), err
    assert "Traceback" not in err


# ------------------------------------------------------------- damaged and odd files
def test_truncated_files_are_model_file_errors(model_files, tmp_path):
    raw = model_files["mlp-global"].read_bytes()
    cuts = sorted({0, 1, 3, 4, 30, 100, len(raw) - 1, len(raw) - 22, *range(0, len(raw), 997)})
    dst = tmp_path / "cut.npz"
    for n in cuts:
        dst.write_bytes(raw[:n])
        with pytest.raises(ModelFileError, match=rf"^model file {re.escape(str(dst))} is corrupt"):
            load_model(dst)


def test_flipped_bytes_load_or_are_model_file_errors(model_files, tmp_path):
    raw = bytearray(model_files["lenet-per-layer"].read_bytes())
    dst = tmp_path / "flip.npz"
    refused = 0
    for pos in range(0, len(raw), max(1, len(raw) // 400)):
        bad = bytearray(raw)
        bad[pos] ^= 0xFF
        dst.write_bytes(bytes(bad))
        try:
            model = load_model(dst)
        except ModelFileError as exc:
            assert "\n" not in str(exc)
            refused += 1
            continue
        _assert_usable(model, tmp_path)  # a flip in a header field nobody reads
    assert refused > 100


def _with_meta_array(src: Path, dst: Path, meta_array: np.ndarray) -> Path:
    arrays, _ = _arrays_and_meta(src)
    arrays["meta"] = meta_array
    with open(dst, "wb") as fh:
        np.savez(fh, **arrays)
    return dst


@pytest.mark.parametrize(
    ("make", "pattern"),
    [
        (lambda text: np.array(b"\xff\xfe" + text.encode("latin-1")), "not a text string"),
        (lambda text: np.array(text.replace("mlp", "ml\ud800", 1)), "not valid Unicode text"),
        (
            lambda text: np.frombuffer(
                np.array(text).tobytes()[:-4] + (0x110000).to_bytes(4, "little"),
                dtype=np.array(text).dtype,
            ).reshape(()),
            "not valid Unicode text",
        ),
        (lambda text: np.array(text[: len(text) // 2]), "not valid JSON"),
        (
            lambda text: np.array(re.sub(r'"n_classes": \d+', '"n_classes": ' + "9" * 5000, text)),
            "not valid JSON .*digits",
        ),
        (lambda text: np.array([text]), "not a text string"),
        (lambda text: np.array("[" * 100_000 + "]" * 100_000), "nests too deeply|not a cosim"),
    ],
    ids=[
        "latin1-bytes",
        "lone-surrogate",
        "beyond-unicode",
        "cut-json",
        "5000-digit-int",
        "1d-array",
        "deep",
    ],
)
def test_metadata_that_is_not_utf8_text(model_files, tmp_path, make, pattern):
    text = str(_arrays_and_meta(model_files["mlp-global"])[0]["meta"])
    dst = _with_meta_array(model_files["mlp-global"], tmp_path / "u.npz", make(text))
    with pytest.raises(ModelFileError, match=pattern):
        load_model(dst)


def test_a_member_that_is_not_an_array(model_files, tmp_path):
    import zipfile

    dst = tmp_path / "extra.npz"
    dst.write_bytes(model_files["mlp-global"].read_bytes())
    with zipfile.ZipFile(dst, "a") as zf:
        zf.writestr("notes.txt", "hello")
    with pytest.raises(ModelFileError, match=r"member .notes\.txt. is not an array"):
        load_model(dst)


def test_directory_fifo_device_and_size_bound(tmp_path, monkeypatch, model_files, capsys):
    with pytest.raises(ModelFileError, match=r"is a directory, not a model file"):
        load_model(tmp_path)
    if hasattr(os, "mkfifo"):
        fifo = tmp_path / "m.fifo"
        os.mkfifo(fifo)  # opening it for reading would block until a writer came
        with pytest.raises(ModelFileError, match="is not a regular file"):
            load_model(fifo)
    if Path("/dev/zero").exists():
        with pytest.raises(ModelFileError, match="/dev/zero is not a regular file"):
            load_model("/dev/zero")
        with pytest.raises(ModelFileError, match="checkpoint /dev/zero is not a regular file"):
            read_npz("/dev/zero", what="checkpoint")
    monkeypatch.setattr(model_io, "MAX_MODEL_BYTES", 1000)
    with pytest.raises(
        ModelFileError, match=r"larger than any model file \(\d+ bytes, limit 1000\)"
    ):
        load_model(model_files["mlp-global"])
    monkeypatch.undo()
    for arg in (tmp_path, "/dev/zero"):
        code = main(["evaluate", "--model", str(arg), "--library", str(tmp_path / "lib")])
        _, err = capsys.readouterr()
        assert code == 2 and len(err.strip().splitlines()) == 1, err
        assert "does not exist" not in err


@pytest.mark.skipif(sys.platform == "darwin", reason="macOS file systems refuse non-UTF-8 names")
def test_model_path_that_is_not_utf8(model_files, tmp_path):
    p = tmp_path / os.fsdecode(b"model-\xff.npz")
    with pytest.raises(ModelFileError, match="does not exist"):
        load_model(p)
    p.write_bytes(model_files["mlp-global"].read_bytes())
    assert load_model(p).scheme == "global"


# --------------------------------------- odd paths, damaged .npy headers, complex arrays
def _one_line(exc: pytest.ExceptionInfo) -> str:
    msg = str(exc.value)
    assert msg and "\n" not in msg and "\r" not in msg, repr(msg)
    return msg


def test_model_paths_no_file_can_have_are_model_file_errors(tmp_path, capsys):
    for path, pattern in [
        ("a\x00b", r"^model file a\\x00b holds a NUL byte"),
        (tmp_path / "a\x00b.npz", r"a\\x00b\.npz holds a NUL byte"),
        (tmp_path / ("x" * 300), r"^cannot read model file .*x{300} \(File name too long\)"),
        (tmp_path / ("x" * 300) / "m.npz", r"\(File name too long\)"),
        (tmp_path / "new\nline.npz", r"new\\nline\.npz does not exist"),
        (tmp_path / "new\nline" / "m.npz", r"new\\nline/m\.npz does not exist"),
    ]:
        with pytest.raises(ModelFileError, match=pattern) as exc:
            load_model(path)
        _one_line(exc)
        with pytest.raises(ModelFileError, match=pattern.replace("model file", "checkpoint")):
            read_npz(path, what="checkpoint")
    odd = tmp_path / "new\nline"
    odd.mkdir()
    with pytest.raises(ModelFileError, match=r"new\\nline is a directory") as exc:
        load_model(odd)
    _one_line(exc)


def _replace_member(src: Path, dst: Path, member: str, raw: bytes) -> Path:
    with zipfile.ZipFile(src) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    members[member] = raw
    with zipfile.ZipFile(dst, "w") as zf:
        for n, b in members.items():
            zf.writestr(n, b)
    return dst


def _npy(header: str, data: bytes = b"") -> bytes:
    text = header.encode("latin-1")
    text += b" " * ((-(12 + len(text) + 1)) % 64) + b"\n"
    return b"\x93NUMPY\x02\x00" + struct.pack("<I", len(text)) + text + data


@pytest.mark.parametrize(
    "header",
    [
        "{'descr': '<i4', 'shape': (",
        "{'descr': '<i4', 'fortran_order': False, 'shape': (10L,), }",
        "{'descr': '<i4', 'fortran_order': False, 'shape': " + "(" * 3000,
        "{'descr': '<i4', 'fortran_order': False, 'shape': (18446744073709551616,), }",
        "{'descr': '<i4', 'fortran_order': False, 'shape': (1099511627776,), }",
        "{'descr': '<i4', 'fortran_order': False, 'shape': (-10,), }",
        "{'descr': 'O', 'fortran_order': False, 'shape': (10,), }",
    ],
    ids=["incomplete", "python2-long", "deep", "2**64", "2**40", "negative", "objects"],
)
def test_a_damaged_npy_header_is_a_model_file_error(model_files, tmp_path, header, capsys):
    src = model_files["mlp-global"]
    with zipfile.ZipFile(src) as zf:
        member = next(n for n in zf.namelist() if n.endswith(".n_b.npy"))
    dst = _replace_member(src, tmp_path / "h.npz", member, _npy(header, bytes(40)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing may be printed either
        with pytest.raises(ModelFileError, match=r"is corrupt or not a cosim \.npz") as exc:
            load_model(dst)
        _one_line(exc)
        with pytest.raises(ModelFileError, match=r"^checkpoint .* is corrupt"):
            read_npz(dst, what="checkpoint")
    code = main(["evaluate", "--model", str(dst), "--library", str(tmp_path / "lib")])
    _, err = capsys.readouterr()
    assert code == 2 and len(err.strip().splitlines()) == 1 and "corrupt" in err, err


def test_every_header_byte_flipped_loads_or_is_a_model_file_error(model_files, tmp_path):
    """Flipping one bit of a .npy header (byte 388 of the float MLP: a ``(`` left open)
    must not let tokenize.TokenError or SyntaxError escape, nor print a warning."""
    raw = model_files["mlp-float"].read_bytes()
    with zipfile.ZipFile(model_files["mlp-float"]) as zf:
        spans = [
            (i.header_offset, i.header_offset + 30 + len(i.filename) + 200) for i in zf.infolist()
        ]
    dst = tmp_path / "flip.npz"
    refused = 0
    positions = sorted({p for a, b in spans for p in range(a, min(b, len(raw)))} | {388})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for pos in positions:
            bad = bytearray(raw)
            bad[pos] ^= 1
            dst.write_bytes(bytes(bad))
            try:
                model = load_model(dst)
            except ModelFileError as exc:
                assert "\n" not in str(exc)
                refused += 1
                continue
            _assert_usable(model, tmp_path)
    assert refused > len(positions) // 4


@pytest.mark.parametrize("name", ["mlp-float", "mlp-global"])
def test_complex_arrays_are_refused_not_cast(model_files, tmp_path, name):
    arrays, meta = _arrays_and_meta(model_files[name])
    key = "L1.w" if name == "mlp-float" else "L1.n_w"
    arrays[key] = arrays[key].astype(np.complex64) + 1j
    dst = _write(tmp_path / "c.npz", arrays, meta)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ComplexWarning, no imaginary part dropped
        with pytest.raises(ModelFileError, match=rf"'{re.escape(key)}\.npy' holds complex") as e:
            load_model(dst)
        _one_line(e)
        with pytest.raises(ModelFileError, match="holds complex numbers"):
            read_npz(dst, what="checkpoint")
    # a complex array that nobody reads (the float shadow weights) is refused too
    arrays, meta = _arrays_and_meta(model_files[name])
    arrays["shadow.w"] = np.zeros(3, np.complex128)
    with pytest.raises(ModelFileError, match="holds complex numbers"):
        load_model(_write(tmp_path / "s.npz", arrays, meta))
