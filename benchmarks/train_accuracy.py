"""Accuracy of ``cosim train``: the issue's acceptance numbers, with the commands that make them.

Suites (``--suite``, repeatable; default all):

``digits``
    MLP on scikit-learn digits: float, per-layer W4A3, global W4A3 (must be >= 95 % and
    within 2 points of float, in <= 2 minutes), float all-unipolar, global W2A3 bipolar and
    all-unipolar.
``fashion``
    LeNet-5 on Fashion-MNIST: float (>= 89 %), global W4A3 (within 1.5 points of float),
    per-layer W4A3 and global W2A1.
``unipolar``
    LeNet-5 on Fashion-MNIST, global W4A3, unipolar fraction 0.2 .. 1.0 (0 is the fashion
    suite's global W4A3 run).

Each run is one ``cosim train ... --json`` process (``--jobs`` at a time, under ``nice``);
its full metrics and history go to ``benchmarks/results/runs/NAME.json`` and the summary to
``benchmarks/results/train_accuracy.json`` and ``.md``, both naming the exact command.

    python benchmarks/train_accuracy.py --suite digits
    python benchmarks/train_accuracy.py --jobs 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"

LENET = ["--dataset", "fashion-mnist", "--model", "lenet5"]
MLP = ["--dataset", "digits", "--model", "mlp"]

SUITES: dict[str, list[tuple[str, list[str]]]] = {
    "digits": [
        ("digits-mlp-float", [*MLP, "--scheme", "float"]),
        (
            "digits-mlp-per-layer-w4a3",
            [*MLP, "--scheme", "per-layer", "--w-bits", "4", "--a-bits", "3"],
        ),
        ("digits-mlp-global-w4a3", [*MLP, "--scheme", "global", "--w-bits", "4", "--a-bits", "3"]),
        ("digits-mlp-float-unipolar1.0", [*MLP, "--scheme", "float", "--unipolar-fraction", "1.0"]),
        ("digits-mlp-global-w2a3", [*MLP, "--scheme", "global", "--w-bits", "2", "--a-bits", "3"]),
        (
            "digits-mlp-global-w2a3-unipolar1.0",
            [
                *MLP,
                "--scheme",
                "global",
                "--w-bits",
                "2",
                "--a-bits",
                "3",
                "--unipolar-fraction",
                "1.0",
            ],
        ),
    ],
    "fashion": [
        ("fashion-lenet5-float", [*LENET, "--scheme", "float"]),
        (
            "fashion-lenet5-global-w4a3",
            [*LENET, "--scheme", "global", "--w-bits", "4", "--a-bits", "3"],
        ),
        (
            "fashion-lenet5-per-layer-w4a3",
            [*LENET, "--scheme", "per-layer", "--w-bits", "4", "--a-bits", "3"],
        ),
        (
            "fashion-lenet5-global-w2a1",
            [*LENET, "--scheme", "global", "--w-bits", "2", "--a-bits", "1"],
        ),
    ],
    "unipolar": [
        (
            f"fashion-lenet5-global-w4a3-unipolar{f}",
            [
                *LENET,
                "--scheme",
                "global",
                "--w-bits",
                "4",
                "--a-bits",
                "3",
                "--unipolar-fraction",
                f,
            ],
        )
        for f in ("0.2", "0.4", "0.6", "0.8", "1.0")
    ],
}


def run_suites(names: list[str], jobs: int) -> list[dict]:
    todo = [(n, a) for s in names for n, a in SUITES[s]]
    (RESULTS / "runs").mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="cosim-bench-"))
    env = dict(os.environ, COSIM_PROGRESS="0")
    running: list[tuple] = []
    done = []
    while todo or running:
        while todo and len(running) < jobs:
            name, args = todo.pop(0)
            argv = [
                *args,
                "--out",
                str(tmp / f"{name}.npz"),
                "--json",
                str(RESULTS / "runs" / f"{name}.json"),
            ]
            log = open(tmp / f"{name}.log", "w")  # closed when the run ends
            cmd = ["nice", sys.executable, "-m", "cosim", "train", *argv]
            running.append(
                (
                    name,
                    args,
                    subprocess.Popen(cmd, stdout=log, stderr=log, env=env),
                    time.time(),
                    log,
                )
            )
            print(f"started  {name}", flush=True)
        time.sleep(2)
        for item in list(running):
            name, args, proc, t0, log = item
            if proc.poll() is None:
                continue
            running.remove(item)
            log.close()
            m = (
                json.loads((RESULTS / "runs" / f"{name}.json").read_text())
                if proc.returncode == 0
                else {}
            )
            rec = {
                "name": name,
                "command": "cosim train " + " ".join(args) + " --out MODEL.npz --json RUN.json",
                "returncode": proc.returncode,
                "test_accuracy": m.get("test_accuracy"),
                "accuracy_source": m.get("test_accuracy_source"),
                "prediction_agreement": m.get("prediction_agreement"),
                "unipolar_filters": m.get("unipolar_filters"),
                "hidden_filters": m.get("hidden_filters"),
                "epochs": len(m.get("history", [])),
                "train_wall_s": m.get("wall_time_s"),
                "process_wall_s": time.time() - t0,
            }
            done.append(rec)
            acc = rec["test_accuracy"]
            print(
                f"finished {name}: {'FAILED' if acc is None else f'{100 * acc:.2f}%'}", flush=True
            )
    return done


def write_summary(records: list[dict], produced_by: str) -> None:
    path = RESULTS / "train_accuracy.json"
    old = json.loads(path.read_text()) if path.is_file() else {"runs": []}
    for r in old["runs"]:
        r.setdefault("produced_by", old.get("produced_by"))
    for r in records:
        r["produced_by"] = produced_by
    by_name = {r["name"]: r for r in old["runs"]}
    by_name.update({r["name"]: r for r in records})
    order = [n for s in SUITES.values() for n, _ in s]
    runs = [by_name[n] for n in order if n in by_name]
    summary = {"machine": f"{os.cpu_count()} cores, {os.uname().machine}", "runs": runs}
    producers = sorted({r["produced_by"] for r in runs if r.get("produced_by")})
    path.write_text(json.dumps(summary, indent=2) + "\n")
    lines = [
        "# cosim train accuracy",
        "",
        "Produced by " + ", ".join(f"`{p}`" for p in producers) + f" on {summary['machine']}",
        "(under `nice`, on a machine shared with other work, so times vary). Test accuracy of",
        "quantized models comes from the integer reference path (`integer_forward`);",
        "'process (s)' is the whole `cosim train` process, data loading included.",
        "",
        "| run | test accuracy | unipolar filters | epochs | train (s) | process (s) | command |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        acc = "failed" if r["test_accuracy"] is None else f"{100 * r['test_accuracy']:.2f}%"
        uni = f"{r['unipolar_filters']}/{r['hidden_filters']}" if r["hidden_filters"] else ""
        wall = f"{r['train_wall_s']:.1f}" if r["train_wall_s"] else ""
        proc = f"{r['process_wall_s']:.1f}"
        lines.append(
            f"| {r['name']} | {acc} | {uni} | {r['epochs']} | {wall} | {proc} | `{r['command']}` |"
        )
    (RESULTS / "train_accuracy.md").write_text("\n".join(lines) + "\n")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suite", action="append", choices=sorted(SUITES), default=None)
    ap.add_argument("--jobs", type=int, default=1)
    args = ap.parse_args(argv)
    records = run_suites(args.suite or list(SUITES), max(1, args.jobs))
    cmd = "python benchmarks/train_accuracy.py " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    write_summary(records, cmd.strip())
    print((RESULTS / "train_accuracy.md").read_text())


if __name__ == "__main__":
    main()
