"""Quantization-aware fine-tuning of an imported residual network (``cosim import --finetune``).

The residual MLP of ``benchmarks/residual.py`` (digits, ``relu(W1 x)`` ->
``relu(W3 relu(W2 h1) + h1)`` -> ``W4``, trained in NumPy, written as ONNX) imported at
W4A3 (global and per-layer), then fine-tuned for 3 epochs from the imported weights and
ranges, at batches 32 (the default), 64 and 8 (digits has 1437 training samples: 45, 23 or
180 steps per epoch), at the default ``--lr 2e-3`` and the earlier default 5e-4, seeds 0, 1,
2 (the seed draws the calibration samples and the batches); and global W4A3 for 30 epochs at
batch 64 (``--lr 1e-3``), the ceiling of that batch.
Accuracies are the integer reference's on the 359 test samples.

    python benchmarks/residual_finetune.py --json benchmarks/results/residual_finetune.json

With ``--onnx PATH --dataset NAME`` it measures that graph instead (global W4A3,
3 epochs): every combination of ``--group-rule`` (the residual groups' range rule of
:func:`cosim.train.residual_import.build_residual_model`), ``--lr``, ``--batch`` and
``--seeds``, one
run at a time; ``--ptq`` adds post-training rows (no fine-tuning) for every range method and
group rule. ``--append`` keeps the JSON's earlier rows (a row with the same settings is
replaced), so a long measurement can be run in pieces. The ResNet-style network of
``examples/pytorch_to_cosim.py`` (``resnet.onnx``, Fashion-MNIST), the committed
``benchmarks/results/residual_finetune_fashion.json`` (one run at a time, ~4 min each on 2
cores; ``J`` standing for ``--json benchmarks/results/residual_finetune_fashion.json``):

    R="python benchmarks/residual_finetune.py --onnx resnet.onnx --dataset fashion-mnist"
    $R --lr 2e-3 --batch 64 --seeds 0 1 $J
    $R --lr 2e-3 --batch 32 --seeds 1 0 --append $J
    $R --ptq --epochs 0 --seeds 0 --append $J
    $R --group-rule max --lr 2e-3 --batch 32 --seeds 0 1 --append $J
    $R --lr 5e-4 --batch 64 --seeds 0 --append $J
    $R --group-rule auto --lr 2e-3 --batch 32 --seeds 2 --append $J   # cosim import's defaults
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import time
from pathlib import Path

from cosim.datasets import load_dataset
from cosim.train.importer import ImportOptions, import_onnx
from cosim.train.onnx_graph import graph_from_proto, read_graph

ROOT = Path(__file__).resolve().parents[1]


def _residual_benchmark():
    spec = importlib.util.spec_from_file_location("bench_residual", ROOT / "benchmarks/residual.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _row(graph, ds, opts: ImportOptions) -> dict:
    t0 = time.perf_counter()
    r = import_onnx(graph, ds, opts).report
    row = {
        "scheme": opts.scheme,
        "bits": f"W{opts.w_bits}A{opts.a_bits}",
        "method": opts.method,
        "group_rule": opts.group_rule,
        "batch_size": opts.batch_size,
        "seed": opts.seed,
        "epochs": opts.finetune,
        "lr": opts.lr,
        "float_accuracy": r["float_accuracy"],
        "ptq_accuracy": r["ptq_accuracy"],
    }
    if opts.finetune:
        row["finetune_accuracy"] = r["finetune_accuracy"]
        row["per_epoch"] = [h["test_accuracy"] for h in r["finetune_history"]]
        row["finetune_time_s"] = r["finetune_time_s"]
    row["wall_s"] = time.perf_counter() - t0
    print(json.dumps(row), flush=True)
    return row


def _digits_runs(epochs: int) -> list[ImportOptions]:
    runs = [  # the default --lr and --batch-size (2e-3, 32) and the earlier ones (5e-4, 64)
        ImportOptions(scheme=scheme, finetune=epochs, batch_size=batch, seed=seed, lr=lr)
        for lr in (2e-3, 5e-4)
        for scheme in ("global", "per-layer")
        for batch in (32, 64, 8)
        for seed in (0, 1, 2)
    ]
    # the batch-64 ceiling: 30 epochs
    runs.append(ImportOptions(scheme="global", finetune=30, batch_size=64, seed=0, lr=1e-3))
    return runs


def _graph_runs(args: argparse.Namespace) -> list[ImportOptions]:
    runs = []
    if args.ptq:
        for method, rule in (("mse", "joint"), ("mse", "max"), ("minmax", "max")):
            runs += [ImportOptions(method=method, group_rule=rule, seed=s) for s in args.seeds]
    for rule in args.group_rule if args.epochs > 0 else ():
        for lr in args.lr:
            for batch in args.batch:
                for seed in args.seeds:
                    opts = ImportOptions(
                        finetune=args.epochs, lr=lr, batch_size=batch, seed=seed, group_rule=rule
                    )
                    runs.append(opts)
    return runs


def _key(row: dict) -> tuple:
    return tuple(row.get(k) for k in ("scheme", "method", "group_rule", "batch_size", "seed",
                                      "epochs", "lr"))  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--onnx", type=Path, default=None, help="an ONNX graph to measure instead")
    ap.add_argument("--dataset", default="digits", help="its dataset (with --onnx)")
    ap.add_argument("--lr", type=float, nargs="+", default=[2e-3], help="with --onnx")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0], help="with --onnx")
    ap.add_argument("--batch", type=int, nargs="+", default=[64], help="with --onnx")
    ap.add_argument(
        "--group-rule",
        nargs="+",
        default=["joint"],
        choices=("auto", "joint", "max"),
        help="with --onnx (auto: cosim import's default)",
    )
    ap.add_argument("--ptq", action="store_true", help="with --onnx: post-training rows too")
    ap.add_argument("--append", action="store_true", help="keep the JSON's other rows")
    args = ap.parse_args()
    ds = load_dataset(args.dataset if args.onnx else "digits")
    if args.onnx is not None:
        graph = read_graph(args.onnx)
        runs = _graph_runs(args)
    else:
        bench = _residual_benchmark()
        x01 = ds.preprocessing.unit(ds.x_train).reshape(len(ds.x_train), -1)
        graph = graph_from_proto(bench.to_onnx(bench.train_residual_mlp(x01, ds.y_train)), "res")
        runs = _digits_runs(args.epochs)
    rows: list[dict] = []
    if args.append and args.json is not None and args.json.exists():
        rows = json.loads(args.json.read_text())["runs"]
    for opts in runs:
        row = _row(graph, ds, opts)
        rows = [r for r in rows if _key(r) != _key(row)] + [row]
        if args.json:  # after every run: a long measurement keeps what it has
            head = {"graph": str(args.onnx), "dataset": ds.name} if args.onnx else {}
            args.json.write_text(json.dumps({**head, "runs": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
