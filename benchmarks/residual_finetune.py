"""Quantization-aware fine-tuning of an imported residual network (``cosim import --finetune``).

The residual MLP of ``benchmarks/residual.py`` (digits, ``relu(W1 x)`` ->
``relu(W3 relu(W2 h1) + h1)`` -> ``W4``, trained in NumPy, written as ONNX) imported at
W4A3 (global and per-layer), then fine-tuned for 3 epochs from the imported weights and
ranges, at the default batch of 64 and at 8 (digits has 1437 training samples: 23 or 180
steps per epoch), seeds 0, 1, 2 (the seed draws the calibration samples and the batches);
and global W4A3 for 30 epochs at batch 64 (``--lr 1e-3``), the ceiling of the default batch.
Accuracies are the integer reference's on the 359 test samples.

    python benchmarks/residual_finetune.py --json benchmarks/results/residual_finetune.json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import time
from pathlib import Path

from cosim.datasets import load_dataset
from cosim.train.importer import ImportOptions, import_onnx
from cosim.train.onnx_graph import graph_from_proto

ROOT = Path(__file__).resolve().parents[1]


def _residual_benchmark():
    spec = importlib.util.spec_from_file_location("bench_residual", ROOT / "benchmarks/residual.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--epochs", type=int, default=3)
    args = ap.parse_args()
    bench = _residual_benchmark()
    ds = load_dataset("digits")
    x01 = ds.preprocessing.unit(ds.x_train).reshape(len(ds.x_train), -1)
    graph = graph_from_proto(bench.to_onnx(bench.train_residual_mlp(x01, ds.y_train)), "res")
    runs = [
        (scheme, batch, seed, args.epochs, 5e-4)
        for scheme in ("global", "per-layer")
        for batch in (64, 8)
        for seed in (0, 1, 2)
    ]
    runs.append(("global", 64, 0, 30, 1e-3))  # the batch-64 ceiling: 30 epochs
    rows = []
    for scheme, batch, seed, epochs, lr in runs:
        t0 = time.perf_counter()
        opts = ImportOptions(scheme=scheme, finetune=epochs, batch_size=batch, seed=seed, lr=lr)
        r = import_onnx(graph, ds, opts).report
        row = {
            "scheme": scheme,
            "bits": "W4A3",
            "batch_size": batch,
            "seed": seed,
            "epochs": epochs,
            "lr": lr,
            "float_accuracy": r["float_accuracy"],
            "ptq_accuracy": r["ptq_accuracy"],
            "finetune_accuracy": r["finetune_accuracy"],
            "per_epoch": [h["test_accuracy"] for h in r["finetune_history"]],
            "finetune_time_s": r["finetune_time_s"],
            "wall_s": time.perf_counter() - t0,
        }
        rows.append(row)
        print(json.dumps(row))
    if args.json:
        args.json.write_text(json.dumps({"runs": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
