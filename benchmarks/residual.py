"""A trained residual network through ``cosim import`` and the engine (issue 11 item 2).

Trains a small residual MLP on the bundled digits in NumPy (Adam, seed 0; no deep-learning
framework): ``relu(W1 x)`` -> ``relu(W3 relu(W2 h1) + h1)`` (an identity skip, the ReLU after
the Add) -> ``W4``, writes it as ONNX with ``onnx.helper``, imports it at W4A3 (global and
per-layer) and W8A8 (global) and evaluates the W4A3 models on the committed quick library
of the default card:
ideal mode (checked bit-exact with the integer reference on the whole test set) and all
non-idealities on (1 chip). Prints and writes the accuracies and the Add's energy share.

    python benchmarks/residual.py --json benchmarks/results/residual.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto
from onnx import helper as oh
from onnx import numpy_helper as nh

from cosim.datasets import load_dataset
from cosim.engine.config import EngineConfig
from cosim.engine.evaluate import evaluate
from cosim.library import load_library
from cosim.model import integer_forward
from cosim.train.importer import ImportOptions, import_onnx
from cosim.train.onnx_graph import graph_from_proto

ROOT = Path(__file__).resolve().parents[1]
H = 32


def train_residual_mlp(x: np.ndarray, y: np.ndarray, epochs: int = 150, seed: int = 0) -> dict:
    """Full-batch Adam on the residual MLP; returns its float32 parameters."""
    rng = np.random.default_rng(seed)
    f = x.shape[1]
    p = {
        "W1": rng.standard_normal((H, f)) * np.sqrt(2 / f),
        "b1": np.zeros(H),
        "W2": rng.standard_normal((H, H)) * np.sqrt(2 / H),
        "b2": np.zeros(H),
        "W3": rng.standard_normal((H, H)) * np.sqrt(2 / H) * 0.5,
        "b3": np.zeros(H),
        "W4": rng.standard_normal((10, H)) * np.sqrt(1 / H),
        "b4": np.zeros(10),
    }
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v = {k: np.zeros_like(a) for k, a in p.items()}
    onehot = np.eye(10)[y]
    lr, b1, b2 = 3e-3, 0.9, 0.999
    for t in range(1, epochs + 1):
        z1 = x @ p["W1"].T + p["b1"]
        h1 = np.maximum(z1, 0)
        z2 = h1 @ p["W2"].T + p["b2"]
        h2 = np.maximum(z2, 0)
        s = h2 @ p["W3"].T + p["b3"] + h1
        h3 = np.maximum(s, 0)
        lo = h3 @ p["W4"].T + p["b4"]
        e = np.exp(lo - lo.max(1, keepdims=True))
        d_lo = (e / e.sum(1, keepdims=True) - onehot) / len(x)
        g = {"W4": d_lo.T @ h3, "b4": d_lo.sum(0)}
        d_s = (d_lo @ p["W4"]) * (s > 0)
        g["W3"], g["b3"] = d_s.T @ h2, d_s.sum(0)
        d_z2 = (d_s @ p["W3"]) * (z2 > 0)
        g["W2"], g["b2"] = d_z2.T @ h1, d_z2.sum(0)
        d_z1 = (d_z2 @ p["W2"] + d_s) * (z1 > 0)
        g["W1"], g["b1"] = d_z1.T @ x, d_z1.sum(0)
        for k in p:
            m[k] = b1 * m[k] + (1 - b1) * g[k]
            v[k] = b2 * v[k] + (1 - b2) * g[k] ** 2
            p[k] -= lr * (m[k] / (1 - b1**t)) / (np.sqrt(v[k] / (1 - b2**t)) + 1e-8)
    return {k: a.astype(np.float32) for k, a in p.items()}


def to_onnx(p: dict) -> onnx.ModelProto:
    nodes = [
        oh.make_node("Flatten", ["x"], ["f"]),
        oh.make_node("Gemm", ["f", "W1", "b1"], ["z1"], transB=1),
        oh.make_node("Relu", ["z1"], ["h1"]),
        oh.make_node("Gemm", ["h1", "W2", "b2"], ["z2"], transB=1),
        oh.make_node("Relu", ["z2"], ["h2"]),
        oh.make_node("Gemm", ["h2", "W3", "b3"], ["z3"], transB=1),
        oh.make_node("Add", ["z3", "h1"], ["s"]),
        oh.make_node("Relu", ["s"], ["h3"]),
        oh.make_node("Gemm", ["h3", "W4", "b4"], ["y"], transB=1),
    ]
    g = oh.make_graph(
        nodes,
        "digits_resmlp",
        [oh.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 8, 8])],
        [oh.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 10])],
        [nh.from_array(a, k) for k, a in p.items()],
    )
    model = oh.make_model(g, opset_imports=[oh.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--library", type=Path, default=ROOT / "tests/data/library-quick")
    args = ap.parse_args()
    ds = load_dataset("digits")
    x01 = ds.preprocessing.unit(ds.x_train).reshape(len(ds.x_train), -1)
    t0 = time.perf_counter()
    params = train_residual_mlp(x01, ds.y_train)
    t_train = time.perf_counter() - t0
    graph = graph_from_proto(to_onnx(params), "digits_resmlp")
    out: dict = {"train_time_s": t_train, "n_test": len(ds.x_test)}
    lib = load_library(args.library)
    for scheme, w, a in (("global", 4, 3), ("per-layer", 4, 3), ("global", 8, 8)):
        imp = import_onnx(graph, ds, ImportOptions(scheme=scheme, w_bits=w, a_bits=a))
        rec: dict = {
            "float_accuracy": imp.report["float_accuracy"],
            "ptq_accuracy": imp.report["ptq_accuracy"],
            "import_time_s": imp.report["wall_time_s"],
        }
        if (w, a) == (4, 3):  # on the chip
            model = imp.model
            ref = integer_forward(model, ds.x_test).predictions
            ideal = evaluate(model, lib, ds.x_test, ds.y_test, EngineConfig.ideal_mode())
            rec["ideal_equals_reference"] = bool(np.array_equal(ideal.predictions[0], ref))
            rec["ideal_accuracy"] = ideal.accuracy_per_chip[0]
            t1 = time.perf_counter()
            res = evaluate(model, lib, ds.x_test, ds.y_test, EngineConfig(chips=1))
            rec["nonideal_accuracy"] = res.accuracy_per_chip[0]
            rec["nonideal_wall_s"] = time.perf_counter() - t1
            total = sum(res.energy_per_inference_j.to_dict().values())
            add = next(lay for lay in res.layers if lay.layer.endswith(":add"))
            e_add = sum(add.energy_per_inference_j.to_dict().values())
            rec["energy_per_inference_j"] = total
            rec["add_energy_per_inference_j"] = e_add
            rec["add_energy_share"] = e_add / total
        out[f"{scheme} W{w}A{a}"] = rec
        print(f"{scheme} W{w}A{a}: {json.dumps(rec)}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
