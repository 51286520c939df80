"""``cosim export``: float and QDQ ONNX graphs of cosim models, checked with onnx's own
ReferenceEvaluator against cosim's forwards, the round trip through ``cosim import``, and
the command's errors."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")

from cosim.cli import main  # noqa: E402
from cosim.model import load_model, predict, save_model  # noqa: E402
from cosim.model.format import PoolLayer, WeightLayer  # noqa: E402
from cosim.model.forward import float_forward, integer_forward  # noqa: E402
from cosim.train.config import TrainConfig  # noqa: E402
from cosim.train.importer import ImportOptions, import_onnx  # noqa: E402
from cosim.train.onnx_export import (  # noqa: E402
    ExportError,
    dequantized,
    export_onnx,
    run_onnx,
)
from cosim.train.onnx_graph import graph_from_proto  # noqa: E402
from cosim.train.trainer import train  # noqa: E402

N_TEST = 60  # test samples the evaluator runs (the reference evaluator is slow)


@pytest.fixture(scope="module")
def data():
    from cosim.datasets import load_dataset

    return {name: load_dataset(name) for name in ("digits", "digits28")}


@pytest.fixture(scope="module")
def models(data):
    """An MLP (digits) and a LeNet-5 (digits28), global and per-layer, trained briefly."""
    out = {}
    for arch, ds, ep in (("mlp", "digits", 2), ("lenet5", "digits28", 1)):
        for scheme in ("global", "per-layer"):
            cfg = TrainConfig(model=arch, scheme=scheme, epochs=ep)
            out[arch, scheme] = (train(cfg, data[ds], np.random.default_rng(1)).model, data[ds])
    return out


CASES = [("mlp", "global"), ("mlp", "per-layer"), ("lenet5", "global"), ("lenet5", "per-layer")]
EVAL_CASES = [("mlp", "global"), ("mlp", "per-layer"), ("lenet5", "per-layer")]


@pytest.mark.parametrize("case", EVAL_CASES)
def test_float_export_is_the_dequantized_network(models, case):
    m, d = models[case]
    x = d.x_test[:N_TEST]
    logits = run_onnx(export_onnx(m), d.preprocessing.unit(x))
    ref = float_forward(dequantized(m), x)
    assert np.array_equal(logits.argmax(1), ref.predictions)
    np.testing.assert_allclose(logits, ref.logits, rtol=1e-4, atol=1e-4 * np.abs(ref.logits).max())


@pytest.mark.parametrize("case", EVAL_CASES)
def test_quantized_export_codes_are_bit_exact(models, case):
    """Every hidden layer's and average pool's codes equal the integer reference's; the
    predictions too, except where cosim's integer logits tie (float32 breaks the tie)."""
    from onnx.reference import ReferenceEvaluator

    m, d = models[case]
    x = d.x_test[:N_TEST]
    proto = export_onnx(m, quantized=True)
    ref = integer_forward(m, x, keep_codes=True)
    q_layers = [
        i
        for i, lay in enumerate(m.layers)
        if (isinstance(lay, WeightLayer) and lay.is_hidden)
        or (isinstance(lay, PoolLayer) and lay.kind == "avgpool2d")
    ]
    # the uint8 codes: each QuantizeLinear's Clip (a-bit grids) after the input's QDQ
    clips = [n.output[0] for n in proto.graph.node if n.op_type == "Clip"]
    assert len(clips) == len(q_layers)
    outs = ReferenceEvaluator(proto).run(
        [*clips, "logits"], {"x01": d.preprocessing.unit(x).astype(np.float32)}
    )
    for i, codes in zip(q_layers, outs[:-1], strict=True):
        assert codes.dtype == np.uint8
        # a weight layer's float32 sums may cross a half where acc * scale lies within
        # float32 rounding of it: rare; the pools and the input are exact
        wrong = np.mean(codes.astype(np.int64) != ref.codes[i])
        assert wrong < (1e-4 if isinstance(m.layers[i], WeightLayer) else 1e-12), f"layer {i}"
    top2 = np.sort(ref.codes[-1], axis=1)[:, -2:]
    untied = top2[:, 1] > top2[:, 0]
    assert untied.mean() > 0.9
    assert np.mean(outs[-1].argmax(1)[untied] == ref.predictions[untied]) > 0.98


@pytest.mark.parametrize("quantized", [False, True])
@pytest.mark.parametrize("case", CASES)
def test_round_trip_keeps_predictions(models, case, quantized):
    m, d = models[case]
    g = graph_from_proto(export_onnx(m, quantized=quantized), "rt")
    got = import_onnx(g, d, ImportOptions()).model
    assert got.scheme == m.scheme
    assert np.array_equal(predict(got, d.x_test), predict(m, d.x_test))
    for a, b in zip(got.weight_layers, m.weight_layers, strict=True):
        assert np.array_equal(a.n_w, b.n_w) and np.array_equal(a.n_b, b.n_b)


def test_round_trip_recalibrated_is_close(models):
    """--recalibrate ignores the export's grids: ordinary post-training quantization."""
    m, d = models["mlp", "global"]
    g = graph_from_proto(export_onnx(m), "rt")
    out = import_onnx(g, d, ImportOptions(grids="calibrate", calibrate=128))
    assert out.report["calibration"]["method"] == "mse"
    agree = np.mean(predict(out.model, d.x_test) == predict(m, d.x_test))
    assert agree > 0.85


def test_float_scheme_model_exports_float_only(data, tmp_path):
    d = data["digits"]
    m = train(TrainConfig(model="mlp", scheme="float", epochs=1), d, np.random.default_rng(0)).model
    logits = run_onnx(export_onnx(m), d.preprocessing.unit(d.x_test[:50]))
    assert np.array_equal(logits.argmax(1), float_forward(m, d.x_test[:50]).predictions)
    with pytest.raises(ExportError, match="--quantized needs a quantized model"):
        export_onnx(m, quantized=True)


def test_cli_export_and_errors(models, tmp_path, capsys):
    m, _ = models["mlp", "global"]
    src = tmp_path / "m.npz"
    save_model(m, src)
    out = tmp_path / "m.onnx"
    assert main(["export", str(src), "--out", str(out), "--quantized"]) == 0
    proto = onnx.load(str(out))
    assert proto.producer_name == "cosim"
    assert main(["export", str(src), "--out", str(out)]) == 0  # replaces its own file
    assert any(n.op_type == "Gemm" for n in onnx.load(str(out)).graph.node)
    capsys.readouterr()
    foreign = tmp_path / "foreign.onnx"
    foreign.write_bytes(b"not cosim's")
    assert main(["export", str(src), "--out", str(foreign)]) == 2
    assert "is not a model export (ONNX) that cosim wrote" in capsys.readouterr().err
    assert foreign.read_bytes() == b"not cosim's"
    assert main(["export", str(tmp_path / "missing.npz"), "--out", str(tmp_path / "x.onnx")]) == 2
    err = capsys.readouterr().err
    assert "missing.npz" in err and not (tmp_path / "x.onnx").exists()
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 corrupt")
    assert main(["export", str(bad), "--out", str(tmp_path / "y.onnx")]) == 2
    assert "bad.npz" in capsys.readouterr().err and not (tmp_path / "y.onnx").exists()
    assert load_model(src).scheme == "global"


def test_unsupported_layer_kind(models):
    from dataclasses import replace

    m, _ = models["mlp", "global"]
    odd = replace(m, layers=(PoolLayer("minpool2d", 2), *m.layers))
    with pytest.raises(ExportError, match="layer 0 of kind 'minpool2d' cannot be exported"):
        export_onnx(odd)
