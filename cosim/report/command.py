"""``cosim report``: arguments, the run, and a short summary on stdout.

Example::

    cosim report --quick --out runs/report                 # digits MLP, minutes
    cosim report --dataset fashion-mnist --library LIB --jobs 2 --out runs/report-full

``configure`` only touches argparse; ``run`` imports the study.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from cosim import argcheck as ac
from cosim.cluster import add_scheduler_argument, scheduler_address, unused_with_scheduler


def configure(p: argparse.ArgumentParser) -> None:
    """Add the sub-command's arguments (import-light)."""
    p.add_argument(
        "--out", type=ac.path, required=True, help="output directory (report.md, report.json, PNGs)"
    )
    p.add_argument(
        "--card",
        type=ac.path,
        default=None,
        help="hardware card (TOML); default: the library's card, or the card shipped with cosim",
    )
    p.add_argument(
        "--dataset",
        default=None,
        help="dataset of the main experiments (default: digits with --quick, else "
        "fashion-mnist); the architecture follows its shape: 1x28x28 LeNet-5, 3x32x32 the "
        "six-conv CNN, otherwise the MLP",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="reduced study: the digits MLP everywhere, few epochs, a 4x4 bit grid "
        "(minutes on 2 cores)",
    )
    p.add_argument(
        "--library",
        type=ac.path,
        default=None,
        help="surrogate library from cosim characterize (default: characterize the card "
        "into OUT/library, quick or full per --quick)",
    )
    p.add_argument(
        "--jobs",
        type=ac.workers,
        default=1,
        help="worker processes for training and evaluation (and ngspice when characterizing)",
    )
    add_scheduler_argument(p, "the training, evaluations and any characterization")


def run(args: argparse.Namespace) -> int:
    """Run the study and print the headline numbers; returns the exit status."""
    from cosim.fileio import REPORT_MARKER, check_output_dir
    from cosim.report.study import StudyOptions, run_study

    check_output_dir(args.out, kind="report", marker=REPORT_MARKER)
    address = scheduler_address(args.scheduler)
    if address:
        unused_with_scheduler("report", ["--jobs"] if args.jobs != 1 else [])
    opts = StudyOptions(
        scheduler=address,
        out=args.out,
        card=args.card,
        dataset=args.dataset,
        quick=args.quick,
        library=args.library,
        jobs=args.jobs,
        command=" ".join(["cosim", *map(shlex.quote, sys.argv[1:])])
        if sys.argv and Path(sys.argv[0]).name == "cosim"
        else _command(args),
    )
    rep = run_study(opts)
    print(summary(rep, args.out))
    return 0


def _command(args: argparse.Namespace) -> str:
    parts = ["cosim report"]
    for key in ("card", "dataset", "library", "out"):
        v = getattr(args, key)
        if v is not None:
            parts.append(f"--{key} {shlex.quote(str(v))}")
    if args.quick:
        parts.append("--quick")
    if args.jobs != 1:
        parts.append(f"--jobs {args.jobs}")
    if args.scheduler is not None:
        parts.append(f"--scheduler {shlex.quote(args.scheduler)}")
    return " ".join(parts)


def summary(rep: dict, out: Path) -> str:
    """The readable summary: headline numbers and where the report is."""
    from cosim.report.markdown import headlines

    rows = headlines(rep)
    w = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    lines = ["", "cosim report summary", "-" * (w + w1 + 30)]
    lines += [f"{r[0]:<{w}}  {r[1]:<{w1}}  {r[2]}" for r in rows]
    t = rep["timing"]
    lines += [
        "",
        f"{len(rep['figures'])} figures, report.md and report.json in {out}",
        f"{t['total_s']:.0f} s ({t['tasks_run']} tasks run, {t['tasks_cached']} from the cache; "
        f"{t['experiments_cached']} of {t['experiments']} experiments read back whole)",
    ]
    return "\n".join(lines)
