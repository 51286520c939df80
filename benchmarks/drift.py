"""Accuracy against drift time, without and with drift compensation (issue 14, item 2).

The digits MLP (global W4A3, 10 epochs, seed 0) on the committed quick library of the
default card (PCM: t0 = 20 s, nu = 0.05 ± 0.01), every non-ideality on, evaluated at each
drift time ``t`` with ``drift_compensation`` none, global and column
(:mod:`cosim.engine.compensation`), over Monte-Carlo chips. Writes a JSON and a PNG (cosim's
``Software`` chunk) and prints the table.

Any other model runs the same way (``--model``, ``--library``, ``--dataset``, ``--limit``):
the committed ``drift-lenet5.json`` is the committed report's LeNet-5 W4A3 (5 epochs) on its
full library.

Usage::

    python benchmarks/drift.py [--chips 2] [--out benchmarks/results/drift.json]
    python benchmarks/drift.py --model M.npz --library DIR --dataset fashion-mnist \
        --limit 2000 --out benchmarks/results/drift-lenet5.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

TIMES_S = (1.0, 60.0, 3600.0, 86400.0, 3.15e7)
MODES = ("none", "global", "column")
LIBRARY = Path(__file__).resolve().parent.parent / "tests" / "data" / "library-quick"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--chips", type=int, default=2)
    ap.add_argument(
        "--out", type=Path, default=Path("benchmarks/results/drift.json"), help="JSON; PNG beside"
    )
    ap.add_argument("--model", type=Path, help="a model file (default: train the digits MLP)")
    ap.add_argument("--library", type=Path, default=LIBRARY)
    ap.add_argument("--dataset", default=None, help="default: the model's own")
    ap.add_argument("--limit", type=int, default=None, help="the first N test samples")
    args = ap.parse_args(argv)

    import numpy as np

    from cosim.datasets import load_dataset
    from cosim.engine.config import EngineConfig
    from cosim.engine.evaluate import evaluate
    from cosim.fileio import atomic_path, png_metadata
    from cosim.library import load_library
    from cosim.model import integer_forward, load_model
    from cosim.train.trainer import TrainConfig, train

    t_start = time.perf_counter()
    if args.model is None:
        ds = load_dataset("digits")
        tc = TrainConfig(model="mlp", scheme="global", w_bits=4, a_bits=3, epochs=10)
        model = train(tc, ds, np.random.default_rng(0)).model
        what = "digits MLP, global W4A3, 10 epochs, seed 0"
    else:
        model = load_model(args.model)
        ds = load_dataset(args.dataset or model.info.get("dataset"))
        what = f"{args.model.name} ({model.info.get('dataset')})"
    x_test, y_test = ds.x_test[: args.limit], ds.y_test[: args.limit]
    software = float(np.mean(integer_forward(model, x_test).predictions == y_test))
    lib = load_library(args.library)
    rows = []
    for t in TIMES_S:
        row: dict[str, float | list[float]] = {"t_s": t}
        for mode in MODES:
            cfg = EngineConfig(chips=args.chips, drift_t_s=t, drift_compensation=mode)
            r = evaluate(model, lib, x_test, y_test, cfg, desc=f"t={t:g} {mode}")
            row[mode] = r.accuracy_mean
            row[f"{mode}_per_chip"] = list(r.accuracy_per_chip)
        rows.append(row)
    no_drift = evaluate(model, lib, x_test, y_test, EngineConfig(chips=args.chips))

    args.out.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "written_by": "cosim benchmarks/drift.py",
        "command": "python benchmarks/drift.py " + " ".join(argv or sys.argv[1:]),
        "model": what,
        "library": os.path.relpath(args.library),  # as the command line names it
        "card_drift": {
            "t0_s": lib.card.device.drift_t0_s,
            "nu_mean": lib.card.device.drift_nu_mean,
            "nu_sigma": lib.card.device.drift_nu_sigma,
        },
        "chips": args.chips,
        "n_samples": len(y_test),
        "software_accuracy": software,
        "no_drift_accuracy": no_drift.accuracy_mean,
        "rows": rows,
        "wall_s": time.perf_counter() - t_start,
    }
    js = args.out
    js.write_text(json.dumps(doc, indent=2) + "\n")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for mode, mk in zip(MODES, ("o", "s", "^"), strict=True):
        ax.semilogx(TIMES_S, [100 * float(r[mode]) for r in rows], marker=mk, label=mode)
    ax.axhline(100 * no_drift.accuracy_mean, color="gray", ls=":", label="no drift")
    ax.set_xlabel("time since programming t (s)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(f"{what}, all effects on, {args.chips} chips", fontsize=8)
    ax.legend(title="drift compensation")
    fig.tight_layout()
    png = js.with_suffix(".png")
    with atomic_path(png) as tmp:
        fig.savefig(tmp, format="png", metadata=png_metadata())
    plt.close(fig)

    print(
        f"software {software * 100:.2f} %, chip without drift {no_drift.accuracy_mean * 100:.2f} %"
    )
    print(f"{'t (s)':>10} " + " ".join(f"{m:>8}" for m in MODES))
    for r in rows:
        print(f"{float(r['t_s']):>10g} " + " ".join(f"{float(r[m]) * 100:>7.2f}%" for m in MODES))
    print(f"wrote {js} and {png} ({doc['wall_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
