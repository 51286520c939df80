"""``cosim import``: ONNX graphs built here with onnx.helper (no deep-learning framework).

Every supported operator is checked three ways on random inputs: the importer's NumPy
evaluator against ``onnx.reference.ReferenceEvaluator`` (an independent evaluator that ships
with onnx), and the converted cosim network (float) against both. Networks trained here with
NumPy on the bundled digits are imported end to end: the quantized model (integer reference)
stays within a few points of the graph's float accuracy, loads with ``load_model`` and runs in
``cosim evaluate --ideal``.
"""

from __future__ import annotations

import itertools
import json
import re

import numpy as np
import onnx  # the dev extra installs it (pip install -e '.[dev]')
import pytest
from onnx import TensorProto
from onnx import helper as oh
from onnx import numpy_helper as nh
from onnx.reference import ReferenceEvaluator

from cosim.errors import OnnxImportError
from cosim.train.layers import LayerQuant
from cosim.train.onnx_graph import (
    build_imported,
    convert,
    graph_from_proto,
    input_affine,
    run_graph,
)

HI = 2.0  # the input range the cosim network is built for (x = x01 * HI)


# ------------------------------------------------------------------------------ helpers
def _t(name, a, dtype=np.float32):
    return nh.from_array(np.asarray(a, dtype=dtype), name)


def _i64(name, a):
    return nh.from_array(np.asarray(a, dtype=np.int64), name)


def make_model(nodes, inits, in_shape, n_out, name="t", opset=17, check=True):
    """A checked ModelProto with input ``x`` of shape ``(N,) + in_shape`` and output ``y``."""
    g = oh.make_graph(
        nodes,
        name,
        [oh.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *in_shape])],
        [oh.make_tensor_value_info("y", TensorProto.FLOAT, ["N", n_out])],
        inits,
    )
    m = oh.make_model(g, opset_imports=[oh.make_opsetid("", opset)])
    if check:
        onnx.checker.check_model(m)
    return m


def flatten_chain(src, dst):
    """The Shape/Gather/Unsqueeze/Concat/Reshape chain ``x.view(x.size(0), -1)`` exports."""
    nodes = [
        oh.make_node("Shape", [src], [f"{dst}_sh"]),
        oh.make_node("Gather", [f"{dst}_sh", "c_zero"], [f"{dst}_g"], axis=0),
        oh.make_node("Unsqueeze", [f"{dst}_g", "c_ax0"], [f"{dst}_u"]),
        oh.make_node("Concat", [f"{dst}_u", "c_m1"], [f"{dst}_t"], axis=0),
        oh.make_node("Reshape", [src, f"{dst}_t"], [dst]),
    ]
    inits = [_i64("c_zero", 0), _i64("c_ax0", [0]), _i64("c_m1", [-1])]
    return nodes, inits


def _bn(prefix, n, rng):
    return [
        _t(f"{prefix}_s", rng.uniform(0.5, 2.0, n)),
        _t(f"{prefix}_b", rng.standard_normal(n)),
        _t(f"{prefix}_m", rng.standard_normal(n)),
        _t(f"{prefix}_v", rng.uniform(0.5, 2.0, n)),
    ]


def _bn_node(src, dst, prefix):
    return oh.make_node(
        "BatchNormalization",
        [src, f"{prefix}_s", f"{prefix}_b", f"{prefix}_m", f"{prefix}_v"],
        [dst],
        epsilon=1e-3,
    )


def graph_cnn_all_ops(rng):
    """Leading Sub/Div, Conv (stride 2, pad 1) + BN + Relu, MaxPool, Conv + Clip(0, 6),
    AveragePool, Conv, Relu, GlobalAveragePool, Flatten, Gemm (+BN), Relu, MatMul + Add,
    Softmax."""
    nodes = [
        oh.make_node("Sub", ["x", "mean"], ["x1"]),
        oh.make_node("Div", ["x1", "std"], ["x2"]),
        oh.make_node(
            "Conv",
            ["x2", "W1", "b1"],
            ["c1"],
            strides=[2, 2],
            pads=[1, 1, 1, 1],
            kernel_shape=[3, 3],
            name="conv1",
        ),
        _bn_node("c1", "c1n", "bn1"),
        oh.make_node("Relu", ["c1n"], ["r1"]),
        oh.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
        oh.make_node("Conv", ["p1", "W2"], ["c2"], pads=[1, 1, 1, 1], name="conv2"),
        oh.make_node("Clip", ["c2", "zero", "six"], ["r2"]),
        oh.make_node("AveragePool", ["r2"], ["p2"], kernel_shape=[2, 2], strides=[2, 2]),
        oh.make_node("Conv", ["p2", "W3", "b3"], ["c3"], name="conv3"),
        oh.make_node("Relu", ["c3"], ["r3"]),
        oh.make_node("GlobalAveragePool", ["r3"], ["gp"]),
        oh.make_node("Flatten", ["gp"], ["f"]),
        oh.make_node("Gemm", ["f", "W4", "b4"], ["d4"], transB=1, alpha=0.5, beta=2.0),
        _bn_node("d4", "d4n", "bn4"),
        oh.make_node("Relu", ["d4n"], ["r4"]),
        oh.make_node("Dropout", ["r4"], ["r4d"]),
        oh.make_node("MatMul", ["r4d", "W5"], ["d5"]),
        oh.make_node("Add", ["d5", "b5"], ["d5b"]),
        oh.make_node("Softmax", ["d5b"], ["y"], axis=1),
    ]
    inits = [
        _t("mean", np.full((1, 2, 1, 1), 0.25)),
        _t("std", np.array([0.5, 0.25]).reshape(1, 2, 1, 1)),
        _t("W1", rng.standard_normal((6, 2, 3, 3)) * 0.5),
        _t("b1", rng.standard_normal(6) * 0.1),
        *_bn("bn1", 6, rng),
        _t("W2", rng.standard_normal((8, 6, 3, 3)) * 0.3),
        _t("zero", 0.0),
        _t("six", 6.0),
        _t("W3", rng.standard_normal((8, 8, 1, 1)) * 0.5),
        _t("b3", rng.standard_normal(8) * 0.1),
        _t("W4", rng.standard_normal((12, 8)) * 0.5),
        _t("b4", rng.standard_normal(12) * 0.1),
        *_bn("bn4", 12, rng),
        _t("W5", rng.standard_normal((12, 5)) * 0.5),
        _t("b5", rng.standard_normal(5) * 0.1),
    ]
    return make_model(nodes, inits, (2, 16, 16), 5), (2, 16, 16)


def graph_mlp_chain(rng):
    """Leading Mul/Add, a Shape-chain flatten, Gemm (transB=0), Relu, Identity, Gemm."""
    fl, fl_inits = flatten_chain("x2", "f")
    nodes = [
        oh.make_node("Mul", ["x", "scale"], ["x1"]),
        oh.make_node("Add", ["x1", "shift"], ["x2"]),
        *fl,
        oh.make_node("Gemm", ["f", "W1", "b1"], ["d1"]),
        oh.make_node("Relu", ["d1"], ["r1"]),
        oh.make_node("Identity", ["r1"], ["r1i"]),
        oh.make_node("Gemm", ["r1i", "W2", "b2"], ["y"], transB=1),
    ]
    inits = [
        _t("scale", 3.0),
        _t("shift", -1.0),
        *fl_inits,
        _t("W1", rng.standard_normal((64, 20)) * 0.3),
        _t("b1", rng.standard_normal(20) * 0.1),
        _t("W2", rng.standard_normal((10, 20)) * 0.3),
        _t("b2", rng.standard_normal(10) * 0.1),
    ]
    return make_model(nodes, inits, (1, 8, 8), 10), (1, 8, 8)


def graph_conv_maxpool_relu(rng):
    """Conv, MaxPool before Relu (they commute), constant Reshape to (N, -1), Squeeze-free
    head; and a Relu after a Relu."""
    nodes = [
        oh.make_node("Conv", ["x", "W1", "b1"], ["c1"], name="conv1"),
        oh.make_node("MaxPool", ["c1"], ["p1"], kernel_shape=[3, 3], strides=[3, 3]),
        oh.make_node("Relu", ["p1"], ["r1"]),
        oh.make_node("Relu", ["r1"], ["r1b"]),
        oh.make_node("Reshape", ["r1b", "shape"], ["f"]),
        oh.make_node("Gemm", ["f", "W2", "b2"], ["y"], transB=1),
    ]
    inits = [
        _t("W1", rng.standard_normal((4, 3, 2, 2))),
        _t("b1", rng.standard_normal(4) * 0.1),
        _i64("shape", [0, -1]),
        _t("W2", rng.standard_normal((7, 4 * 3 * 3))),
        _t("b2", rng.standard_normal(7)),
    ]
    return make_model(nodes, inits, (3, 10, 10), 7), (3, 10, 10)


def graph_gap_squeeze(rng):
    """GlobalAveragePool then Squeeze(axes 2, 3), MatMul without bias as the head."""
    nodes = [
        oh.make_node("Conv", ["x", "W1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        oh.make_node("Relu", ["c1"], ["r1"]),
        oh.make_node("GlobalAveragePool", ["r1"], ["gp"]),
        oh.make_node("Squeeze", ["gp", "axes"], ["f"]),
        oh.make_node("MatMul", ["f", "W2"], ["y"]),
    ]
    inits = [
        _t("W1", rng.standard_normal((5, 1, 3, 3))),
        _t("b1", rng.standard_normal(5) * 0.1),
        _i64("axes", [2, 3]),
        _t("W2", rng.standard_normal((5, 3))),
    ]
    return make_model(nodes, inits, (1, 6, 6), 3), (1, 6, 6)


GRAPHS = {
    "cnn_all_ops": graph_cnn_all_ops,
    "mlp_shape_chain": graph_mlp_chain,
    "maxpool_before_relu": graph_conv_maxpool_relu,
    "gap_squeeze": graph_gap_squeeze,
}


def _cosim_float(conv, x01):
    """The converted network's float logits on x01 inputs (x = x01 * HI)."""
    alpha, beta = input_affine(conv, None, None)
    net, _ = build_imported(conv, alpha, beta, HI)
    for lay in net.weight_layers:
        lay.q = LayerQuant()
    return net.forward((x01 * HI).astype(np.float32))


# ------------------------------------------------------------------------------ operators
@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_evaluator_matches_onnx_reference(name):
    rng = np.random.default_rng(1)
    model, shape = GRAPHS[name](rng)
    x = rng.uniform(0, 1, (6, *shape)).astype(np.float32)
    ref = ReferenceEvaluator(model).run(None, {"x": x})[0]
    ours = run_graph(graph_from_proto(model), x)
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_converted_network_computes_the_graph(name):
    """The cosim network (BN, normalization and biases folded) gives the graph's logits;
    where the graph ends in Softmax, its arg-max. Padding-free first layers are exact."""
    rng = np.random.default_rng(2)
    model, shape = GRAPHS[name](rng)
    g = graph_from_proto(model)
    conv = convert(g, shape)
    assert "BatchNormalization" not in {s.kind for s in conv.specs}
    x = rng.uniform(0, 1, (8, *shape)).astype(np.float32)
    ref = run_graph(g, x)
    ours = _cosim_float(conv, x)
    if name == "cnn_all_ops":
        # a padded first conv with an input offset: exact away from the border only, and the
        # float cosim network has no ReLU6 clip (the ADC range supplies it when quantized);
        # compare the pre-softmax logits of a graph whose offset is 0 instead
        assert any("border" in n for n in conv.notes)
        assert conv.specs[0].kind == "conv" and conv.specs[0].stride == 2
        assert [s.cap for s in conv.specs if s.kind == "act"] == [None, 6.0, None, None]
        return
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-4)


def test_cnn_all_ops_is_exact_without_an_offset():
    """The all-operator CNN with mean 0 (no border effect) and a clip that never acts (the
    float cosim network has no clip; the quantized one takes it from the ADC range): the
    cosim network's softmax equals the graph's output."""
    rng = np.random.default_rng(3)
    model, shape = graph_cnn_all_ops(rng)
    for t in model.graph.initializer:
        if t.name == "mean":
            t.CopyFrom(_t("mean", np.zeros((1, 2, 1, 1))))
        if t.name == "six":  # Clip(0, 1000): never clips these activations
            t.CopyFrom(_t("six", 1000.0))
    g = graph_from_proto(model)
    conv = convert(g, shape)
    assert not conv.notes or all("border" not in n for n in conv.notes)
    x = rng.uniform(0, 1, (8, *shape)).astype(np.float32)
    ref = ReferenceEvaluator(model).run(None, {"x": x})[0]
    logits = _cosim_float(conv, x).astype(np.float64)
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    inner = run_graph(g, x)
    assert np.all(inner >= 0) and np.allclose(inner.sum(axis=1), 1)
    np.testing.assert_allclose(p, ref, rtol=1e-3, atol=1e-4)


def test_batch_norm_is_folded_into_the_weights():
    rng = np.random.default_rng(4)
    model, shape = graph_cnn_all_ops(rng)
    conv = convert(graph_from_proto(model), shape)
    kinds = [s.kind for s in conv.specs]
    assert kinds == [
        "conv", "act", "maxpool", "conv", "act", "avgpool", "conv", "act", "avgpool",
        "flatten", "dense", "act", "dense",
    ]  # fmt: skip
    # conv1's folded weights are W * scale / sqrt(var + eps) per output channel
    init = {t.name: nh.to_array(t).astype(np.float64) for t in model.graph.initializer}
    s = init["bn1_s"] / np.sqrt(init["bn1_v"] + 1e-3)
    np.testing.assert_allclose(conv.specs[0].w, init["W1"] * s[:, None, None, None], rtol=1e-6)
    np.testing.assert_allclose(
        conv.specs[0].b, (init["b1"] - init["bn1_m"]) * s + init["bn1_b"], rtol=1e-6
    )


def test_leading_normalization_and_input_flags_fold_into_the_first_layer():
    """--input-mean/--input-std and the graph's own Mul/Add compose: the cosim network on x01
    equals the graph on (x01 - mean) / std."""
    rng = np.random.default_rng(5)
    model, shape = graph_mlp_chain(rng)
    g = graph_from_proto(model)
    conv = convert(g, shape)
    assert conv.alpha is not None and np.allclose(conv.alpha, 3.0)
    assert np.allclose(conv.beta, -1.0)
    alpha, beta = input_affine(conv, [0.2], [0.4])
    net, _ = build_imported(conv, alpha, beta, HI)
    for lay in net.weight_layers:
        lay.q = LayerQuant()
    x01 = rng.uniform(0, 1, (5, *shape)).astype(np.float32)
    ref = ReferenceEvaluator(model).run(None, {"x": (x01 - 0.2) / 0.4})[0]
    np.testing.assert_allclose(net.forward(x01 * HI), ref, rtol=1e-4, atol=1e-4)
    with pytest.raises(OnnxImportError, match="--input-mean has 2 values"):
        input_affine(conv, [0.1, 0.2], None)


# ------------------------------------------------------------------------------ errors
def _expect_error(nodes, inits, shape, n_out, match):
    model = make_model(nodes, inits, shape, n_out)
    with pytest.raises(OnnxImportError, match=match):
        convert(graph_from_proto(model), shape)


def test_an_unsupported_operator_is_named_with_the_supported_list():
    rng = np.random.default_rng(6)
    nodes = [
        oh.make_node("Flatten", ["x"], ["f"]),
        oh.make_node("Gemm", ["f", "W1"], ["d1"], transB=1),
        oh.make_node("Sigmoid", ["d1"], ["s1"], name="gate"),
        oh.make_node("Gemm", ["s1", "W2"], ["y"], transB=1),
    ]
    inits = [_t("W1", rng.standard_normal((4, 16))), _t("W2", rng.standard_normal((3, 4)))]
    match = r"node 'gate' \(Sigmoid\) is not supported.*supported operators: Conv, Gemm"
    _expect_error(nodes, inits, (1, 4, 4), 3, match)


def test_a_residual_add_without_a_relu_after_it_is_refused():
    """(Residual blocks themselves: tests/test_residual.py.)"""
    rng = np.random.default_rng(7)
    nodes = [
        oh.make_node("Conv", ["x", "W1"], ["c1"], pads=[1, 1, 1, 1]),
        oh.make_node("Relu", ["c1"], ["r1"]),
        oh.make_node("Conv", ["r1", "W2"], ["c2"], pads=[1, 1, 1, 1]),
        oh.make_node("Add", ["c2", "r1"], ["s"], name="skip"),
        oh.make_node("Flatten", ["s"], ["f"]),
        oh.make_node("Gemm", ["f", "W3"], ["y"], transB=1),
    ]
    inits = [
        _t("W1", rng.standard_normal((2, 1, 3, 3))),
        _t("W2", rng.standard_normal((2, 2, 3, 3))),
        _t("W3", rng.standard_normal((3, 32))),
    ]
    _expect_error(nodes, inits, (1, 4, 4), 3,
                  r"the residual Add node 'skip' is not followed by a ReLU")  # fmt: skip


@pytest.mark.parametrize(
    ("node", "match"),
    [
        (oh.make_node("Conv", ["x", "W1"], ["c1"], group=2, name="g"), "grouped"),
        (oh.make_node("Conv", ["x", "W1"], ["c1"], pads=[1, 0, 1, 0], name="a"), "asymmetric"),
        (oh.make_node("Conv", ["x", "W1"], ["c1"], strides=[1, 2], name="s"), "not square"),
    ],
)
def test_convolutions_cosim_cannot_run_are_refused(node, match):
    rng = np.random.default_rng(8)
    w_in = 1 if "group" in str(node.attribute) else 2
    nodes = [
        node,
        oh.make_node("Relu", ["c1"], ["r1"]),
        oh.make_node("Flatten", ["r1"], ["f"]),
        oh.make_node("Gemm", ["f", "W2"], ["y"], transB=1),
    ]
    inits = [
        _t("W1", rng.standard_normal((2, w_in, 3, 3))),
        _t("W2", rng.standard_normal((3, 32))),
    ]
    g = graph_from_proto(make_model(nodes, inits, (2, 6, 6), 3, check=False))
    with pytest.raises(OnnxImportError, match=match):
        convert(g, (2, 6, 6))


def test_overlapping_pools_and_linear_hidden_layers_are_refused():
    rng = np.random.default_rng(9)
    w1 = _t("W1", rng.standard_normal((2, 1, 3, 3)))
    base = [oh.make_node("Conv", ["x", "W1"], ["c1"]), oh.make_node("Relu", ["c1"], ["r1"])]
    nodes = [
        *base,
        oh.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[1, 1], name="mp"),
        oh.make_node("Flatten", ["p1"], ["f"]),
        oh.make_node("Gemm", ["f", "W2"], ["y"], transB=1),
    ]
    _expect_error(nodes, [w1, _t("W2", rng.standard_normal((3, 18)))], (1, 6, 6), 3,
                  r"node 'mp' \(MaxPool\): stride 1 differs from the kernel 2")  # fmt: skip
    nodes = [
        oh.make_node("Flatten", ["x"], ["f"]),
        oh.make_node("Gemm", ["f", "Wa"], ["d1"], transB=1, name="lin"),
        oh.make_node("Gemm", ["d1", "Wb"], ["y"], transB=1),
    ]
    _expect_error(nodes, [_t("Wa", rng.standard_normal((4, 36))),
                          _t("Wb", rng.standard_normal((3, 4)))], (1, 6, 6), 3,
                  "hidden layer node 'lin' is not followed by a ReLU")  # fmt: skip


def test_wrong_input_shape_is_refused():
    model, _ = graph_mlp_chain(np.random.default_rng(10))
    with pytest.raises(OnnxImportError, match=r"takes samples of shape \(1, 8, 8\)"):
        convert(graph_from_proto(model), (1, 28, 28))


# ------------------------------------------------------------------------------ end to end
def _adam_train(feats, y, sizes, rng, epochs=40, lr=3e-3, batch=64):
    """A plain NumPy ReLU MLP (softmax cross-entropy, Adam): ``[(W (in, out), b), ...]``."""
    params = [
        [rng.standard_normal((a, b)) * np.sqrt(2.0 / a), np.zeros(b)]
        for a, b in itertools.pairwise(sizes)
    ]
    m = [[np.zeros_like(p) for p in layer] for layer in params]
    v = [[np.zeros_like(p) for p in layer] for layer in params]
    t = 0
    for _ in range(epochs):
        perm = rng.permutation(len(y))
        for s in range(0, len(y), batch):
            idx = perm[s : s + batch]
            acts = [feats[idx]]
            for i, (W, b) in enumerate(params):
                z = acts[-1] @ W + b
                acts.append(np.maximum(z, 0) if i < len(params) - 1 else z)
            p = np.exp(acts[-1] - acts[-1].max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            p[np.arange(len(idx)), y[idx]] -= 1
            d = p / len(idx)
            t += 1
            for i in range(len(params) - 1, -1, -1):
                W = params[i][0]
                grads = [acts[i].T @ d, d.sum(axis=0)]
                d = (d @ W.T) * (acts[i] > 0)
                for j, g in enumerate(grads):
                    m[i][j] = 0.9 * m[i][j] + 0.1 * g
                    v[i][j] = 0.999 * v[i][j] + 0.001 * g * g
                    mh, vh = m[i][j] / (1 - 0.9**t), v[i][j] / (1 - 0.999**t)
                    params[i][j] -= lr * mh / (np.sqrt(vh) + 1e-8)
    return params


@pytest.fixture(scope="module")
def digits():
    from cosim.datasets import load_dataset

    return load_dataset("digits")


@pytest.fixture(scope="module")
def mlp_onnx(digits):
    """A 64-48-24-10 MLP trained with NumPy on digits, as an ONNX graph (Flatten, Gemm,
    Relu, MatMul + Add, BatchNormalization folded after a Gemm)."""
    rng = np.random.default_rng(0)
    x = digits.preprocessing.unit(digits.x_train).reshape(len(digits.x_train), -1)
    (W1, b1), (W2, b2), (W3, b3) = _adam_train(x, digits.y_train, (64, 48, 24, 10), rng)
    # an identity-preserving batch norm after the second layer: the fold must be exact
    gam, bet = rng.uniform(0.5, 2.0, 24), rng.standard_normal(24) * 0.1
    mu, var = rng.standard_normal(24) * 0.1, rng.uniform(0.5, 2.0, 24)
    s = gam / np.sqrt(var + 1e-5)
    W2b, b2b = W2 / s, (b2 - bet) / s + mu  # BN(x W2b + b2b) == x W2 + b2
    nodes = [
        oh.make_node("Flatten", ["x"], ["f"]),
        oh.make_node("Gemm", ["f", "W1", "b1"], ["d1"]),
        oh.make_node("Relu", ["d1"], ["r1"]),
        oh.make_node("Gemm", ["r1", "W2", "b2"], ["d2"]),
        oh.make_node("BatchNormalization", ["d2", "g", "be", "mu", "var"], ["d2n"]),
        oh.make_node("Relu", ["d2n"], ["r2"]),
        oh.make_node("MatMul", ["r2", "W3"], ["d3"]),
        oh.make_node("Add", ["d3", "b3"], ["y"]),
    ]
    inits = [_t("W1", W1), _t("b1", b1), _t("W2", W2b), _t("b2", b2b), _t("g", gam),
             _t("be", bet), _t("mu", mu), _t("var", var), _t("W3", W3), _t("b3", b3)]  # fmt: skip
    return make_model(nodes, inits, (1, 8, 8), 10, name="digits_mlp")


@pytest.fixture(scope="module")
def cnn_onnx(digits):
    """A CNN on digits trained on normalized inputs ((x01 - 0.3) / 0.4): a fixed random
    3x3 convolution (8 filters) + batch norm, ReLU, 2x2 max pool, a Shape-chain flatten and
    a 72-32-10 head trained with NumPy."""
    rng = np.random.default_rng(1)
    wc = rng.standard_normal((8, 1, 3, 3)) * 0.6
    bc = rng.standard_normal(8) * 0.1
    bn = [rng.uniform(0.5, 1.5, 8), rng.standard_normal(8) * 0.1,
          rng.standard_normal(8) * 0.1, rng.uniform(0.5, 1.5, 8)]  # fmt: skip
    fl, fl_inits = flatten_chain("p1", "f")
    front = [
        oh.make_node("Conv", ["x", "Wc", "bc"], ["c1"], name="conv1"),
        oh.make_node("BatchNormalization", ["c1", "g", "be", "mu", "var"], ["c1n"]),
        oh.make_node("Relu", ["c1n"], ["r1"]),
        oh.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
        *fl,
    ]
    f_inits = [_t("Wc", wc), _t("bc", bc), _t("g", bn[0]), _t("be", bn[1]), _t("mu", bn[2]),
               _t("var", bn[3]), *fl_inits]  # fmt: skip
    feat_model = make_model([*front[:4], oh.make_node("Flatten", ["p1"], ["y"])],
                            f_inits[:6], (1, 8, 8), 72)  # fmt: skip
    xn = (digits.preprocessing.unit(digits.x_train) - 0.3) / 0.4
    feats = run_graph(graph_from_proto(feat_model), xn)
    (W1, b1), (W2, b2) = _adam_train(feats, digits.y_train, (72, 32, 10), rng, epochs=60)
    nodes = [
        *front,
        oh.make_node("Gemm", ["f", "W1", "b1"], ["d1"]),
        oh.make_node("Relu", ["d1"], ["r2"]),
        oh.make_node("Gemm", ["r2", "W2", "b2"], ["y"]),
    ]
    inits = [*f_inits, _t("W1", W1), _t("b1", b1), _t("W2", W2), _t("b2", b2)]
    return make_model(nodes, inits, (1, 8, 8), 10, name="digits_cnn")


def test_mlp_post_training_quantization_keeps_its_accuracy(digits, mlp_onnx):
    """Global W4A3: the integer reference within 3 points of the graph's float accuracy;
    the MSE-optimal ranges at least as good as naive min/max ranges (one seed)."""
    from cosim.train.importer import ImportOptions, import_onnx

    g = graph_from_proto(mlp_onnx, "digits_mlp")
    res = {}
    for scheme in ("global", "per-layer"):
        for method in ("mse", "minmax"):
            out = import_onnx(g, digits, ImportOptions(scheme=scheme, method=method))
            res[scheme, method] = out.report
    fl = res["global", "mse"]["float_accuracy"]
    assert fl > 0.93
    for (scheme, method), r in res.items():
        assert r["float_accuracy"] == fl
        assert r["test_accuracy"] == r["ptq_accuracy"]
        if method == "mse":
            assert r["ptq_accuracy"] >= fl - 0.03, (scheme, r["ptq_accuracy"], fl)
    assert res["global", "mse"]["ptq_accuracy"] >= res["global", "minmax"]["ptq_accuracy"]
    # the global scheme shares one w_max; per-layer has one per layer
    assert len(set(res["global", "mse"]["calibration"]["w_max"])) == 1
    assert len(set(res["per-layer", "mse"]["calibration"]["w_max"])) == 3


def test_cnn_with_input_normalization_imports_and_fine_tunes(digits, cnn_onnx):
    """--input-mean/--input-std fold into the (unpadded) first convolution exactly: the
    imported float network agrees with the graph; W8A3 global post-training quantization is
    within a point; at W4A3 two epochs of cosim's QAT from the imported weights come within
    4 points of the float graph."""
    from cosim.train.export import batch_inputs
    from cosim.train.importer import ImportOptions, import_onnx
    from cosim.train.scheme import Scheme

    g = graph_from_proto(cnn_onnx, "digits_cnn")
    conv = convert(g, (1, 8, 8))
    alpha, beta = input_affine(conv, [0.3], [0.4])
    net, _ = build_imported(conv, alpha, beta, HI)
    fs = Scheme("float", net, 4, 3)
    fs.apply(None)
    logits = net.forward(batch_inputs(digits, digits.x_test, fs))
    ref = run_graph(g, (digits.preprocessing.unit(digits.x_test) - 0.3) / 0.4)
    np.testing.assert_allclose(logits, ref, rtol=1e-3, atol=1e-3)

    norm = {"input_mean": (0.3,), "input_std": (0.4,), "calibrate": 256}
    r8 = import_onnx(g, digits, ImportOptions(w_bits=8, a_bits=3, **norm)).report
    assert r8["float_accuracy"] > 0.9
    assert r8["ptq_accuracy"] >= r8["float_accuracy"] - 0.01
    assert r8["layers"] == ["conv", "act", "maxpool", "flatten", "dense", "act", "dense"]
    # 4-bit weights hurt the 9-tap random filters after training (post-training quantization
    # loses several points); cosim's QAT from the imported weights wins them back
    r4 = import_onnx(g, digits, ImportOptions(w_bits=4, a_bits=3, finetune=2, **norm)).report
    assert r4["finetune_accuracy"] >= r4["float_accuracy"] - 0.04
    assert r4["finetune_accuracy"] > r4["ptq_accuracy"]
    assert r4["test_accuracy"] == r4["finetune_accuracy"]


def test_cli_import_writes_a_model_that_evaluate_runs(digits, mlp_onnx, committed_library,
                                                      tmp_path):  # fmt: skip
    """``cosim import`` writes a model file and a JSON report; the file loads with
    load_model and ``cosim evaluate --ideal`` reproduces the integer reference."""
    import contextlib
    import io

    from cosim.cli import main
    from cosim.model import integer_forward, load_model

    src = tmp_path / "mlp.onnx"
    onnx.save(mlp_onnx, str(src))
    model_path, rep_path = tmp_path / "mlp.npz", tmp_path / "mlp.json"
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(["import", str(src), "--dataset", "digits", "--out", str(model_path),
                   "--scheme", "global", "--w-bits", "4", "--a-bits", "3", "--calibrate", "300",
                   "--json", str(rep_path)])  # fmt: skip
    assert rc == 0, err.getvalue()
    assert "post-training quantized" in out.getvalue()
    rep = json.loads(rep_path.read_text())
    model = load_model(model_path)
    assert model.scheme == "global" and model.architecture == "onnx:digits_mlp"
    ref = integer_forward(model, digits.x_test).predictions
    assert rep["test_accuracy"] == float(np.mean(ref == digits.y_test))

    ev_path = tmp_path / "ev.json"
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        rc = main(["evaluate", "--model", str(model_path), "--library",
                   str(committed_library.path), "--ideal", "--json", str(ev_path)])  # fmt: skip
    assert rc == 0, err.getvalue()
    ev = json.loads(ev_path.read_text())["evaluation"]
    assert ev["accuracy_mean"] == rep["test_accuracy"]


@pytest.mark.parametrize(
    ("case", "extra", "match"),
    [
        ("garbage", [], "is not a readable ONNX model"),
        ("missing", [], "does not exist"),
        ("residual", [], "the skip operand 'f' is not an activation"),
        ("nan", [], "hold NaN or inf"),
        ("mlp", ["--input-mean", "nan"], "not finite"),
        ("mlp", ["--input-mean", "0.1,0.2,0.3"], "--input-mean has 3 values"),
        ("mlp", ["--input-std", "0"], "--input-std must not be 0"),
        ("mlp", ["--dataset", "digits28"], r"takes samples of shape \(1, 8, 8\)"),
        ("mlp", ["--w-bits", "9"], "w-bits"),
        ("mlp", ["--out", "."], "names a directory"),
        ("mlp", ["--out", "@foreign"], "is not a model file that cosim wrote"),
    ],
)
def test_cli_errors_are_one_line(tmp_path, case, extra, match):
    """Bad files, graphs and flags: exit 2, one line naming the problem, nothing written."""
    import contextlib
    import io

    from cosim.cli import main

    rng = np.random.default_rng(12)
    src = tmp_path / "net.onnx"
    if case == "garbage":
        src.write_bytes(b"not a protobuf at all")
    elif case == "residual":
        nodes = [
            oh.make_node("Flatten", ["x"], ["f"]),
            oh.make_node("Gemm", ["f", "W1"], ["d1"], transB=1),
            oh.make_node("Relu", ["d1"], ["r1"]),
            oh.make_node("Add", ["r1", "f"], ["s"]),
            oh.make_node("Gemm", ["s", "W2"], ["y"], transB=1),
        ]
        inits = [_t("W1", rng.standard_normal((64, 64))), _t("W2", rng.standard_normal((10, 64)))]
        onnx.save(make_model(nodes, inits, (1, 8, 8), 10), str(src))
    elif case in ("mlp", "nan"):
        model, _ = graph_mlp_chain(rng)
        if case == "nan":
            for t in model.graph.initializer:
                if t.name == "W1":
                    t.CopyFrom(_t("W1", np.full((64, 20), np.nan)))
        onnx.save(model, str(src))
    foreign = tmp_path / "notes.txt"
    foreign.write_text("mine")
    argv = ["import", str(src), "--dataset", "digits", "--out", str(tmp_path / "m.npz")]
    argv += [str(foreign) if e == "@foreign" else e for e in extra]
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = main(argv)
    text = err.getvalue()
    assert rc == 2, text
    assert len(text.strip().splitlines()) == 1, text
    assert re.search(match, text), text
    assert not (tmp_path / "m.npz").exists()
    assert foreign.read_text() == "mine"


def test_relu6_caps_the_activation_range_and_unipolar_filters_are_non_negative(digits):
    """Clip(0, m) caps the calibrated range at m (top code = m); --unipolar-fraction makes
    that fraction of hidden filters unipolar, their deployed weights all >= 0."""
    from cosim.train.importer import ImportOptions, import_onnx

    rng = np.random.default_rng(11)
    nodes = [
        oh.make_node("Flatten", ["x"], ["f"]),
        oh.make_node("Gemm", ["f", "W1", "b1"], ["d1"], transB=1),
        oh.make_node("Clip", ["d1", "lo", "hi"], ["r1"]),
        oh.make_node("Gemm", ["r1", "W2", "b2"], ["y"], transB=1),
    ]
    inits = [
        _t("W1", rng.standard_normal((16, 64)) * 0.5),
        _t("b1", rng.standard_normal(16) * 0.1),
        _t("lo", 0.0),
        _t("hi", 0.5),
        _t("W2", rng.standard_normal((10, 16))),
        _t("b2", np.zeros(10)),
    ]
    g = graph_from_proto(make_model(nodes, inits, (1, 8, 8), 10))
    opts = ImportOptions(scheme="per-layer", a_bits=3, unipolar_fraction=0.25, calibrate=128)
    out = import_onnx(g, digits, opts)
    r = out.report
    assert r["calibration"]["act_ranges"][0] <= 0.5 * 8 / 7 + 1e-12
    assert r["unipolar_filters"] == 4
    hidden = out.model.hidden_layers[0]
    assert int(hidden.unipolar.sum()) == 4
    assert np.all(hidden.n_w[hidden.unipolar] >= 0)
