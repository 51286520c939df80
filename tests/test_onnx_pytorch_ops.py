"""What PyTorch's ONNX exporters (torch 2.13) write that the importer must take.

The graphs are built here with onnx.helper in the exporters' shapes (no PyTorch needed):

- the dynamo exporter (``torch.onnx.export``'s default) writes ``AdaptiveAvgPool2d(1)`` as
  ``ReduceMean`` over axes ``[-1, -2]`` (an input, opset 18+) with ``keepdims=1``, then a
  ``Reshape`` to ``(N, C)``; ``x.mean((2, 3))`` gives ``keepdims=0``;
- the TorchScript exporter (``dynamo=False``) writes ``Identity`` nodes of initializers (its
  constant folding deduplicates equal weights): constant arithmetic to fold.

``examples/pytorch_to_cosim.py`` runs both exporters on a real ResNet-style network.
"""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper as oh
from onnx.reference import ReferenceEvaluator

from cosim.errors import OnnxImportError
from cosim.train.onnx_graph import convert, graph_from_proto, run_graph
from tests.test_onnx_import import _cosim_float, _i64, _t, make_model


def graph_reduce_mean(rng, keepdims):
    """Conv, ReLU, ReduceMean over the spatial axes, (Reshape,) Gemm: the dynamo export of
    ``fc(flatten(AdaptiveAvgPool2d(1)(relu(conv(x)))))``."""
    nodes = [
        oh.make_node("Conv", ["x", "W1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        oh.make_node("Relu", ["c1"], ["r1"]),
        oh.make_node("ReduceMean", ["r1", "axes"], ["m"], keepdims=keepdims),
    ]
    inits = [
        _t("W1", rng.standard_normal((5, 1, 3, 3))),
        _t("b1", rng.standard_normal(5) * 0.1),
        _i64("axes", [-1, -2]),
        _t("W2", rng.standard_normal((3, 5))),
        _t("b2", rng.standard_normal(3) * 0.1),
    ]
    if keepdims:
        nodes.append(oh.make_node("Reshape", ["m", "shape"], ["f"], allowzero=1))
        inits.append(_i64("shape", [-1, 5]))
    src = "f" if keepdims else "m"
    nodes.append(oh.make_node("Gemm", [src, "W2", "b2"], ["y"], transB=1))
    return make_model(nodes, inits, (1, 6, 6), 3, opset=20), (1, 6, 6)


def graph_identity_of_weights(rng):
    """Two convolutions sharing one weight tensor through ``Identity`` (the TorchScript
    exporter's deduplicated initializers)."""
    nodes = [
        oh.make_node("Identity", ["W"], ["W_copy"]),
        oh.make_node("Conv", ["x", "W", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        oh.make_node("Relu", ["c1"], ["r1"]),
        oh.make_node("Conv", ["r1", "W_copy", "b2"], ["c2"], pads=[1, 1, 1, 1]),
        oh.make_node("Relu", ["c2"], ["r2"]),
        oh.make_node("Flatten", ["r2"], ["f"]),
        oh.make_node("Gemm", ["f", "W3"], ["y"], transB=1),
    ]
    inits = [
        _t("W", rng.standard_normal((1, 1, 3, 3))),
        _t("b1", rng.standard_normal(1) * 0.1),
        _t("b2", rng.standard_normal(1) * 0.1),
        _t("W3", rng.standard_normal((3, 36))),
    ]
    return make_model(nodes, inits, (1, 6, 6), 3), (1, 6, 6)


GRAPHS = {
    "reduce_mean_keepdims": lambda rng: graph_reduce_mean(rng, 1),
    "reduce_mean_no_keepdims": lambda rng: graph_reduce_mean(rng, 0),
    "identity_of_weights": graph_identity_of_weights,
}


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_evaluator_and_conversion_match_onnx_reference(name):
    rng = np.random.default_rng(4)
    model, shape = GRAPHS[name](rng)
    x = rng.uniform(0, 1, (7, *shape)).astype(np.float32)
    ref = ReferenceEvaluator(model).run(None, {"x": x})[0]
    g = graph_from_proto(model)
    np.testing.assert_allclose(run_graph(g, x), ref, rtol=1e-4, atol=1e-4)
    conv = convert(g, shape)
    np.testing.assert_allclose(_cosim_float(conv, x), ref, rtol=1e-4, atol=1e-4)
    kinds = [s.kind for s in conv.specs]
    if name.startswith("reduce_mean"):
        assert kinds == ["conv", "act", "avgpool", "flatten", "dense"]
        assert conv.specs[2].size == 6  # one pool of the whole 6x6 map


def test_a_reduce_mean_over_other_axes_is_refused():
    rng = np.random.default_rng(5)
    model, shape = graph_reduce_mean(rng, 1)
    model.graph.initializer[2].CopyFrom(_i64("axes", [1]))  # a mean over the channels
    with pytest.raises(OnnxImportError, match=r"ReduceMean.*two spatial axes"):
        convert(graph_from_proto(model), shape)
