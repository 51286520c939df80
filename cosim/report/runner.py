"""Run a study's tasks: cache look-up, dependency order, worker processes, progress.

Tasks already in the cache are served from it. The others run in the order given (train
tasks before the evaluations that need their models), in this process (``jobs=1``) or in
``jobs`` worker processes (``spawn``: each worker imports cosim afresh and keeps its own
datasets, library and models), or as tasks on a Dask cluster (``cluster``). Every finished
task is written to the cache at once, so an interrupted study resumes where it stopped.

On a cluster (:func:`_run_cluster`) workers share no filesystem with this process: the
libraries' files, the datasets and the cached models are shipped once
(:meth:`cosim.cluster.Cluster.ship`); a train task returns its model file's bytes, which
this process writes into the cache before the metrics, and the evaluations that need the
model take the train task's future, so Dask runs them after it, where it likes. Task keys
are the cache keys: a task resubmitted (a worker lost) is the same task.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from cosim.fileio import write_bytes_atomic
from cosim.report.cache import ResultCache
from cosim.report.tasks import Task, execute, execute_shipped, init_worker, model_path


def _cache_kind(task: Task) -> str:
    return "model" if task.kind == "train" else "task"


def run_tasks(
    tasks: list[Task],
    cache: ResultCache,
    env: dict[str, Any],
    jobs: int = 1,
    on_done: Callable[[Task, dict[str, Any], bool, float], None] | None = None,
    cluster: Any = None,
) -> dict[str, dict[str, Any]]:
    """Results of ``tasks`` by key (cached or computed).

    Parameters
    ----------
    tasks
        Distinct tasks; a task's ``deps`` must be keys of train tasks in the list (or
        already cached).
    cache
        Where results are looked up and stored.
    env
        Passed to :func:`cosim.report.tasks.execute` (cache dir, library, card).
    jobs
        Worker processes (1: run here).
    cluster
        A :class:`cosim.cluster.Cluster` to run the tasks on instead (``jobs`` unused).
    on_done
        Called as ``on_done(task, result, cached, seconds)`` for every task.
    """
    results: dict[str, dict[str, Any]] = {}
    pending: list[Task] = []
    for t in tasks:
        r = cache.get(_cache_kind(t), t.key)
        if r is None:
            pending.append(t)
        else:
            results[t.key] = r
            if on_done is not None:
                on_done(t, r, True, 0.0)
    if not pending:
        return results
    # train tasks first; among them, the models most other tasks need first
    users: dict[str, int] = {}
    for t in pending:
        for d in t.deps:
            users[d] = users.get(d, 0) + 1
    pending.sort(key=lambda t: (t.kind != "train", -users.get(t.key, 0)))

    def finish(t: Task, r: dict[str, Any], seconds: float) -> None:
        r = dict(r)
        model = r.pop("_model_npz", None)
        if model is not None:  # a cluster's train task: its model file, before its metrics
            write_bytes_atomic(model_path(env, t.key), model)
        r["task_seconds"] = seconds
        cache.put(_cache_kind(t), t.key, r)
        results[t.key] = r
        if on_done is not None:
            on_done(t, r, False, seconds)

    if cluster is not None:
        _run_cluster(pending, env, cluster, results, finish, users)
        return results
    if jobs <= 1:
        old = os.environ.get("COSIM_PROGRESS")
        os.environ["COSIM_PROGRESS"] = "0"  # the study's bar only
        try:
            for t in pending:
                t0 = time.perf_counter()
                r = _run(t, env)
                finish(t, r, time.perf_counter() - t0)
        finally:
            if old is None:
                os.environ.pop("COSIM_PROGRESS", None)
            else:
                os.environ["COSIM_PROGRESS"] = old
        return results
    _run_pool(pending, env, jobs, results, finish)
    return results


def _run(t: Task, env: dict[str, Any]) -> dict[str, Any]:
    try:
        return execute(t.kind, t.key, t.payload, env)
    except Exception as exc:
        exc.add_note(f"while running the study task: {t.label}")
        raise


def _timed(kind: str, key: str, payload: dict[str, Any], env: dict[str, Any]):
    t0 = time.perf_counter()
    out = execute(kind, key, payload, env)
    return out, time.perf_counter() - t0


def _run_pool(
    pending: list[Task],
    env: dict[str, Any],
    jobs: int,
    results: dict[str, dict[str, Any]],
    finish: Callable[[Task, dict[str, Any], float], None],
) -> None:
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait

    waiting = list(pending)
    running: dict[Future, Task] = {}
    with ProcessPoolExecutor(
        max_workers=jobs, mp_context=mp.get_context("spawn"), initializer=init_worker
    ) as pool:
        try:
            while waiting or running:
                # submit what is ready, keeping at most 2 x jobs queued (the order matters)
                for t in list(waiting):
                    if len(running) >= 2 * jobs:
                        break
                    if all(d in results for d in t.deps):
                        waiting.remove(t)
                        running[pool.submit(_timed, t.kind, t.key, t.payload, env)] = t
                if not running:
                    missing = sorted({d for t in waiting for d in t.deps if d not in results})
                    raise RuntimeError(f"study tasks wait for models never trained: {missing}")
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in done:
                    t = running.pop(fut)
                    try:
                        r, seconds = fut.result()
                    except Exception as exc:
                        exc.add_note(f"while running the study task: {t.label}")
                        raise
                    finish(t, r, seconds)
        except BaseException:
            for fut in running:
                fut.cancel()
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def _run_cluster(
    pending: list[Task],
    env: dict[str, Any],
    cluster: Any,
    results: dict[str, dict[str, Any]],
    finish: Callable[[Task, dict[str, Any], float], None],
    users: dict[str, int],
) -> None:
    from cosim.datasets import load_dataset
    from cosim.library import files_digest, library_files

    libraries: dict[str, Any] = {}
    for path in [env["library"], *(v["library"] for v in env["adc_libraries"].values())]:
        files = library_files(path)
        libraries[str(path)] = cluster.ship(("library", files_digest(files)), files)
    datasets: dict[str, Any] = {}
    trains: dict[str, Any] = {}  # train key: its future (metrics and the model's bytes)
    futures: dict[Any, Task] = {}
    for t in pending:  # trains first (the order of run_tasks): their futures exist in time
        spec = t.payload["dataset"]
        if spec not in datasets:
            datasets[spec] = cluster.ship(("dataset", spec), load_dataset(spec))
        models: dict[str, Any] = {}
        for d in t.deps:
            if d in trains:
                models[d] = trains[d]
            elif d in results:  # cached: ship the file once
                models[d] = cluster.ship(("model", d), model_path(env, d).read_bytes())
            else:
                raise RuntimeError(f"study task {t.label} needs model {d}, never trained")
        fut = cluster.submit(
            execute_shipped,
            t.kind,
            t.key,
            t.payload,
            env,
            libraries,
            {spec: datasets[spec]},
            models,
            key=f"{t.kind}-{t.key}",
            priority=(1000 + users.get(t.key, 0)) if t.kind == "train" else 0,
        )
        futures[fut] = t
        if t.kind == "train":
            trains[t.key] = fut

    def on_result(fut: Any, value: tuple[dict[str, Any], float]) -> None:
        r, seconds = value
        finish(futures[fut], r, seconds)

    def on_error(fut: Any, exc: BaseException) -> None:
        from cosim.cluster import failure

        lost = failure(exc, cluster.address)  # the cluster's fault, not the task's
        if lost is not None:
            raise lost
        exc.add_note(f"while running the study task: {futures[fut].label}")
        raise exc

    # the study's own bar counts each task (on_done): no second bar
    cluster.gather(futures, on_result, desc=None, on_error=on_error)
