"""Engine speed on a residual network against a float32 NumPy forward of the same graph.

Issue 11's target: the engine on the residual network at most 3.5x a float32 NumPy forward
of the same graph, measured in one run. The network is the ResNet-style one of
``examples/pytorch_to_cosim.py`` (stem Conv 3x3 1->16 + ReLU + 2x2 max pool, a basic block of
16 channels with an identity skip, Conv 3x3 stride 2 16->32 + ReLU, a basic block of 32,
global average pool, Linear 32->10), global W4A3, on the 10k Fashion-MNIST test images:

* ``--model MODEL.npz``: a model file, e.g. the example's ``ptq.npz`` (trained in PyTorch,
  imported by ``cosim import``); without it the same graph is built here with
  ``onnx.helper`` (He-random weights, seed 0) and imported (post-training quantization),
  so no PyTorch is needed;
* ``t_float``: a plain float32 NumPy forward of the graph (the model's dequantized weights;
  im2col + matmul, ReLU, max and average pooling, the residual Adds; the signed operand of
  an Add computed once, as the graph does and as the chip reads it: one signed conversion
  per output of ``W``'s differential pairs, :func:`cosim.engine.mapping.signed_half`),
  batch 1000, single-threaded BLAS like the engine;
* ``t_engine``: ``cosim evaluate``'s engine, every non-ideality on, one chip (programming
  included), single-threaded;
* the float32 forward's predictions checked against :func:`cosim.model.forward.float_forward`
  (float64, the chip's pair as ``relu(z) - relu(-z)``) on the first 1000 images;
* timed alternately ``--repeat`` times (3), the fastest of each kept (other work on a shared
  machine only ever slows a run down); the ratio ``t_engine / t_float``.

    PYTHONPATH=. python benchmarks/residual_speed.py [--model M.npz] \\
        [--library tests/data/library-quick] [--json benchmarks/results/residual_speed.json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def resnet_graph(seed: int = 0, widths: tuple[int, int] = (16, 32)):
    """The example's ResNet-style graph (batch norm folded) with He-random weights."""
    import onnx
    from onnx import TensorProto
    from onnx import helper as oh
    from onnx import numpy_helper as nh

    rng = np.random.default_rng(seed)
    c1, c2 = widths
    inits = []

    def conv(name, x, out, c_in, c_out, stride=1, gain=1.0):
        w = rng.standard_normal((c_out, c_in, 3, 3)) * np.sqrt(2 / (9 * c_in)) * gain
        b = rng.standard_normal(c_out) * 0.05
        inits.extend([nh.from_array(w.astype(np.float32), f"{name}_w"),
                      nh.from_array(b.astype(np.float32), f"{name}_b")])  # fmt: skip
        return oh.make_node("Conv", [x, f"{name}_w", f"{name}_b"], [out], kernel_shape=[3, 3],
                            pads=[1, 1, 1, 1], strides=[stride, stride])  # fmt: skip

    def block(p, x, c):
        return [
            conv(f"{p}a", x, f"{p}za", c, c),
            oh.make_node("Relu", [f"{p}za"], [f"{p}ha"]),
            conv(f"{p}b", f"{p}ha", f"{p}zb", c, c, gain=0.5),
            oh.make_node("Add", [f"{p}zb", x], [f"{p}s"]),
            oh.make_node("Relu", [f"{p}s"], [f"{p}h"]),
        ]

    nodes = [
        conv("stem", "x", "z0", 1, c1),
        oh.make_node("Relu", ["z0"], ["h0"]),
        oh.make_node("MaxPool", ["h0"], ["p0"], kernel_shape=[2, 2], strides=[2, 2]),
        *block("s1", "p0", c1),
        conv("down", "s1h", "zd", c1, c2, stride=2),
        oh.make_node("Relu", ["zd"], ["hd"]),
        *block("s2", "hd", c2),
        oh.make_node("GlobalAveragePool", ["s2h"], ["gp"]),
        oh.make_node("Flatten", ["gp"], ["f"]),
        oh.make_node("Gemm", ["f", "fc_w", "fc_b"], ["y"], transB=1),
    ]
    inits += [
        nh.from_array((rng.standard_normal((10, c2)) / np.sqrt(c2)).astype(np.float32), "fc_w"),
        nh.from_array(np.zeros(10, np.float32), "fc_b"),
    ]
    g = oh.make_graph(
        nodes,
        "resnet_style",
        [oh.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 28, 28])],
        [oh.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 10])],
        inits,
    )
    m = oh.make_model(g, opset_imports=[oh.make_opsetid("", 17)])
    onnx.checker.check_model(m)
    return m


class Float32Forward:
    """A plain float32 NumPy forward of a model file's graph (dequantized weights).

    A hidden weight layer whose output is the signed operand of a residual Add (a pair,
    ``[W; -W]`` in the model file) is computed once with ``W``, without a ReLU, as in the
    graph.
    """

    def __init__(self, model) -> None:
        from cosim.model import AddLayer, FlattenLayer, PoolLayer, WeightLayer

        self.model = model
        self.sources = model.add_sources()
        self.steps: list[tuple] = []
        layers = model.layers
        for i, lay in enumerate(layers):
            if isinstance(lay, WeightLayer):
                w = lay.weights().astype(np.float32)
                b = lay.biases().astype(np.float32)
                nxt = layers[i + 1] if i + 1 < len(layers) else None
                pair = isinstance(nxt, AddLayer) and nxt.pair
                if pair:
                    w, b = w[: w.shape[0] // 2], b[: b.shape[0] // 2]
                relu = lay.is_hidden and not pair
                wt = np.ascontiguousarray(w.reshape(w.shape[0], -1).T)
                self.steps.append(("w", lay, wt, b, relu))
            elif isinstance(lay, PoolLayer):
                self.steps.append(("p", lay, None, None, False))
            elif isinstance(lay, FlattenLayer):
                self.steps.append(("f", lay, None, None, False))
            else:
                assert isinstance(lay, AddLayer)
                self.steps.append(("a", lay, None, None, True))

    def __call__(self, x01: np.ndarray, batch: int = 1000) -> np.ndarray:
        from numpy.lib.stride_tricks import sliding_window_view

        out = []
        hi = np.float32(self.model.input_hi)
        for b0 in range(0, x01.shape[0], batch):
            h = x01[b0 : b0 + batch].astype(np.float32) * hi
            saved: dict[int, np.ndarray] = {}
            for i, (kind, lay, w, b, relu) in enumerate(self.steps):
                if kind == "w":
                    if lay.kind == "conv2d":
                        k, s, p = lay.kernel, lay.stride, lay.padding
                        if p:
                            h = np.pad(h, ((0, 0), (0, 0), (p, p), (p, p)))
                        win = sliding_window_view(h, (k, k), axis=(2, 3))[:, :, ::s, ::s]
                        n, c, ho, wo = win.shape[:4]
                        cols = win.transpose(0, 2, 3, 1, 4, 5).reshape(n * ho * wo, c * k * k)
                        h = (cols @ w + b).reshape(n, ho, wo, -1).transpose(0, 3, 1, 2)
                    else:
                        h = h.reshape(h.shape[0], -1) @ w + b
                elif kind == "p":
                    n, c, hh, ww = h.shape
                    s = lay.size
                    blocks = h.reshape(n, c, hh // s, s, ww // s, s)
                    h = blocks.max(axis=(3, 5)) if lay.kind == "maxpool2d" else blocks.mean((3, 5))
                elif kind == "f":
                    h = h.reshape(h.shape[0], -1)
                else:
                    h = h + saved[lay.source]
                if relu:
                    h = np.maximum(h, 0)
                if i in self.sources:
                    saved[i] = h
            out.append(np.argmax(h, axis=1))
        return np.concatenate(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=None, help="a residual model file")
    ap.add_argument("--library", type=Path, default=ROOT / "tests" / "data" / "library-quick")
    ap.add_argument("--limit", type=int, default=None, help="fewer test images (smoke runs)")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs of each (the fastest)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)

    from threadpoolctl import threadpool_limits

    from cosim.datasets import load_dataset
    from cosim.engine.config import EngineConfig
    from cosim.engine.evaluate import evaluate
    from cosim.library import load_library
    from cosim.model import AddLayer, load_model
    from cosim.model.forward import float_forward
    from cosim.train.importer import ImportOptions, import_onnx
    from cosim.train.onnx_graph import graph_from_proto

    ds = load_dataset("fashion-mnist")
    x, y = ds.x_test, ds.y_test
    if args.limit:
        x, y = x[: args.limit], y[: args.limit]
    if args.model is not None:
        model = load_model(args.model)
        source = str(args.model)
    else:
        graph = graph_from_proto(resnet_graph(), "resnet_style")
        model = import_onnx(graph, ds, ImportOptions(scheme="global", w_bits=4, a_bits=3)).model
        source = "resnet_graph() (He-random weights, seed 0), cosim import global W4A3"
    if not any(isinstance(lay, AddLayer) for lay in model.layers):
        raise SystemExit(f"{source}: not a residual model (no Add layer)")
    library = load_library(args.library)
    x01 = np.clip(model.preprocessing.unit(x), 0.0, 1.0).astype(np.float32)
    fwd = Float32Forward(model)
    # the float32 forward computes what cosim's float64 reference computes on these weights
    n = min(1000, len(x))
    with threadpool_limits(limits=1):
        agree = float(np.mean(fwd(x01[:n]) == float_forward(model, x[:n]).predictions))

    t_float, t_engine, r, pf = math.inf, math.inf, None, None
    with threadpool_limits(limits=1):
        fwd(x01[:1000])  # warm-up
    for _ in range(args.repeat):
        with threadpool_limits(limits=1):
            t = time.perf_counter()
            pf = fwd(x01)
            t_float = min(t_float, time.perf_counter() - t)
        t = time.perf_counter()
        r = evaluate(model, library, x, y, EngineConfig(chips=1))
        t_engine = min(t_engine, time.perf_counter() - t)
    assert r is not None and pf is not None
    res = {
        "model": source,
        "library": os.path.relpath(args.library.resolve(), ROOT),
        "layers": [lay.kind for lay in model.layers],
        "images": len(x),
        "repeat": args.repeat,
        "t_float32_forward_s": t_float,
        "t_engine_s": t_engine,
        "ratio_engine_over_float": t_engine / t_float,
        "target_ratio": 3.5,
        "images_per_s": len(x) / t_engine,
        "engine_accuracy": r.accuracy_mean,
        "float32_forward_accuracy": float(np.mean(pf == y)),
        "float32_forward_agrees_with_float_forward": agree,
    }
    for k, v in res.items():
        print(f"{k:>34}: {v:.4g}" if isinstance(v, float) else f"{k:>34}: {v}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
