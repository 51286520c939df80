"""Which hardware effect costs a model its accuracy on the chip: a one-at-a-time ablation.

For one model file and one surrogate library, ``cosim evaluate``'s engine is run with every
non-ideality on (the baseline), with each effect of :data:`cosim.engine.config.EFFECTS_OFF`
turned off alone, with each turned on alone (every other off), with every effect off, and
with ``--partial-sums analog`` and ``psum_range`` 1 (digital partial sums spanning ``±hi``
instead of ``±2 hi``). Every run uses the same chips (seed, ``--chips``) and test images
(``--limit``), so the differences are the effects' own. Prints a table (accuracy mean and
the per-chip values) and writes it as JSON.

    PYTHONPATH=. python benchmarks/chip_ablation.py --model M.npz --dataset fashion-mnist \\
        [--library tests/data/library-quick] [--limit 2000] [--chips 3] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def runs() -> list[tuple[str, dict]]:
    """(name, EngineConfig changes) of every run, the baseline first."""
    from cosim.engine.config import EFFECTS_OFF

    out: list[tuple[str, dict]] = [("every effect on", {})]
    out += [(f"{k} off", {k: False}) for k in EFFECTS_OFF]
    out += [(f"only {k} on", {**EFFECTS_OFF, k: True}) for k in EFFECTS_OFF]
    out += [("every effect off", dict(EFFECTS_OFF))]
    out += [
        ("partial sums analog", {"partial_sums": "analog"}),
        ("psum_range 1", {"psum_range": 1.0}),
    ]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--dataset", default="fashion-mnist")
    ap.add_argument("--library", type=Path, default=ROOT / "tests" / "data" / "library-quick")
    ap.add_argument("--limit", type=int, default=2000, help="first N test images")
    ap.add_argument("--chips", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)

    from cosim.datasets import load_dataset
    from cosim.engine.config import EngineConfig
    from cosim.engine.evaluate import evaluate
    from cosim.library import load_library
    from cosim.model import integer_forward, load_model

    model = load_model(args.model)
    ds = load_dataset(args.dataset)
    x, y = ds.x_test[: args.limit], ds.y_test[: args.limit]
    library = load_library(args.library)
    ref = float(np.mean(integer_forward(model, x).predictions == y))
    print(f"{args.model}: integer reference {100 * ref:.2f} % on {len(x)} test images")
    rows = []
    for name, change in runs():
        t = time.perf_counter()
        cfg = EngineConfig(chips=args.chips, seed=args.seed, **change)
        r = evaluate(model, library, x, y, cfg)
        per = [float(a) for a in r.accuracy_per_chip]
        rows.append({"run": name, "change": change, "accuracy_mean": float(np.mean(per)),
                     "accuracy_per_chip": per, "wall_s": time.perf_counter() - t})  # fmt: skip
        chips = ", ".join(f"{100 * a:.2f}" for a in per)
        print(f"  {name:<28} {100 * np.mean(per):6.2f} %  ({chips})")
    if args.json:
        out = {
            "model": str(args.model),
            "library": str(args.library),
            "dataset": args.dataset,
            "images": len(x),
            "chips": args.chips,
            "seed": args.seed,
            "integer_reference_accuracy": ref,
            "runs": rows,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
