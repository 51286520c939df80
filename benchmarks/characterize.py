"""Characterization speed: quick and full wall time, SPICE runs per second, 2 jobs vs 1.

Each measurement starts from an empty SPICE cache, so every run is really simulated.
Printed: wall time of ``cosim characterize --quick`` with 1 and 2 ngspice workers (and the
speed-up of 2 over 1), SPICE runs per second, and — unless ``--skip-full`` — the wall time
of a full characterization with 2 workers.

Usage::

    python benchmarks/characterize.py [--card FILE] [--skip-full] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path


def run(card, quick: bool, jobs: int, keep: Path | None = None) -> dict:
    from cosim.characterize.pipeline import run_characterization

    with tempfile.TemporaryDirectory(prefix="cosim-bench-") as d:
        t = time.perf_counter()
        rep = run_characterization(
            card,
            keep or Path(d) / "lib",
            quick=quick,
            jobs=jobs,
            cache_dir=Path(d) / "cache",
            log=lambda s: None,
        )
        wall = time.perf_counter() - t
    runs = rep.runner_stats["simulated"]
    return {
        "quick": quick,
        "jobs": jobs,
        "wall_s": wall,
        "spice_runs": runs,
        "spice_runs_per_s": runs / wall,
        "block_s": rep.block_s,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--card", type=Path, default=None)
    ap.add_argument("--skip-full", action="store_true")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument(
        "--keep-full",
        type=Path,
        default=None,
        help="write the full run's library here (its validation.json holds the "
        "128x128 extrapolation)",
    )
    args = ap.parse_args(argv)
    from cosim.card import load_card

    card = load_card(args.card)
    res = {"quick_1_job": run(card, True, 1)}
    print(f"quick, 1 job: {res['quick_1_job']['wall_s']:.1f} s", flush=True)
    res["quick_2_jobs"] = run(card, True, 2)
    print(f"quick, 2 jobs: {res['quick_2_jobs']['wall_s']:.1f} s", flush=True)
    res["speedup_2_jobs_over_1"] = res["quick_1_job"]["wall_s"] / res["quick_2_jobs"]["wall_s"]
    if not args.skip_full:
        res["full_2_jobs"] = run(card, False, 2, args.keep_full)
    for k, v in res.items():
        if isinstance(v, dict):
            print(
                f"{k:>14}: {v['wall_s']:7.1f} s, {v['spice_runs']} SPICE runs, "
                f"{v['spice_runs_per_s']:.2f} runs/s"
            )
        else:
            print(f"{k:>14}: {v:.2f}")
    if args.json:
        args.json.write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
