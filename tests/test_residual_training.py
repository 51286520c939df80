"""Quantization-aware training of residual graphs: the trainer's Add and signed pair
activation against finite differences, the fine-tuned model's integer reference against the
trainer's quantized forward (bit-exact codes), and the recovery of a residual MLP imported
at global W4A3 (``cosim import --finetune``)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from cosim import model as mf
from cosim.model import integer_forward
from cosim.train.export import batch_inputs
from cosim.train.importer import ImportOptions, import_onnx
from cosim.train.layers import (
    ActQuant,
    Add,
    AvgPool2D,
    Conv2D,
    Dense,
    Flatten,
    SignedAct,
    WeightLayer,
    softmax_xent,
)
from cosim.train.network import Network
from cosim.train.onnx_graph import graph_from_proto
from cosim.train.residual_import import network_from_model
from cosim.train.scheme import Scheme

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def digits():
    from cosim.datasets import load_dataset

    return load_dataset("digits")


def _mlp(rng):
    """Two pair Adds sharing a skip source, an Add reading an Add, a plain (non-pair) Add."""
    d1, d2, d3, d4 = (Dense(6, 8, rng), Dense(8, 8, rng), Dense(8, 8, rng), Dense(8, 8, rng))
    layers = [
        d1, ActQuant(d1),                 # 0, 1: the shared skip source
        d2, SignedAct(d2), Add(1, True),  # 2, 3, 4
        d3, SignedAct(d3), Add(4, True),  # 5, 6, 7: skip from an Add
        Add(1),                           # 8: activation + the first source again
        d4, ActQuant(d4),                 # 9, 10
        Dense(8, 3, rng),
    ]  # fmt: skip
    return Network(layers, (6,), "test"), rng.standard_normal((5, 6)).astype(np.float32)


def _conv(rng):
    c1, c2 = Conv2D(1, 2, 3, rng, padding=1), Conv2D(2, 2, 3, rng, padding=1)
    layers = [
        c1, ActQuant(c1), c2, SignedAct(c2), Add(1, True), AvgPool2D(2), Flatten(),
        Dense(8, 3, rng),
    ]  # fmt: skip
    return Network(layers, (1, 4, 4), "test"), rng.standard_normal((5, 1, 4, 4)).astype(np.float32)


@pytest.mark.parametrize("build", [_mlp, _conv])
def test_float_gradients_match_finite_differences(build):
    """Float mode: every weight and bias gradient (both operands of each Add, the skip
    operand's accumulated at its source) against central differences of the loss."""
    rng = np.random.default_rng(5)
    net, x = build(rng)
    for lay in net.weight_layers:
        lay.params["b"][:] = rng.standard_normal(lay.n_out).astype(np.float32) * 0.3
    Scheme("float", net, 4, 3).apply(None)
    y = np.arange(len(x)) % 3

    def loss() -> float:
        return softmax_xent(net.forward(x), y)[0]

    logits = net.forward(x, train=True)
    net.backward(softmax_xent(logits, y)[1])
    grads = {(i, k): lay.grads[k].copy() for i, lay in enumerate(net.weight_layers)
             for k in ("W", "b")}  # fmt: skip
    worst = 0.0
    for (i, k), g in grads.items():
        p = net.weight_layers[i].params[k]
        for j in rng.choice(p.size, size=min(p.size, 8), replace=False):
            old = p.flat[j]
            p.flat[j] = old + 1e-3
            up = loss()
            p.flat[j] = old - 1e-3
            down = loss()
            p.flat[j] = old
            fd = (up - down) / 2e-3
            worst = max(worst, abs(fd - g.flat[j]) / max(1e-2, abs(fd)))
    assert worst < 0.02
    # the skip gradients reach the first layer: zeroing the Adds' skip paths changes them
    assert np.abs(grads[(0, "W")]).sum() > 0


def _model_codes(model, x_raw):
    return integer_forward(model, x_raw, keep_codes=True).codes


def _assert_bit_exact(net: Network, model: mf.Model, dataset, scheme: str) -> None:
    """Every code the trainer's quantized forward computes equals the integer reference's
    (a pair's: the difference of its two halves), and so do the logits."""
    _, state = network_from_model(model)
    sch = Scheme(scheme, net, 4, 3, 8, None, model.input_hi)
    sch.load_state(state)
    sch.apply(None)
    x_raw = dataset.x_test[:200]
    outs = net.forward_collect(batch_inputs(dataset, x_raw, sch))
    ref = _model_codes(model, x_raw)
    mi = -1
    checked = 0
    for i, lay in enumerate(net.layers):
        if not isinstance(lay, ActQuant):
            mi += 1
        if isinstance(lay, WeightLayer):
            continue  # an accumulator; its activation (or the head's logits) checked below
        k = np.asarray(ref[mi])
        if isinstance(lay, SignedAct):
            c = k.shape[1] // 2
            k = k[:, :c] - k[:, c:]
        got = outs[i + 1]
        if got.ndim == 4:
            got = got.transpose(0, 3, 1, 2)
        np.testing.assert_array_equal(got, k)
        checked += 1
    assert checked >= 4
    logits = outs[-1] * np.float32(net.head.q.acc_unit)
    r = integer_forward(model, x_raw)
    np.testing.assert_allclose(logits, r.logits, rtol=1e-6, atol=1e-6)
    assert np.array_equal(np.argmax(logits, axis=1), r.predictions)


@pytest.mark.parametrize("scheme", ["global", "per-layer"])
def test_finetuned_model_is_the_trainers_quantized_forward(digits, scheme):
    """``cosim import --finetune`` of a residual conv block (pair, Add, a conv reading the
    Add): the written model's integer reference reproduces the trainer's codes exactly."""
    from .test_residual import residual_block

    g = graph_from_proto(residual_block(np.random.default_rng(3), conv_after=True), "rb")
    imp = import_onnx(g, digits, ImportOptions(scheme=scheme, calibrate=200, finetune=1))
    assert imp.net is not None and imp.model.residual
    assert imp.report["finetune_epochs"] == 1
    assert [lay.kind for lay in imp.model.layers].count("add") == 1
    add = next(lay for lay in imp.model.layers if isinstance(lay, mf.AddLayer))
    assert add.pair
    _assert_bit_exact(imp.net, imp.model, digits, scheme)
    if scheme == "per-layer":  # the Add keeps its own grid, trained by the range control
        assert add.out_grid is not None
        assert len({lay.out_grid.hi for lay in imp.model.hidden_layers} | {add.out_grid.hi}) > 1


def test_ptq_model_round_trips_through_the_trainer(digits):
    """network_from_model + export_model of a PTQ residual model: the same levels and grids."""
    from cosim.train.export import export_model

    from .test_residual import residual_block

    g = graph_from_proto(residual_block(np.random.default_rng(3), conv_after=True), "rb")
    model = import_onnx(g, digits, ImportOptions(scheme="per-layer", calibrate=200)).model
    net, state = network_from_model(model)
    sch = Scheme("per-layer", net, 4, 3, 8, None, model.input_hi)
    sch.load_state(state)
    back = export_model(net, sch, [np.zeros(lay.n_out, bool) for lay in net.hidden], digits)
    assert [lay.geometry() for lay in back.layers] == [lay.geometry() for lay in model.layers]
    for a, b in zip(back.layers, model.layers, strict=True):
        assert getattr(a, "out_grid", None) == getattr(b, "out_grid", None)
        if isinstance(a, mf.WeightLayer):
            assert isinstance(b, mf.WeightLayer)
            assert np.array_equal(a.n_w, b.n_w) and np.array_equal(a.n_b, b.n_b)
            assert (a.w_grid, a.in_grid, a.b_grid) == (b.w_grid, b.in_grid, b.b_grid)
    _assert_bit_exact(net, model, digits, "per-layer")


def test_unipolar_search_on_a_residual_graph_skips_the_pair(digits):
    from .test_residual import residual_block

    g = graph_from_proto(residual_block(np.random.default_rng(3)), "rb")
    imp = import_onnx(g, digits, ImportOptions(calibrate=100, unipolar_fraction=0.5))
    uni = [int(lay.unipolar.sum()) for lay in imp.model.hidden_layers]
    assert uni[0] + uni[1] == 4 and uni[2] == 0  # 8 candidates (the pair's 4 excluded)
    assert imp.report["unipolar_filters"] == 4
    assert abs(imp.report["ptq_accuracy"] - imp.report["test_accuracy"]) < 1e-12


def _bench():
    spec = importlib.util.spec_from_file_location("bench_residual", ROOT / "benchmarks/residual.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_residual_mlp_recovers_with_three_finetuning_epochs(digits):
    """benchmarks/residual.py's residual MLP: global W4A3 post-training quantization loses
    ~19 points (96.1 -> 77.2 %); three epochs of QAT from the imported weights and ranges at
    batch 8 (180 steps an epoch) win all but ~1 back (benchmarks/residual_finetune.py)."""
    from threadpoolctl import threadpool_limits

    bench = _bench()
    x01 = digits.preprocessing.unit(digits.x_train).reshape(len(digits.x_train), -1)
    with threadpool_limits(1, user_api="blas"):  # small GEMMs: 6x faster than threaded here
        params = bench.train_residual_mlp(x01, digits.y_train)
    g = graph_from_proto(bench.to_onnx(params), "res")
    r = import_onnx(g, digits, ImportOptions(scheme="global", finetune=3, batch_size=8)).report
    assert r["float_accuracy"] > 0.95
    assert r["ptq_accuracy"] < r["float_accuracy"] - 0.10
    assert r["finetune_accuracy"] > r["ptq_accuracy"] + 0.10
    assert r["finetune_accuracy"] > r["float_accuracy"] - 0.04
    assert r["test_accuracy"] == r["finetune_accuracy"]


def test_cli_import_finetunes_a_residual_graph(digits, tmp_path):
    """``cosim import residual.onnx --finetune 1``: the report and the written model agree."""
    import contextlib
    import io
    import json

    import onnx

    from cosim.cli import main
    from cosim.model import load_model

    from .test_residual import residual_block

    src, dst, rep = tmp_path / "res.onnx", tmp_path / "res.npz", tmp_path / "res.json"
    onnx.save(residual_block(np.random.default_rng(3)), str(src))
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(["import", str(src), "--dataset", "digits", "--out", str(dst), "--calibrate",
                   "200", "--finetune", "1", "--batch-size", "32", "--json", str(rep)])  # fmt: skip
    assert rc == 0, err.getvalue()
    assert "fine-tuning epochs" in err.getvalue()
    r = json.loads(rep.read_text())
    model = load_model(dst)
    assert model.residual and model.architecture == "onnx:resblock"
    assert r["finetune_epochs"] == 1 and model.info["import"]["batch_size"] == 32
    acc = float(np.mean(integer_forward(model, digits.x_test).predictions == digits.y_test))
    assert r["test_accuracy"] == r["finetune_accuracy"] == acc
