"""Scale-out: cosim's work on Dask workers against the local pools, and the study on paper.

Measured on this machine, in one run (so the ratios compare the same machine state; each
cosim command is a subprocess with ``COSIM_PROGRESS=0``):

* **quick characterization** of the default card (``cosim characterize --quick --seed 0``),
  every run with its own fresh, empty SPICE cache (``--cache-dir``) so every circuit is
  simulated: the local ngspice pool with ``--jobs 1`` and ``--jobs 2``, and ``--scheduler``
  on a real Dask cluster of 1 and 2 workers (``python -m dask scheduler`` and ``python -m
  dask worker --nthreads 1`` subprocesses on 127.0.0.1, a fresh cluster per run, killed at
  the end even on error). Wall seconds of the command (the client's connection included,
  the cluster's start-up not), the ratio dask / local for the same number of workers, and
  whether every library's ``arrays.npz`` and ``validation.json`` are byte-identical to
  the ``--jobs 1`` one;
* **quick report** (``cosim report --quick --library tests/data/library-quick``), a fresh
  ``--out`` (so a fresh result cache) and a fresh ``COSIM_CACHE_DIR`` each: local
  ``--jobs 1`` and ``--jobs 2`` (the spawn process pool) against Dask with 1 and 2 workers;
  wall seconds, ratios, and whether ``report.json`` equals the ``--jobs 1`` one apart from
  ``timing``, ``command``, ``library.seconds`` and ``accuracy_grid_details.train_seconds``.
  Each run's own ``timing.task_graph`` also goes through the scheduler model below on its
  number of workers: the model's task-phase wall against the measured ``timing.tasks_s``;
* both commands once more on the most workers, on Dask workers whose nanny leaves glibc's
  malloc alone (``dask-no-malloc-trim``: a ``DASK_CONFIG`` file sets
  ``distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_`` to null; ``--skip-no-trim``
  leaves them out). By default the nanny starts its worker with
  ``MALLOC_TRIM_THRESHOLD_=65536``, and setting it also pins glibc's mmap threshold at
  128 kB, so every larger NumPy temporary is a fresh ``mmap`` whose pages fault in anew:
  a local ``cosim report --quick --jobs 1`` with only that variable set took 45.7
  worker-seconds of tasks instead of 27-30 (training 36.3, against 25.1 with only the BLAS
  thread variables the nanny also sets);
* **cluster start-up**, apart from the runs: scheduler plus k workers as subprocesses until
  a client sees all k, and ``distributed.LocalCluster(n_workers=k, threads_per_worker=1,
  processes=True)`` until its client sees all k (seconds);
* **per-task overhead for tiny tasks**: ``--tiny`` (2000) no-op tasks on 2 Dask workers,
  submitted at once then gathered (``client.submit`` + ``client.gather``; and through
  cosim's own :meth:`cosim.cluster.Cluster.gather`, which handles each result as it comes),
  and 200 one-at-a-time round trips; the same against a ``ProcessPoolExecutor(2)`` with the
  ``spawn`` context (the mechanism of ``cosim report --jobs``), whose start-up is timed
  apart. Seconds per task (printed in µs).

On paper, from a report's ``timing.task_graph`` (``--graph``; default the committed full
study, ``benchmarks/results/report/report.json``: every task's kind, the train tasks it
needs and its own measured seconds, here measured with ``--jobs 2`` on a shared 2-core
machine): tasks by kind, total worker-seconds, the critical path (the longest chain of
dependent tasks: a train task then its slowest evaluation) and the predicted wall time of
the task phase on P = 1, 2, 4, ..., 128 workers by an event-driven greedy list scheduler
(a task is ready when the models it needs are trained; a free worker takes the first ready
task in ``cosim.report.runner``'s order: train tasks first, those whose models most other
tasks need first, then the rest in the study's order; each task costs its measured seconds
plus the measured one-at-a-time Dask round trip, a generous per-task overhead, or
``--overhead-s``). Also the same scheduler with critical-path-first order (longest
remaining chain first: it needs every duration in advance, which cosim does not have), and
the lower bound max(critical path, total / P).
The predictions assume a task takes as long on any worker as it did in the measured run
(one thread per worker, no data-transfer cost beyond the per-task overhead). Written to
the ``--json`` file's ``.png`` sibling (or ``--png``) as a log-log plot.

The committed ``benchmarks/results/scaleout.json`` and ``.png`` come from::

    python benchmarks/scaleout.py --json benchmarks/results/scaleout.json

(shared 2-core machine, load average 1-2, about 9 minutes). Measured there: quick
characterization 75.1 s local / 83.7 s Dask on 1 worker (x1.11), 44.1 s / 49.5 s on 2
(x1.12), 44.1 s on 2 workers without the malloc trim (x1.00); quick report 31.1 s / 51.8 s
on 1 (x1.67), 20.5 s / 31.2 s on 2 (x1.52), 23.6 s without the trim (x1.15); every library
and report identical to the local ``--jobs 1`` one. A scheduler and 1-2 workers start in
1.0-1.3 s, a ``LocalCluster`` in 0.4 s. A no-op task costs 1.6 ms on Dask (2.5 ms through
``Cluster.gather``, 11 ms one at a time) against 0.15 ms (0.36 ms) on the spawn pool. On
paper the full study is 172 tasks, 5077 worker-seconds, critical path 397 s (its longest
training, then one evaluation): 644 s predicted on 8 workers, 404 s on 32, 397 s on 128;
cosim's order starts that training only in the third wave, so 16 workers take 474 s where
longest-first reaches the 397 s bound.

``--skip-measure`` (or ``--skip-characterize``,
``--skip-report``, ``--skip-tiny``) leaves those measurements out, keeping any already in
the ``--json`` file; ``--graph MY_REPORT/report.json --skip-measure --png my.png`` predicts
your own study.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import heapq
import json
import math
import multiprocessing as mp
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_GRAPH = ROOT / "benchmarks" / "results" / "report" / "report.json"
DEFAULT_LIBRARY = ROOT / "tests" / "data" / "library-quick"
PREDICT_WORKERS = (1, 2, 4, 8, 16, 32, 64, 128)
MARKED_WORKERS = (8, 32, 128)
LATENCY_TASKS = 200
RUN_TIMEOUT_S = 3600.0
#: Dask configuration that stops the nanny setting MALLOC_TRIM_THRESHOLD_=65536 in its worker
NO_MALLOC_TRIM_YAML = """\
distributed:
  nanny:
    pre-spawn-environ:
      MALLOC_TRIM_THRESHOLD_: null
"""
#: the Dask runs whose workers keep glibc's malloc defaults (see NO_MALLOC_TRIM_YAML)
NO_TRIM = "dask-no-malloc-trim"
BASELINE = "baseline"  # a local run of another checkout (--baseline)
BASELINE_TREE: Path | None = None
#: report.json entries that may differ between equal studies (seconds and the command line)
UNCOMPARED = ("timing", "command", "library.seconds", "accuracy_grid_details.train_seconds")


# ------------------------------------------------------------------------------- helpers
def _noop(x: int) -> int:
    """The tiny task: returns its argument."""
    return x


def _env(**extra: str) -> dict[str, str]:
    """This process's environment for a cosim subprocess: no progress bars, no scheduler
    from the environment (each command names its own), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k != "COSIM_SCHEDULER"}
    env["COSIM_PROGRESS"] = "0"
    env.update(extra)
    return env


def _load() -> float:
    """The 1-minute load average (runnable processes on this shared machine)."""
    return os.getloadavg()[0]


class DaskCluster:
    """A ``dask scheduler`` and ``k`` ``dask worker --nthreads 1`` on 127.0.0.1, each its
    own subprocess and process group (a worker's ngspice processes included); use as a
    context manager, which kills them all on exit, error or not.

    ``startup_s`` is the wall time (s) from starting the scheduler until a client sees all
    ``k`` workers; ``scheduler_s`` until the scheduler wrote its address.
    """

    def __init__(self, root: Path, workers: int, malloc_trim: bool = True) -> None:
        self.root = root
        self.k = workers
        self.malloc_trim = malloc_trim
        self.file = root / "scheduler.json"
        self.procs: list[subprocess.Popen[bytes]] = []
        self.address = ""
        self.scheduler_s = math.nan
        self.startup_s = math.nan

    def __enter__(self) -> DaskCluster:
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _spawn(self, name: str, args: list[str], env: dict[str, str] | None = None) -> None:
        with open(self.root / f"{name}.log", "wb") as log:  # Popen keeps its own copy
            self.procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "dask", *args],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env or _env(),
                    cwd=self.root,
                    start_new_session=True,
                )
            )

    def _start(self) -> None:
        from distributed import Client

        self.root.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        scheduler = "scheduler --host 127.0.0.1 --port 0 --no-dashboard --scheduler-file"
        self._spawn("scheduler", [*scheduler.split(), str(self.file)])
        deadline = time.monotonic() + 120
        while not self.file.is_file():
            if self.procs[0].poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("dask scheduler did not start:\n" + self.log("scheduler"))
            time.sleep(0.05)
        self.scheduler_s = time.perf_counter() - t0
        self.address = json.loads(self.file.read_text())["address"]
        env = _env()
        if not self.malloc_trim:  # the nanny's worker process keeps glibc's malloc defaults
            conf = self.root / "dask-config"
            conf.mkdir()
            (conf / "no-malloc-trim.yaml").write_text(NO_MALLOC_TRIM_YAML)
            env["DASK_CONFIG"] = str(conf)
        for i in range(self.k):
            worker = ["worker", "--scheduler-file", str(self.file), "--nthreads", "1"]
            name = ["--no-dashboard", "--name", f"w{i}"]
            self._spawn(
                f"worker{i}",
                [*worker, *name, "--local-directory", str(self.root / f"w{i}")],
                env,
            )
        with Client(self.address, timeout=120, set_as_default=False) as client:
            client.wait_for_workers(self.k, timeout=120)
        self.startup_s = time.perf_counter() - t0

    def log(self, name: str) -> str:
        """The last 3000 characters of a process's output (``scheduler``, ``worker0``...)."""
        path = self.root / f"{name}.log"
        return path.read_text(errors="replace")[-3000:] if path.is_file() else ""

    def close(self) -> None:
        """SIGTERM every process group, then SIGKILL what is left after 10 s."""
        for proc in reversed(self.procs):  # workers first, then the scheduler
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)  # anything the group left behind
        self.procs.clear()


def _run_cosim(args: list[str], log: Path, env: dict[str, str], cwd: Path | None = None) -> float:
    """Run ``python -m cosim ARGS`` in the repository root (or ``cwd``: another checkout,
    whose ``cosim`` then comes first on the path); its wall time (s).

    Raises
    ------
    RuntimeError
        The command failed (the end of its output is in the message).
    """
    with open(log, "wb") as fh:
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "cosim", *args],
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd or ROOT,
            timeout=RUN_TIMEOUT_S,
            check=False,
        )
        wall = time.perf_counter() - t0
    if proc.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"cosim {' '.join(args)} failed ({proc.returncode}):\n{tail}")
    return wall


def _same_bytes(a: Path, b: Path, names: Sequence[str]) -> bool:
    """Whether every file of ``names`` is byte-identical in directories ``a`` and ``b``."""
    return all((a / n).read_bytes() == (b / n).read_bytes() for n in names)


def _comparable(report: dict[str, Any]) -> dict[str, Any]:
    """``report`` without the entries of :data:`UNCOMPARED`."""
    r = json.loads(json.dumps(report))
    for dotted in UNCOMPARED:
        *path, last = dotted.split(".")
        d = r
        for part in path:
            d = d.get(part, {})
        d.pop(last, None)
    return r


def _plan(workers: Sequence[int], no_trim: bool, baseline: bool = False) -> list[tuple[str, int]]:
    """The runs, in order: for each k of ``workers`` the local run on k then the Dask run
    on k (alternated, so a change in the machine's load hits both alike), with ``baseline``
    a local run of the baseline checkout before each pair; with ``no_trim`` last a Dask run
    on the most workers without the nanny's ``MALLOC_TRIM_THRESHOLD_``."""
    wheres = (BASELINE, "local", "dask") if baseline else ("local", "dask")
    runs = [(where, k) for k in workers for where in wheres]
    return runs + ([(NO_TRIM, max(workers))] if no_trim else [])


def _runs(
    plan: Sequence[tuple[str, int]],
    tmp: Path,
    name: str,
    local: Callable[..., dict[str, Any]],
    dask: Callable[[int, Path, DaskCluster], dict[str, Any]],
) -> list[dict[str, Any]]:
    """One row per run of ``plan`` (:func:`_plan`), each in its own directory
    ``tmp/NAME-WHEREk``; a Dask run on a fresh cluster of k workers."""
    rows = []
    for where, k in plan:
        d = tmp / f"{name}-{where}{k}"
        d.mkdir()
        load = _load()
        if where == "local":
            row = {"where": where, "workers": k, **local(k, d)}
        elif where == BASELINE:
            assert BASELINE_TREE is not None
            row = {"where": where, "workers": k, **local(k, d, BASELINE_TREE)}
        else:
            with DaskCluster(d / "cluster", k, malloc_trim=where != NO_TRIM) as cl:
                row = {
                    "where": where,
                    "workers": k,
                    "cluster_startup_s": cl.startup_s,
                    **dask(k, d, cl),
                }
        row["load_before"] = load
        row["load_after"] = _load()
        rows.append(row)
        print(
            f"  {name:<12} {where:<19} {k} worker(s): {row['wall_s']:7.1f} s"
            f"  (load {load:.1f} -> {row['load_after']:.1f})",
            flush=True,
        )
    return rows


def _ratios(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """``{where: {k: wall / local wall on k}}`` for every Dask run with a local one."""
    wall = {(r["where"], r["workers"]): r["wall_s"] for r in rows}
    out: dict[str, dict[str, float]] = {}
    for (where, k), w in wall.items():
        if where not in ("local", BASELINE) and ("local", k) in wall:
            out.setdefault(where, {})[str(k)] = w / wall[("local", k)]
    return out


def _over_baseline(rows: list[dict[str, Any]]) -> dict[str, float]:
    """``{k: local wall / baseline wall on k}``: today's local run against the baseline
    checkout's (below 1: faster than before)."""
    wall = {(r["where"], r["workers"]): r["wall_s"] for r in rows}
    return {
        str(k): w / wall[(BASELINE, k)]
        for (where, k), w in wall.items()
        if where == "local" and (BASELINE, k) in wall
    }


# ------------------------------------------------------------------- 1. characterization
def measure_characterize(plan: Sequence[tuple[str, int]], tmp: Path) -> dict[str, Any]:
    """Quick characterizations, local and on Dask, each with a fresh SPICE cache."""

    def args(d: Path) -> list[str]:
        return [
            *("characterize", "--quick", "--seed", "0", "--out", str(d / "lib")),
            *("--cache-dir", str(d / "spice-cache"), "--json", str(d / "characterize.json")),
        ]

    def facts(d: Path, wall: float) -> dict[str, Any]:
        summary = json.loads((d / "characterize.json").read_text())
        return {
            "wall_s": wall,
            "spice_runs": summary["runner"].get("simulated"),
            "spice_cached": summary["runner"].get("cached"),
            "ngspice_version": summary.get("ngspice_version"),
        }

    def local(k: int, d: Path, tree: Path | None = None) -> dict[str, Any]:
        wall = _run_cosim([*args(d), "--jobs", str(k)], d / "log.txt", _env(), tree)
        return facts(d, wall)

    def dask(k: int, d: Path, cl: DaskCluster) -> dict[str, Any]:
        wall = _run_cosim([*args(d), "--scheduler", cl.address], d / "log.txt", _env())
        return facts(d, wall)

    print("quick characterization (default card, seed 0, a fresh SPICE cache each):")
    rows = _runs(plan, tmp, "characterize", local, dask)
    ref = tmp / f"characterize-local{plan[0][1]}" / "lib"
    for r in rows:
        lib = tmp / f"characterize-{r['where']}{r['workers']}" / "lib"
        r["identical_to_reference"] = _same_bytes(lib, ref, ("arrays.npz", "validation.json"))
    return {
        "command": "cosim characterize --quick --seed 0 --out DIR --cache-dir EMPTY_DIR "
        "(--jobs K | --scheduler ADDRESS)",
        "reference": f"local --jobs {plan[0][1]}",
        "compared_files": ["arrays.npz", "validation.json"],
        "runs": rows,
        "over_local": _ratios(rows),
        "local_over_baseline": _over_baseline(rows),
        "all_identical": all(r["identical_to_reference"] for r in rows),
    }


# ---------------------------------------------------------------------- 2. quick report
def measure_report(plan: Sequence[tuple[str, int]], tmp: Path, library: Path) -> dict[str, Any]:
    """Quick reports, local and on Dask, each into a fresh output directory."""

    def args(d: Path) -> list[str]:
        return ["report", "--quick", "--library", str(library), "--out", str(d / "report")]

    def env(d: Path) -> dict[str, str]:
        return _env(COSIM_CACHE_DIR=str(d / "spice-cache"))

    def facts(d: Path, wall: float, k: int) -> dict[str, Any]:
        rep = json.loads((d / "report" / "report.json").read_text())
        timing = rep["timing"]
        graph = timing.get("task_graph", [])
        return {
            "wall_s": wall,
            "tasks": timing["tasks"],
            "tasks_run": timing["tasks_run"],
            "tasks_s": timing["tasks_s"],
            "task_compute_s": timing["task_compute_s"],
            "tasks_s_model": simulate(graph, k) if graph else None,
        }

    def local(k: int, d: Path, tree: Path | None = None) -> dict[str, Any]:
        wall = _run_cosim([*args(d), "--jobs", str(k)], d / "log.txt", env(d), tree)
        return facts(d, wall, k)

    def dask(k: int, d: Path, cl: DaskCluster) -> dict[str, Any]:
        wall = _run_cosim([*args(d), "--scheduler", cl.address], d / "log.txt", env(d))
        return facts(d, wall, k)

    print(f"quick report (--library {_rel(library)}, a fresh --out each):")
    rows = _runs(plan, tmp, "report", local, dask)
    ref = json.loads((tmp / f"report-local{plan[0][1]}" / "report" / "report.json").read_text())
    for r in rows:
        path = tmp / f"report-{r['where']}{r['workers']}" / "report" / "report.json"
        r["identical_to_reference"] = _comparable(json.loads(path.read_text())) == _comparable(ref)
    return {
        "command": f"cosim report --quick --library {_rel(library)} --out EMPTY_DIR "
        "(--jobs K | --scheduler ADDRESS), COSIM_CACHE_DIR=EMPTY_DIR",
        "reference": f"local --jobs {plan[0][1]}",
        "uncompared": list(UNCOMPARED),
        "runs": rows,
        "over_local": _ratios(rows),
        "local_over_baseline": _over_baseline(rows),
        "all_identical": all(r["identical_to_reference"] for r in rows),
    }


# ------------------------------------------------------------------ 3. start-up, overhead
def measure_local_cluster(workers: Sequence[int]) -> list[dict[str, Any]]:
    """Seconds for ``distributed.LocalCluster`` with k single-thread worker processes to be
    ready (its client sees all k), and to close."""
    from distributed import Client, LocalCluster

    rows = []
    for k in workers:
        t0 = time.perf_counter()
        with (
            LocalCluster(
                n_workers=k, threads_per_worker=1, processes=True, dashboard_address=None
            ) as lc,
            Client(lc, set_as_default=False) as client,
        ):
            client.wait_for_workers(k, timeout=120)
            ready = time.perf_counter() - t0
            t1 = time.perf_counter()
        rows.append({"workers": k, "startup_s": ready, "close_s": time.perf_counter() - t1})
    return rows


def measure_tiny(n: int, tmp: Path) -> dict[str, Any]:
    """Per-task cost of ``n`` no-op tasks on 2 Dask workers and on a spawn process pool."""
    from distributed import Client

    from cosim.cluster import Cluster

    os.environ["COSIM_PROGRESS"] = "0"  # cosim's gather draws no bar
    out: dict[str, Any] = {"tasks": n, "latency_tasks": LATENCY_TASKS, "workers": 2}
    with (
        DaskCluster(tmp / "tiny-cluster", 2) as cl,
        Client(cl.address, timeout=60, set_as_default=False) as client,
    ):
        client.gather([client.submit(_noop, i, pure=False) for i in range(20)])  # warm
        t0 = time.perf_counter()
        client.gather([client.submit(_noop, i, pure=False) for i in range(n)])
        out["dask_batch_s_per_task"] = (time.perf_counter() - t0) / n
        cosim_cluster = Cluster(client, cl.address)
        t0 = time.perf_counter()
        cosim_cluster.gather(
            [cosim_cluster.submit(_noop, i) for i in range(n)], lambda f, v: None, desc="tiny"
        )
        out["dask_cosim_gather_s_per_task"] = (time.perf_counter() - t0) / n
        t0 = time.perf_counter()
        for i in range(LATENCY_TASKS):
            client.submit(_noop, i, pure=False).result()
        out["dask_round_trip_s"] = (time.perf_counter() - t0) / LATENCY_TASKS
        out["dask_cluster_startup_s"] = cl.startup_s
    t0 = time.perf_counter()
    with ProcessPoolExecutor(2, mp_context=mp.get_context("spawn")) as pool:
        list(pool.map(_noop, range(2)))  # both processes started and serving
        out["pool_startup_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        futs = [pool.submit(_noop, i) for i in range(n)]
        for f in futs:
            f.result()
        out["pool_batch_s_per_task"] = (time.perf_counter() - t0) / n
        t0 = time.perf_counter()
        for i in range(LATENCY_TASKS):
            pool.submit(_noop, i).result()
        out["pool_round_trip_s"] = (time.perf_counter() - t0) / LATENCY_TASKS
    return out


# ------------------------------------------------------------------------- 4. on paper
def _children(graph: list[dict[str, Any]]) -> dict[str, list[str]]:
    """``{key: keys of the tasks that need it}`` (deps outside the graph are ignored)."""
    keys = {t["key"] for t in graph}
    out: dict[str, list[str]] = defaultdict(list)
    for t in graph:
        for d in t["deps"]:
            if d in keys:
                out[d].append(t["key"])
    return out


def bottom_levels(graph: list[dict[str, Any]], overhead_s: float = 0.0) -> dict[str, float]:
    """Each task's longest chain from its start to the end of the graph (s): its own
    seconds (plus ``overhead_s``) and the longest chain among the tasks that need it.

    Raises
    ------
    ValueError
        The dependencies form a cycle.
    """
    secs = {t["key"]: float(t["seconds"]) + overhead_s for t in graph}
    children = _children(graph)
    level: dict[str, float] = {}
    indeg = Counter({k: len(children.get(k, ())) for k in secs})
    stack = [k for k in secs if indeg[k] == 0]  # sinks first
    parents = {t["key"]: [d for d in t["deps"] if d in secs] for t in graph}
    while stack:
        k = stack.pop()
        level[k] = secs[k] + max((level[c] for c in children.get(k, ())), default=0.0)
        for p in parents[k]:
            indeg[p] -= 1
            if indeg[p] == 0:
                stack.append(p)
    if len(level) != len(secs):
        raise ValueError("the task graph has a dependency cycle")
    return level


def critical_path(graph: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The longest chain of dependent tasks, first task first (key, kind, seconds each)."""
    by_key = {t["key"]: t for t in graph}
    level = bottom_levels(graph)
    children = _children(graph)
    roots = [t["key"] for t in graph if not any(d in by_key for d in t["deps"])]
    k: str | None = max(roots, key=level.__getitem__) if roots else None
    chain = []
    while k is not None:
        t = by_key[k]
        chain.append({"key": k, "kind": t["kind"], "seconds": t["seconds"]})
        k = max(children.get(k, ()), key=level.__getitem__, default=None)
    return chain


def simulate(
    graph: list[dict[str, Any]], workers: int, overhead_s: float = 0.0, order: str = "runner"
) -> float:
    """Predicted wall time (s) of ``graph`` on ``workers`` workers: an event-driven greedy
    list scheduler where a free worker takes the first ready task in ``order`` and a task
    costs its ``seconds`` plus ``overhead_s``.

    ``order``: ``"runner"`` is :func:`cosim.report.runner.run_tasks`'s (train tasks first,
    the most needed models first, then the graph's order); ``"critical"`` puts the longest
    remaining chain (:func:`bottom_levels`) first.
    """
    if not graph:
        return 0.0
    keys = {t["key"] for t in graph}
    users = Counter(d for t in graph for d in t["deps"])
    if order == "runner":
        prio = {t["key"]: (t["kind"] != "train", -users[t["key"]], i) for i, t in enumerate(graph)}
    elif order == "critical":
        level = bottom_levels(graph, overhead_s)
        prio = {t["key"]: (False, -level[t["key"]], i) for i, t in enumerate(graph)}
    else:
        raise ValueError(f"unknown order {order!r}")
    secs = {t["key"]: float(t["seconds"]) + overhead_s for t in graph}
    children = _children(graph)
    waiting = {t["key"]: sum(d in keys for d in t["deps"]) for t in graph}
    ready = [(prio[k], k) for k, n in waiting.items() if n == 0]
    heapq.heapify(ready)
    running: list[tuple[float, str]] = []
    now, done = 0.0, 0
    while ready or running:
        while ready and len(running) < workers:
            _, k = heapq.heappop(ready)
            heapq.heappush(running, (now + secs[k], k))
        now, k = heapq.heappop(running)
        done += 1
        for c in children.get(k, ()):
            waiting[c] -= 1
            if waiting[c] == 0:
                heapq.heappush(ready, (prio[c], c))
    if done != len(graph):
        raise ValueError("the task graph has a dependency cycle")
    return now


def analyse_graph(path: Path, overhead_s: float) -> dict[str, Any]:
    """The graph of ``path``'s ``timing.task_graph`` on paper (see the module docstring)."""
    report = json.loads(path.read_text())
    graph = report.get("timing", {}).get("task_graph")
    if not graph:
        raise SystemExit(f"{path} has no timing.task_graph (a report from an older cosim?)")
    kinds: dict[str, dict[str, Any]] = {}
    for t in graph:
        k = kinds.setdefault(t["kind"], {"tasks": 0, "seconds": 0.0, "max_s": 0.0})
        k["tasks"] += 1
        k["seconds"] += t["seconds"]
        k["max_s"] = max(k["max_s"], t["seconds"])
    total = sum(t["seconds"] for t in graph)
    chain = critical_path(graph)
    cp = sum(c["seconds"] for c in chain)
    cp_o = cp + overhead_s * len(chain)
    total_o = total + overhead_s * len(graph)
    rows = []
    for p in PREDICT_WORKERS:
        wall = simulate(graph, p, overhead_s)
        rows.append(
            {
                "workers": p,
                "wall_s": wall,
                "wall_s_critical_first": simulate(graph, p, overhead_s, "critical"),
                "lower_bound_s": max(cp_o, total_o / p),
                "efficiency": total_o / (p * wall),
            }
        )
    return {
        "source": _rel(path),
        "source_command": report.get("command"),
        "tasks": len(graph),
        "by_kind": kinds,
        "deps_outside_graph": sorted(
            {d for t in graph for d in t["deps"]} - {t["key"] for t in graph}
        ),
        "total_worker_s": total,
        "critical_path_s": cp,
        "critical_path": chain,
        "overhead_s_per_task": overhead_s,
        "predicted": rows,
    }


# --------------------------------------------------------------------------- the plot
def plot(g: dict[str, Any], path: Path) -> None:
    """Predicted wall time against workers (log-log), with the bounds; saved to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    from cosim.fileio import atomic_path, png_metadata

    rows = g["predicted"]
    p = [r["workers"] for r in rows]
    wall = [r["wall_s"] for r in rows]
    cp = g["critical_path_s"]
    fig, ax = plt.subplots(figsize=(6.5, 4.6))
    ax.loglog(p, wall, "o-", color="C0", label="predicted: cosim's order (train tasks first)")
    ax.loglog(
        p,
        [r["wall_s_critical_first"] for r in rows],
        "s--",
        color="C2",
        ms=4,
        label="predicted: longest chain first (durations known)",
    )
    ax.loglog(p, [r["lower_bound_s"] for r in rows], "k-", lw=2.5, alpha=0.25)
    ax.loglog(
        p,
        [g["total_worker_s"] / k for k in p],
        ":",
        color="C1",
        label=f"total / P ({g['total_worker_s']:.0f} worker-s)",
    )
    ax.axhline(cp, color="C3", ls="-.", label=f"critical path ({cp:.0f} s)")
    ax.plot([], [], "k-", lw=2.5, alpha=0.25, label="lower bound max(critical path, total / P)")
    for r in rows:
        if r["workers"] in MARKED_WORKERS:
            ax.plot(r["workers"], r["wall_s"], "o", ms=10, mfc="none", mec="C0", mew=1.5)
            ax.annotate(
                f"{r['wall_s']:.0f} s",
                (r["workers"], r["wall_s"]),
                textcoords="offset points",
                xytext=(0, 9),
                ha="center",
                fontsize=9,
                color="C0",
            )
    ax.set_xticks(p, [str(k) for k in p])
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("workers P (one task at a time each)")
    ax.set_ylabel("wall time of the study's tasks (s)")
    kinds = ", ".join(f"{v['tasks']} {k}" for k, v in g["by_kind"].items())
    ax.set_title(
        f"Study task graph on paper ({g['source']})\n{g['tasks']} tasks: {kinds}", fontsize=9
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, metadata=png_metadata())
    plt.close(fig)


# ---------------------------------------------------------------------------- output
def _rel(path: Path) -> str:
    """``path`` relative to the repository root when it lies inside it."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def machine() -> dict[str, Any]:
    """The machine's facts: CPUs, OS, Python and library versions, ngspice's version."""
    import dask
    import distributed
    import numpy as np

    from cosim import __version__

    try:
        from cosim.spice import ngspice_version

        ngspice: str | None = ngspice_version()
    except Exception as exc:  # no ngspice: the paper part still runs
        ngspice = f"unavailable ({type(exc).__name__})"
    return {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "dask": dask.__version__,
        "distributed": distributed.__version__,
        "ngspice": ngspice,
        "cosim": __version__,
    }


def print_runs(title: str, m: dict[str, Any]) -> None:
    """A table of one measured command's runs: wall, ratio to local, result identical."""
    print(f"\n{title}")
    print(f"  {'run':<20} {'workers':>7} {'wall s':>8} {'/ local':>8} {'same':>6}")
    for r in m["runs"]:
        k = str(r["workers"])
        if r["where"] == "local":
            ratio = 1.0
        elif r["where"] == BASELINE:
            ratio = 1.0 / m["local_over_baseline"][k]
        else:
            ratio = m["over_local"][r["where"]][k]
        print(
            f"  {r['where']:<20} {r['workers']:>7} {r['wall_s']:>8.1f} {ratio:>8.2f} "
            f"{r['identical_to_reference']!s:>6}"
        )
    for k, v in m.get("local_over_baseline", {}).items():
        print(f"  local / baseline on {k} worker(s): {v:.2f} (below 1: faster than before)")


def print_summary(doc: dict[str, Any]) -> None:
    """The readable tables of everything in ``doc``."""
    if "characterize" in doc:
        print_runs(
            "quick characterization (same: library bytes == local --jobs 1)", doc["characterize"]
        )
    if "report" in doc:
        print_runs(
            "quick report (same: report.json == local --jobs 1, timings aside)", doc["report"]
        )
        print("  task phase: measured tasks_s against the scheduler model on its own graph")
        for r in doc["report"]["runs"]:
            if r["tasks_s_model"] is None:  # a baseline from before report.json had its graph
                continue
            print(
                f"    {r['where']:<20} {r['workers']}: {r['tasks_s']:6.1f} s measured, "
                f"{r['tasks_s_model']:6.1f} s model ({r['tasks_run']} tasks, "
                f"{r['task_compute_s']:.1f} worker-s)"
            )
    if doc.get("startup", {}).get("dask_subprocess") or doc.get("startup", {}).get("local_cluster"):
        print("\ncluster start-up until all workers are seen (s)")
        for r in doc["startup"]["dask_subprocess"]:
            print(
                f"  dask scheduler + {r['workers']} worker(s) subprocesses ({r['for']}): "
                f"{r['startup_s']:.1f}"
            )
        for r in doc["startup"].get("local_cluster", []):
            print(f"  LocalCluster({r['workers']} worker processes): {r['startup_s']:.1f}")
    if "tiny_tasks" in doc:
        t = doc["tiny_tasks"]
        print(f"\nper-task cost of {t['tasks']} no-op tasks on 2 workers (µs per task)")
        print(f"  dask  submit + gather              {t['dask_batch_s_per_task'] * 1e6:9.0f}")
        print(
            f"  dask  cosim Cluster.gather         {t['dask_cosim_gather_s_per_task'] * 1e6:9.0f}"
        )
        print(f"  dask  one-at-a-time round trip     {t['dask_round_trip_s'] * 1e6:9.0f}")
        print(f"  spawn pool submit + result         {t['pool_batch_s_per_task'] * 1e6:9.0f}")
        print(f"  spawn pool one-at-a-time round trip{t['pool_round_trip_s'] * 1e6:9.0f}")
        print(f"  spawn pool start-up (2 processes): {t['pool_startup_s']:.2f} s")
    g = doc["graph"]
    print(f"\non paper: {g['source']} ({g['tasks']} tasks)")
    for kind, v in g["by_kind"].items():
        print(
            f"  {kind:<12} {v['tasks']:4d} tasks {v['seconds']:8.0f} worker-s "
            f"(longest {v['max_s']:.0f} s)"
        )
    chain = " -> ".join(f"{c['kind']} {c['seconds']:.1f} s" for c in g["critical_path"])
    print(
        f"  total {g['total_worker_s']:.0f} worker-s; critical path {g['critical_path_s']:.0f} s"
        f" ({chain}); {g['overhead_s_per_task'] * 1e3:.1f} ms overhead per task"
    )
    print(
        f"  {'P':>5} {'predicted s':>12} {'longest-first s':>16} {'lower bound s':>14} {'eff':>6}"
    )
    for r in g["predicted"]:
        print(
            f"  {r['workers']:>5} {r['wall_s']:>12.0f} {r['wall_s_critical_first']:>16.0f} "
            f"{r['lower_bound_s']:>14.0f} {r['efficiency']:>6.2f}"
        )


@contextlib.contextmanager
def _scratch() -> Iterator[Path]:
    """A temporary directory for every run's files, removed at the end."""
    d = Path(tempfile.mkdtemp(prefix="cosim-scaleout-"))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", type=Path, default=None, help="write the results here")
    ap.add_argument(
        "--png", type=Path, default=None, help="the plot (default: the --json path's .png)"
    )
    ap.add_argument(
        "--graph",
        type=Path,
        default=DEFAULT_GRAPH,
        metavar="REPORT_JSON",
        help="report.json whose timing.task_graph to predict (default: the committed study)",
    )
    ap.add_argument("--library", type=Path, default=DEFAULT_LIBRARY, help="quick report's")
    ap.add_argument(
        "--workers", default="1,2", help="worker counts to measure (comma-separated; 1,2)"
    )
    ap.add_argument("--tiny", type=int, default=2000, help="no-op tasks for the overhead")
    ap.add_argument(
        "--overhead-s",
        type=float,
        default=None,
        help="per-task overhead (s) added on paper (default: the measured Dask round trip, else 0)",
    )
    ap.add_argument(
        "--skip-no-trim",
        action="store_true",
        help="no extra Dask runs with glibc's malloc defaults in the workers",
    )
    ap.add_argument(
        "--baseline",
        type=Path,
        default=None,
        metavar="TREE",
        help="another checkout of cosim (e.g. `git worktree add /tmp/base 6b6a9d9`, before the "
        "scale-out): its local runs go before each pair, and local / baseline is reported",
    )
    ap.add_argument("--skip-measure", action="store_true", help="only the paper part")
    ap.add_argument("--skip-characterize", action="store_true")
    ap.add_argument("--skip-report", action="store_true")
    ap.add_argument("--skip-tiny", action="store_true", help="no start-up and overhead runs")
    args = ap.parse_args(argv)
    workers = [int(w) for w in args.workers.split(",")]
    if not workers or min(workers) < 1:
        ap.error("--workers: positive integers, e.g. 1,2")
    if args.skip_measure:
        args.skip_characterize = args.skip_report = args.skip_tiny = True

    old: dict[str, Any] = {}
    if args.json is not None and args.json.is_file():
        old = json.loads(args.json.read_text())
    doc: dict[str, Any] = {
        "command": "python benchmarks/scaleout.py"
        + "".join(f" {a}" for a in (argv or sys.argv[1:])),
        "date_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "load_before": _load(),
    }
    global BASELINE_TREE
    BASELINE_TREE = args.baseline.resolve() if args.baseline is not None else None
    if BASELINE_TREE is not None:
        doc["baseline"] = {
            "tree": str(BASELINE_TREE),
            "commit": subprocess.run(
                ["git", "-C", str(BASELINE_TREE), "rev-parse", "HEAD"],
                capture_output=True,
                text=True,
                check=False,
            ).stdout.strip(),
        }
    plan = _plan(workers, not args.skip_no_trim, BASELINE_TREE is not None)
    with _scratch() as tmp:
        if not args.skip_characterize:
            doc["characterize"] = measure_characterize(plan, tmp)
        if not args.skip_report:
            doc["report"] = measure_report(plan, tmp, args.library.resolve())
        if not args.skip_tiny:
            print("cluster start-up and tiny tasks:", flush=True)
            doc["tiny_tasks"] = measure_tiny(args.tiny, tmp)
            doc["local_cluster"] = measure_local_cluster(workers)
    doc["load_after"] = _load()
    for key in ("characterize", "report", "tiny_tasks"):
        if key not in doc and key in old:  # skipped this time: keep the earlier measurement
            doc[key] = old[key]
            doc.setdefault("kept_from_earlier_run", []).append(key)
    startup: dict[str, Any] = {"dask_subprocess": []}
    for name in ("characterize", "report"):
        for r in doc.get(name, {}).get("runs", []):
            if r["where"] not in ("local", BASELINE):
                startup["dask_subprocess"].append(
                    {
                        "workers": r["workers"],
                        "for": f"{name} ({r['where']})",
                        "startup_s": r["cluster_startup_s"],
                    }
                )
    if "tiny_tasks" in doc:
        startup["dask_subprocess"].append(
            {"workers": 2, "for": "tiny", "startup_s": doc["tiny_tasks"]["dask_cluster_startup_s"]}
        )
    if "local_cluster" in doc or "startup" in old:
        startup["local_cluster"] = doc.pop("local_cluster", None) or old["startup"]["local_cluster"]
    doc["startup"] = startup
    overhead = args.overhead_s
    if overhead is None:
        overhead = doc.get("tiny_tasks", {}).get("dask_round_trip_s", 0.0)
    doc["graph"] = analyse_graph(args.graph, overhead)
    if args.json is not None:  # written first: minutes of measurements are not lost to a print
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(doc, indent=2) + "\n")
        print(f"wrote {args.json}")
    print_summary(doc)
    png = args.png or (args.json.with_suffix(".png") if args.json is not None else None)
    if png is not None:
        plot(doc["graph"], png)
        print(f"wrote {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
