"""Robustness of LeNet-5 on Fashion-MNIST to weight and ADC variation (Bao et al. 2022).

For each model (W4A3 on the default card, W8A8 on the same card with 256 device levels) it
sweeps the normalized weight variation ``nvw`` and the ADC comparison-level variation
``nva`` with the engine, every other non-ideality off (as in the paper: one variation at a
time), over Monte-Carlo chips, and reports the largest variation that keeps the accuracy
within ``--margin`` of the noiseless accuracy. Results: JSON + one PNG per sweep.

Partial sums are analog (one conversion per output at the activation precision, as in the
paper): with the engine's default digital partial sums ``nva`` would act on the 8-bit
partial-sum converters instead of the activation's, and say nothing about ``A``.

Usage::

    python benchmarks/robustness.py --w4a3 M4.npz --lib4 LIB --w8a8 M8.npz --lib8 LIB8 \\
        [--limit 2000] [--chips 3] [--out benchmarks/results/robustness]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--w4a3", type=Path, required=True)
    ap.add_argument("--lib4", type=Path, required=True)
    ap.add_argument("--w8a8", type=Path, required=True)
    ap.add_argument("--lib8", type=Path, required=True)
    ap.add_argument(
        "--card8",
        type=Path,
        default=None,
        help="what-if card for W8A8 (e.g. examples/cards/pcm-8bit-levels.toml)",
    )
    ap.add_argument("--limit", type=int, default=2000)
    ap.add_argument("--chips", type=int, default=3)
    ap.add_argument("--margin", type=float, default=0.01)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/robustness"))
    args = ap.parse_args(argv)

    from cosim.datasets import load_dataset
    from cosim.engine.config import EFFECTS_OFF, EngineConfig
    from cosim.engine.sweep import SweepSpec, plot_sweep, run_sweep
    from cosim.library import load_library
    from cosim.model import load_model

    ds = load_dataset("fashion-mnist")
    x, y = ds.x_test[: args.limit], ds.y_test[: args.limit]
    args.out.mkdir(parents=True, exist_ok=True)
    sweeps = {"nvw": "nvw=0:0.2:0.02", "nva": "nva=0:0.2:0.01"}
    results = {
        "limit": args.limit,
        "chips": args.chips,
        "margin": args.margin,
        "partial_sums": "analog",
        "runs": {},
    }
    from cosim.card import load_card

    card8 = load_card(args.card8) if args.card8 else None
    for name, mpath, lpath, card in (
        ("W4A3", args.w4a3, args.lib4, None),
        ("W8A8", args.w8a8, args.lib8, card8),
    ):
        model, lib = load_model(mpath), load_library(lpath)
        base = EngineConfig(chips=args.chips, partial_sums="analog", **EFFECTS_OFF)
        for param, spec in sweeps.items():
            t0 = time.perf_counter()
            res = run_sweep(model, lib, x, y, base, SweepSpec.parse(spec), args.margin, card)
            res["wall_s"] = time.perf_counter() - t0
            results["runs"][f"{name}-{param}"] = res
            plot_sweep(
                res,
                args.out / f"lenet5-{name.lower()}-{param}.png",
                f"LeNet-5 {name}, Fashion-MNIST ({args.limit} test images)",
            )
            print(
                f"{name} {param}: noiseless {res['reference_accuracy'] * 100:.2f} %, largest "
                f"{param} within {args.margin * 100:g} points: "
                f"{res['largest_value_within_margin']}",
                flush=True,
            )
    (args.out / "robustness.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
