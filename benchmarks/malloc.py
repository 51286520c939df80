"""glibc's allocator and cosim's NumPy work: the effect of :func:`cosim.memory.tune_malloc`.

Each setting runs in its own subprocess (glibc reads ``MALLOC_*`` variables when a process
starts), the settings alternating ``--repeat`` times (3) on the same machine state, the
fastest of each kept (other work on a shared machine only ever slows a run down):

* ``glibc``: glibc's defaults (``COSIM_TUNE_MALLOC=0``);
* ``nanny``: what a Dask nanny gives its worker, ``MALLOC_TRIM_THRESHOLD_=65536``, which
  also pins the mmap threshold at 128 kB (``COSIM_TUNE_MALLOC=0``);
* ``nanny+cosim``: the nanny's variable, then cosim's tuning (what a cosim task on a Dask
  worker gets);
* ``cosim``: cosim's tuning (what every ``cosim`` command and pool worker gets).

The work, timed in the subprocess: three 10-epoch trainings of the digits MLP (global
W4A3, seeds 0-2), and ``cosim evaluate``'s engine on the third model over the digits test
split with 3 chips on the committed quick library. The trained levels and the predictions
are hashed: every setting must give the same (``same_results``). Ratios are to ``glibc``.

Usage::

    python benchmarks/malloc.py [--repeat 3] [--json benchmarks/results/malloc.json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ROOT / "tests" / "data" / "library-quick"
SETTINGS: dict[str, dict[str, str]] = {
    "glibc": {"COSIM_TUNE_MALLOC": "0"},
    "nanny": {"COSIM_TUNE_MALLOC": "0", "MALLOC_TRIM_THRESHOLD_": "65536"},
    "nanny+cosim": {"MALLOC_TRIM_THRESHOLD_": "65536"},
    "cosim": {},
}


def child() -> dict[str, Any]:
    """The timed work in this process (its allocator set by the environment)."""
    import numpy as np

    from cosim.blas import single_thread
    from cosim.datasets import load_dataset
    from cosim.engine.config import EngineConfig
    from cosim.engine.evaluate import evaluate
    from cosim.library import load_library
    from cosim.memory import tune_malloc
    from cosim.train.trainer import TrainConfig, train

    tuned = tune_malloc()
    ds = load_dataset("digits")
    digest = hashlib.sha256()
    with single_thread():
        t0 = time.perf_counter()
        for seed in range(3):
            cfg = TrainConfig(
                model="mlp", scheme="global", w_bits=4, a_bits=3, epochs=10, seed=seed
            )
            out = train(cfg, ds, np.random.default_rng(seed))
            for lay in out.model.hidden_layers:
                digest.update(np.ascontiguousarray(lay.n_w).tobytes())
        train_s = time.perf_counter() - t0
        lib = load_library(LIBRARY)
        t0 = time.perf_counter()
        res = evaluate(out.model, lib, ds.x_test, ds.y_test, EngineConfig(chips=3, seed=0))
        evaluate_s = time.perf_counter() - t0
    for p in res.predictions:
        digest.update(np.asarray(p).tobytes())
    return {
        "tuned": tuned,
        "train_s": train_s,
        "evaluate_s": evaluate_s,
        "digest": digest.hexdigest(),
    }


def run_setting(name: str) -> dict[str, Any]:
    """One subprocess under setting ``name``; its measurements."""
    env = {k: v for k, v in os.environ.items() if k not in ("MALLOC_TRIM_THRESHOLD_",)}
    env.update({"COSIM_PROGRESS": "0", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"})
    env.update(SETTINGS[name])
    proc = subprocess.run(
        [sys.executable, __file__, "--child"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=1800,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{name}: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=3, help="alternating rounds (3)")
    ap.add_argument("--json", type=Path, default=None, help="write the results here")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child()))
        return 0
    runs: dict[str, list[dict[str, Any]]] = {n: [] for n in SETTINGS}
    for r in range(args.repeat):
        for name in SETTINGS:
            runs[name].append(run_setting(name))
            last = runs[name][-1]
            print(
                f"round {r + 1}: {name:<12} train {last['train_s']:6.2f} s, "
                f"evaluate {last['evaluate_s']:6.2f} s",
                flush=True,
            )
    best = {
        n: {k: min(x[k] for x in rs) for k in ("train_s", "evaluate_s")} for n, rs in runs.items()
    }
    digests = {x["digest"] for rs in runs.values() for x in rs}
    doc = {
        "command": "python benchmarks/malloc.py" + "".join(f" {a}" for a in (argv or sys.argv[1:])),
        "date_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "fastest_s": best,
        "over_glibc": {n: {k: b[k] / best["glibc"][k] for k in b} for n, b in best.items()},
        "tuned": {n: rs[0]["tuned"] for n, rs in runs.items()},
        "same_results": len(digests) == 1,
        "runs": runs,
    }
    same = doc["same_results"]
    print(f"\nfastest of {args.repeat}, ratio to glibc's defaults (same results: {same})")
    print(f"  {'setting':<12} {'train s':>8} {'ratio':>6} {'evaluate s':>11} {'ratio':>6}")
    for n, b in best.items():
        o = doc["over_glibc"][n]
        print(
            f"  {n:<12} {b['train_s']:>8.2f} {o['train_s']:>6.2f} {b['evaluate_s']:>11.2f} "
            f"{o['evaluate_s']:>6.2f}"
        )
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(doc, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
