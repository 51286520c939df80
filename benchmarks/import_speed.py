"""``cosim import``: how long an ONNX import takes, and what its range search is worth.

1. **Speed.** A LeNet-5-size ONNX graph (Conv 5x5 (6), Relu, AveragePool 2, Conv 5x5 (16),
   Relu, AveragePool 2, Flatten, Gemm 256-120, Relu, Gemm 120-84, Relu, Gemm 84-10; He-random
   weights, built with onnx.helper) is imported for ``digits28`` (1x28x28): reading,
   conversion, the float accuracy of the graph on the test set, and the post-training
   calibration (512 samples, global W4A3) with the integer-reference accuracy. The wall time
   of the whole import and of the calibration alone, best of ``--repeat`` runs. Target
   (issue 11): under 30 s on 2 cores.
2. **Ranges: MSE-optimal versus naive min/max.** A digits MLP trained by cosim itself in
   float (``cosim train --model mlp --scheme float``, ``--epochs`` epochs, seed 0) is
   written as an ONNX graph and imported with both range methods, both schemes, at W4A3,
   W3A3 and W2A2: post-training quantized accuracies (integer reference, 359 test
   samples) beside the graph's float accuracy; then global W4A3 and W2A2 with 3 epochs of
   cosim's fine-tuning (``--finetune 3``).

Usage::

    python benchmarks/import_speed.py [--repeat 3] [--epochs 15] \\
        [--json benchmarks/results/import_speed.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np


def _t(name: str, a: Any) -> Any:
    from onnx import numpy_helper

    return numpy_helper.from_array(np.asarray(a, dtype=np.float32), name)


def _model(nodes: list, inits: list, in_shape: tuple[int, ...], n_out: int, name: str) -> Any:
    import onnx
    from onnx import TensorProto
    from onnx import helper as oh

    g = oh.make_graph(
        nodes,
        name,
        [oh.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *in_shape])],
        [oh.make_tensor_value_info("y", TensorProto.FLOAT, ["N", n_out])],
        inits,
    )
    m = oh.make_model(g, opset_imports=[oh.make_opsetid("", 17)])
    onnx.checker.check_model(m)
    return m


def lenet_onnx(seed: int = 0) -> Any:
    """A LeNet-5-size graph for 1x28x28 inputs with He-random weights."""
    from onnx import helper as oh

    rng = np.random.default_rng(seed)

    def he(*shape: int) -> np.ndarray:
        fan_in = int(np.prod(shape[1:]))
        return rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)

    nodes = [
        oh.make_node("Conv", ["x", "W1", "b1"], ["c1"]),
        oh.make_node("Relu", ["c1"], ["r1"]),
        oh.make_node("AveragePool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
        oh.make_node("Conv", ["p1", "W2", "b2"], ["c2"]),
        oh.make_node("Relu", ["c2"], ["r2"]),
        oh.make_node("AveragePool", ["r2"], ["p2"], kernel_shape=[2, 2], strides=[2, 2]),
        oh.make_node("Flatten", ["p2"], ["f"]),
        oh.make_node("Gemm", ["f", "W3", "b3"], ["d3"], transB=1),
        oh.make_node("Relu", ["d3"], ["r3"]),
        oh.make_node("Gemm", ["r3", "W4", "b4"], ["d4"], transB=1),
        oh.make_node("Relu", ["d4"], ["r4"]),
        oh.make_node("Gemm", ["r4", "W5", "b5"], ["y"], transB=1),
    ]
    inits = [
        _t("W1", he(6, 1, 5, 5)),
        _t("b1", np.zeros(6)),
        _t("W2", he(16, 6, 5, 5)),
        _t("b2", np.zeros(16)),
        _t("W3", he(120, 256)),
        _t("b3", np.zeros(120)),
        _t("W4", he(84, 120)),
        _t("b4", np.zeros(84)),
        _t("W5", he(10, 84)),
        _t("b5", np.zeros(10)),
    ]
    return _model(nodes, inits, (1, 28, 28), 10, "lenet5_random")


def mlp_onnx(net: Any, hi: float) -> Any:
    """A cosim float MLP (Flatten, Dense, act, Dense, act, Dense) as an ONNX graph on x01."""
    from onnx import helper as oh

    nodes: list = [oh.make_node("Flatten", ["x"], ["a0"])]
    inits = []
    ws = net.weight_layers
    for i, lay in enumerate(ws):
        w = lay.params["W"].astype(np.float64) * (hi if i == 0 else 1.0)  # input x01 * hi
        inits += [_t(f"W{i}", w), _t(f"b{i}", lay.params["b"])]
        last = i == len(ws) - 1
        out = "y" if last else f"z{i}"
        nodes.append(oh.make_node("Gemm", [f"a{i}", f"W{i}", f"b{i}"], [out], transB=1))
        if not last:
            nodes.append(oh.make_node("Relu", [out], [f"a{i + 1}"]))
    return _model(nodes, inits, (1, 8, 8), 10, "cosim_mlp_float")


def speed(repeat: int) -> dict[str, Any]:
    import onnx

    from cosim.datasets import load_dataset
    from cosim.train.importer import ImportOptions, import_onnx

    ds = load_dataset("digits28")
    runs = []
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "lenet.onnx"
        onnx.save(lenet_onnx(), str(path))
        for _ in range(repeat):
            t0 = time.perf_counter()
            out = import_onnx(path, ds, ImportOptions(scheme="global", calibrate=512))
            wall = time.perf_counter() - t0
            runs.append(
                {
                    "wall_s": wall,
                    "convert_s": out.report["convert_time_s"],
                    "calibrate_s": out.report["calibrate_time_s"],
                    "float_accuracy": out.report["float_accuracy"],
                    "ptq_accuracy": out.report["ptq_accuracy"],
                }
            )
    best = min(runs, key=lambda r: r["wall_s"])
    return {
        "graph": "LeNet-5 size (conv 6@5x5, conv 16@5x5, 256-120-84-10), He-random weights",
        "dataset": "digits28",
        "n_train": len(ds.x_train),
        "n_test": len(ds.x_test),
        "calibration_samples": 512,
        "scheme": "global W4A3",
        "runs": runs,
        "best_wall_s": best["wall_s"],
        "best_calibrate_s": min(r["calibrate_s"] for r in runs),
        "target_s": 30.0,
    }


def ranges(epochs: int) -> dict[str, Any]:
    from cosim.datasets import load_dataset
    from cosim.train.config import TrainConfig
    from cosim.train.importer import ImportOptions, import_onnx
    from cosim.train.onnx_graph import graph_from_proto
    from cosim.train.trainer import train

    ds = load_dataset("digits")
    cfg = TrainConfig(model="mlp", scheme="float", epochs=epochs, seed=0)
    out = train(cfg, ds, np.random.default_rng(0))
    g = graph_from_proto(mlp_onnx(out.net, cfg.hi), "cosim_mlp_float")
    rows = []
    for w_bits, a_bits in ((4, 3), (3, 3), (2, 2)):
        for scheme in ("global", "per-layer"):
            row: dict[str, Any] = {"w_bits": w_bits, "a_bits": a_bits, "scheme": scheme}
            for method in ("mse", "minmax"):
                opts = ImportOptions(scheme=scheme, w_bits=w_bits, a_bits=a_bits, method=method)
                rep = import_onnx(g, ds, opts).report
                row[method] = rep["ptq_accuracy"]
                row["float"] = rep["float_accuracy"]
            rows.append(row)
    tuned = []
    for w_bits, a_bits in ((4, 3), (2, 2)):
        opts = ImportOptions(scheme="global", w_bits=w_bits, a_bits=a_bits, finetune=3)
        rep = import_onnx(g, ds, opts).report
        tuned.append(
            {
                "w_bits": w_bits,
                "a_bits": a_bits,
                "scheme": "global",
                "float": rep["float_accuracy"],
                "ptq": rep["ptq_accuracy"],
                "finetune_epochs": 3,
                "finetuned": rep["finetune_accuracy"],
                "finetune_s": rep["finetune_time_s"],
            }
        )
    return {
        "finetune": tuned,
        "network": f"cosim mlp (64-128-64-10) trained float on digits, {epochs} epochs, seed 0",
        "calibration_samples": 512,
        "n_test": len(ds.x_test),
        "rows": rows,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--json", default="benchmarks/results/import_speed.json")
    args = ap.parse_args(argv)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=2, user_api="blas"):
        sp = speed(args.repeat)
        print(
            f"LeNet-size import (digits28, 512 calibration samples, global W4A3): "
            f"best {sp['best_wall_s']:.2f} s of {args.repeat} (calibration "
            f"{sp['best_calibrate_s']:.2f} s); target < {sp['target_s']:.0f} s"
        )
        rg = ranges(args.epochs)
    print(f"\n{rg['network']}; post-training quantized accuracy (integer reference, "
          f"{rg['n_test']} test samples)")  # fmt: skip
    print(f"{'bits':6} {'scheme':10} {'float':>7} {'mse':>7} {'minmax':>7}")
    for r in rg["rows"]:
        print(
            f"W{r['w_bits']}A{r['a_bits']}   {r['scheme']:10} {100 * r['float']:6.2f}% "
            f"{100 * r['mse']:6.2f}% {100 * r['minmax']:6.2f}%"
        )
    for r in rg["finetune"]:
        print(
            f"W{r['w_bits']}A{r['a_bits']}   global: post-training {100 * r['ptq']:.2f}%, after "
            f"{r['finetune_epochs']} fine-tuning epochs {100 * r['finetuned']:.2f}% "
            f"({r['finetune_s']:.1f} s)"
        )
    result = {
        "command": "python benchmarks/import_speed.py " + " ".join(argv or sys.argv[1:]),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "speed": sp,
        "ranges": rg,
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwritten {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
