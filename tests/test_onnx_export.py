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


# --- residual models: cosim import of a residual ONNX graph (tests/test_residual.py) ---


def plain_add_block(rng):
    """conv-relu, conv-relu, Add of the two activations (no pair), relu, max pool, Gemm head,
    for 8x8 digits."""
    from tests.test_residual import residual_block

    return residual_block(rng, plain=True, name="plainadd")


@pytest.fixture(scope="module")
def residual(data):
    """Imported residual models on digits (W4A3 unless named): a pair block with a conv
    reading the Add's codes, and a plain Add of two activations, global and per-layer."""
    from tests.test_residual import residual_block

    d = data["digits"]
    graphs = {
        "pair": residual_block(np.random.default_rng(3), conv_after=True),
        "plain": plain_add_block(np.random.default_rng(4)),
    }
    out = {}
    for block, proto in graphs.items():
        for scheme in ("global", "per-layer"):
            opts = ImportOptions(calibrate=200, scheme=scheme)
            out[block, scheme] = import_onnx(graph_from_proto(proto, block), d, opts).model
    opts = ImportOptions(calibrate=200, a_bits=8)
    out["pair", "a8"] = import_onnx(graph_from_proto(graphs["pair"], "a8"), d, opts).model
    return out


RES_CASES = [("pair", "global"), ("pair", "per-layer"), ("plain", "global"), ("plain", "per-layer")]


@pytest.mark.parametrize("case", RES_CASES)
def test_residual_float_export_is_the_dequantized_network(residual, data, case):
    """The pair is one Conv of W (no Relu) feeding the Add: float_forward's relu(z) -
    relu(-z) of the two halves, which is z."""
    m, d = residual[case], data["digits"]
    assert m.residual
    proto = export_onnx(m)
    ops = [n.op_type for n in proto.graph.node]
    assert ops.count("Add") == 1 and ops.count("Conv") == sum(
        lay.kind == "conv2d" for lay in m.weight_layers
    )
    x = d.x_test
    logits = run_onnx(proto, d.preprocessing.unit(x))
    ref = float_forward(dequantized(m), x)
    assert np.array_equal(logits.argmax(1), ref.predictions)
    np.testing.assert_allclose(logits, ref.logits, rtol=1e-4, atol=1e-4 * np.abs(ref.logits).max())


@pytest.mark.parametrize("case", [*RES_CASES, ("pair", "a8")])
def test_residual_quantized_export_codes_follow_the_integer_reference(residual, data, case):
    """Every hidden layer's, signed operand's and Add's codes of the QDQ graph against
    integer_forward (a pair's signed code against the difference of its halves), and the
    predictions where cosim's integer logits do not tie."""
    from onnx.reference import ReferenceEvaluator

    from cosim.model.format import AddLayer
    from cosim.model.forward import add_operand

    m, d = residual[case], data["digits"]
    x = d.x_test
    proto = export_onnx(m, quantized=True)
    ref = integer_forward(m, x, keep_codes=True)
    q_layers = [
        i
        for i, lay in enumerate(m.layers)
        if (isinstance(lay, WeightLayer) and lay.is_hidden) or isinstance(lay, AddLayer)
    ]
    # the codes each activation's DequantizeLinear reads (a Clip's or a QuantizeLinear's
    # output), after the input's
    inits = {t.name for t in proto.graph.initializer}
    dqs = [n for n in proto.graph.node if n.op_type == "DequantizeLinear"]
    codes_at = [n.input[0] for n in dqs if n.input[0] not in inits][1:]
    assert len(codes_at) == len(q_layers)
    outs = ReferenceEvaluator(proto).run(
        [*codes_at, "logits"], {"x01": d.preprocessing.unit(x).astype(np.float32)}
    )
    a8 = case[1] == "a8"
    signed = 0
    for i, codes in zip(q_layers, outs[:-1], strict=True):
        want = ref.codes[i]
        nxt = m.layers[i + 1]
        if isinstance(nxt, AddLayer) and nxt.pair:
            assert codes.dtype == (np.int16 if a8 else np.int8)
            want = add_operand(nxt, want)
            signed += 1
        else:
            assert codes.dtype == np.uint8
        # float32 sums near a half, and (8 bits) the tie correction's lift of t * 1.5e-5
        # steps at codes t up to 255 (module doc of onnx_export), and what later layers inherit
        assert np.mean(codes.astype(np.int64) != want) < (1e-2 if a8 else 1e-3), f"layer {i}"
    assert signed == (case[0] == "pair")
    assert proto.opset_import[0].version == (21 if a8 else 19)
    top2 = np.sort(ref.codes[-1], axis=1)[:, -2:]
    untied = top2[:, 1] > top2[:, 0]
    assert untied.mean() > 0.9
    assert np.mean(outs[-1].argmax(1)[untied] == ref.predictions[untied]) > 0.99


@pytest.mark.parametrize("quantized", [False, True])
@pytest.mark.parametrize("case", [*RES_CASES, ("pair", "a8")])
def test_residual_round_trip_keeps_grids_levels_and_predictions(residual, data, case, quantized):
    from dataclasses import asdict

    from cosim.model.format import AddLayer

    m, d = residual[case], data["digits"]
    out = import_onnx(graph_from_proto(export_onnx(m, quantized=quantized), "rt"), d,
                      ImportOptions())  # fmt: skip
    got = out.model
    assert out.report["calibration"]["method"] == "graph"
    assert got.scheme == m.scheme and len(got.layers) == len(m.layers)
    for a, b in zip(got.layers, m.layers, strict=True):
        assert a.geometry() == b.geometry()
        if isinstance(a, WeightLayer):
            assert isinstance(b, WeightLayer)
            assert np.array_equal(a.n_w, b.n_w) and np.array_equal(a.n_b, b.n_b)
            assert (a.w_grid, a.in_grid, a.out_grid, a.b_grid) == (
                b.w_grid, b.in_grid, b.out_grid, b.b_grid
            )  # fmt: skip
        elif isinstance(a, AddLayer):
            assert isinstance(b, AddLayer) and asdict(a.out_grid) == asdict(b.out_grid)
    assert np.array_equal(
        integer_forward(got, d.x_test).predictions, integer_forward(m, d.x_test).predictions
    )


def test_residual_export_without_metadata_or_edited_is_calibrated_anew(residual, data):
    m, d = residual["pair", "per-layer"], data["digits"]
    proto = export_onnx(m)
    del proto.metadata_props[:]
    out = import_onnx(graph_from_proto(proto, "stripped"), d, ImportOptions(calibrate=200))
    assert out.report["calibration"]["method"] == "mse"
    assert out.report["residual_adds"] == 1 and out.model.residual
    assert not any("cosim export" in n for n in out.report["notes"])
    edited = export_onnx(m)
    w = next(t for t in edited.graph.initializer if t.name.startswith("L2_w"))
    arr = onnx.numpy_helper.to_array(w).copy()
    arr.flat[0] += 0.3 * float(np.abs(arr).max())
    w.CopyFrom(onnx.numpy_helper.from_array(arr, w.name))
    out = import_onnx(graph_from_proto(edited, "edited"), d, ImportOptions(calibrate=200))
    assert out.report["calibration"]["method"] == "mse"
    assert any("calibrated anew" in n and "off the exported grid" in n
               for n in out.report["notes"])  # fmt: skip


def test_cli_exports_a_residual_model(residual, tmp_path, capsys):
    src = tmp_path / "res.npz"
    save_model(residual["pair", "global"], src)
    out = tmp_path / "res.onnx"
    assert main(["export", str(src), "--out", str(out), "--quantized"]) == 0
    assert "quantized (QDQ)" in capsys.readouterr().out
    ops = [n.op_type for n in onnx.load(str(out)).graph.node]
    assert ops.count("Add") == 1 and "Relu" in ops[ops.index("Add") + 1 :]
