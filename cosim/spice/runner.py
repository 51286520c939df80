"""Run SPICE jobs in ngspice worker processes, with timeouts, convergence aids and a cache.

* One libngspice per worker process, started with ``spawn`` (libngspice is not re-entrant).
* ``jobs`` workers run in parallel; a worker that exceeds a job's timeout is killed and
  replaced, and that job fails with a :class:`~cosim.errors.SimulationError`.
* A failing run is retried with convergence aids (gmin/source stepping, relaxed tolerances,
  gear integration) before it is reported; the error carries the netlist path (written
  under ``<cache>/failed/``), ngspice's own messages and what was tried.
* Results are cached on disk, keyed by the netlist text, the requested vectors and the
  ngspice version, so a re-run is instant and an interrupted run resumes where it stopped.
  An entry that cannot be read, or holds NaN/inf, is treated as corrupt and simulated again.
* The parent owns interruption: workers ignore SIGINT (a Ctrl-C reaches the whole process
  group), and when the parent unwinds (Ctrl-C, SIGTERM, an error) busy workers are killed and
  idle ones stopped. A worker dies with its parent (Linux) instead of lingering as an orphan.
* On a Dask cluster (``cluster``, from :func:`cosim.cluster.connect`) the jobs the cache
  does not hold run as tasks (:mod:`cosim.spice.remote`: each worker process keeps its own
  ngspice processes, kills a hung one at the job's timeout, and Dask retries a task whose
  ngspice hung or died, or whose worker was lost); this process still owns the cache and the
  saved netlists of failed runs, so results are the same as a local run's.
* :func:`check_cache_dir` says in one line what is wrong with an unusable cache directory;
  :class:`SpiceRunner` calls it before it starts any worker.

The job and result types live in :mod:`cosim.spice.jobs`, the cache directory's checks in
:mod:`cosim.spice.cache`, the handle on one worker process in :mod:`cosim.spice.process`;
their public names stay importable from here.

Examples
--------
>>> runner = SpiceRunner(jobs=1)                       # doctest: +SKIP
>>> job = SpiceJob("divider\\nV1 a 0 1\\nR1 a b 1k\\nR2 b 0 1k\\n.op\\n.end", ("b",))
>>> runner.run([job])[0]["b"]                           # doctest: +SKIP
array([0.5])
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import time
import zipfile
from collections.abc import Sequence
from multiprocessing.connection import wait
from pathlib import Path
from types import EllipsisType
from typing import Any, Literal, overload

import numpy as np

from cosim.errors import CosimError, SimulationError
from cosim.fileio import atomic_path, write_text_atomic
from cosim.progress import Bar
from cosim.spice.cache import (
    CACHE_HINT,
    KEY_ENTRY,
    all_finite,
    check_cache_dir,
    check_dir,
    default_cache_dir,
)
from cosim.spice.jobs import RUNNER_VERSION, SpiceJob, SpiceResult
from cosim.spice.process import Worker

__all__ = [
    "RUNNER_VERSION",
    "SpiceJob",
    "SpiceResult",
    "SpiceRunner",
    "check_cache_dir",
    "default_cache_dir",
    "ngspice_version",
]

_VERSION: dict[str, str] = {}


def ngspice_version(timeout_s: float = 60.0) -> str:
    """The version of the ngspice library the workers load (probed once per process).

    Raises
    ------
    SimulationError
        If the library cannot be loaded.
    """
    lib = os.environ.get("COSIM_NGSPICE_LIBRARY", "")
    if lib in _VERSION:
        return _VERSION[lib]
    with SpiceRunner(jobs=1, cache_dir=None) as r:
        r._ensure_workers()
        v = r.version
    _VERSION[lib] = v
    return v


class SpiceRunner:
    """A pool of ngspice worker processes with an on-disk result cache.

    Parameters
    ----------
    jobs
        Number of worker processes (parallel simulations).
    cache_dir
        Result cache directory; ``None`` disables caching. Default:
        ``$COSIM_CACHE_DIR`` or ``~/.cache/cosim/spice``.
    start_timeout_s
        How long a worker may take to load libngspice (s).
    cluster
        A :class:`cosim.cluster.Cluster`: simulate there instead of in local workers
        (``jobs`` is then unused).
    retries
        On a cluster: how many more times a job is tried after its ngspice hung or died.
    """

    def __init__(
        self,
        jobs: int = 1,
        cache_dir: str | os.PathLike[str] | EllipsisType | None = ...,
        start_timeout_s: float = 60.0,
        _worker_target=None,
        cluster: Any = None,
        retries: int = 1,
    ) -> None:
        if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
            raise ValueError(f"jobs must be >= 1 (an integer), not {jobs!r}")
        self.jobs = jobs
        self.cache_dir = (
            default_cache_dir()
            if cache_dir is ...
            else (Path(cache_dir) if cache_dir is not None else None)
        )
        # before any worker starts: a bad directory is one clear line, not a traceback per
        # worker (the workers and failed netlists live under the same base directory)
        if self.cache_dir is not None:
            check_cache_dir(self.cache_dir)
        else:
            check_dir(
                self._base_dir,
                "scratch directory",
                "set TMPDIR to a writable directory",
            )
        self.start_timeout_s = start_timeout_s
        self._ctx = mp.get_context("spawn")
        self._workers: list[Worker] = []
        self._target = _worker_target
        self.version = ""
        self.stats = {"cached": 0, "simulated": 0, "failed": 0, "sim_seconds": 0.0}
        self.cluster = cluster
        self.retries = retries

    # -- lifecycle ----------------------------------------------------------------------
    def __enter__(self) -> SpiceRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop every worker: idle ones are asked to exit, busy ones (whose run was
        abandoned by an interruption or an error) are killed at once. Idempotent."""
        workers, self._workers = self._workers, []
        try:
            for w in workers:
                w.ask_to_stop()
        finally:
            deadline = time.monotonic() + 5.0
            for w in workers:
                w.reap(deadline)

    @property
    def _base_dir(self) -> Path:
        if self.cache_dir is not None:
            return self.cache_dir
        return Path(os.environ.get("TMPDIR", "/tmp")) / "cosim-spice"

    @property
    def _workdir(self) -> Path:
        return self._base_dir / "work"

    def _spawn(self) -> Worker:
        w = Worker(self._ctx, self._workdir, self._target)
        try:
            w.handshake(self.start_timeout_s)
        except BaseException:  # e.g. Ctrl-C while it loads: it is not in the pool yet
            w.kill()
            raise
        if not self.version:
            self.version = w.version
        return w

    def _ensure_workers(self, n: int | None = None) -> None:
        want = self.jobs if n is None else min(self.jobs, n)
        while len(self._workers) < max(want, 1):
            self._workers.append(self._spawn())

    # -- cache: ``DIR/ab/abcd....npz`` holds the result's arrays and its own key ----------
    def _cache_file(self, key: str) -> Path | None:
        if self.cache_dir is None:
            return None
        return self.cache_dir / key[:2] / f"{key}.npz"

    def _cache_get(self, key: str) -> SpiceResult | None:
        path = self._cache_file(key)
        if path is None or not path.is_file():
            return None
        try:
            # our own handle: np.load leaks its file when it raises on a truncated entry
            with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile):  # corrupt: recompute
            arrays = None
        # an entry names its own key: one copied or moved over another's name (or written
        # before entries carried their key) is not trusted, but simulated again
        owner = arrays.pop(KEY_ENTRY, None) if arrays is not None else None
        if owner is None or owner.shape != () or str(owner) != key:
            arrays = None
        if arrays is None or not all_finite(arrays):  # NaN/inf: corrupt, recompute
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)
            return None
        return SpiceResult(arrays, {"cached": True})

    def _cache_put(self, key: str, result: SpiceResult) -> None:
        path = self._cache_file(key)
        if path is None or not all_finite(result.arrays):  # never cache what reads as corrupt
            return
        try:
            with atomic_path(path) as tmp:
                # a dict[str, Any]: numpy's stub types savez's **kwds beside allow_pickle: bool
                entries: dict[str, Any] = {**result.arrays, KEY_ENTRY: np.array(key)}
                with open(tmp, "wb") as fh:
                    np.savez(fh, **entries)
        except OSError as exc:
            raise CosimError(
                f"cannot write to the SPICE cache {self.cache_dir}: "
                f"{exc.strerror or exc}; free space there, {CACHE_HINT}"
            ) from None

    def _failed_netlist_path(self, job: SpiceJob, key: str) -> Path:
        path = self._base_dir / "failed" / f"{key[:16]}.cir"
        write_text_atomic(path, job.netlist)
        return path

    # -- running ------------------------------------------------------------------------
    def _version_for_keys(self) -> str:
        if not self.version and self.cluster is not None:
            from cosim.spice import remote

            versions = self.cluster.run_on_workers(remote.ngspice_version)
            found = sorted(set(versions.values()))
            if len(found) != 1:
                raise SimulationError(
                    "the cluster's workers load different ngspice versions ("
                    + ", ".join(f"{w}: {v}" for w, v in sorted(versions.items()))
                    + "); install the same ngspice on every worker, since results and cache "
                    "keys depend on it"
                )
            self.version = found[0]
        if not self.version:
            self._ensure_workers(1)
        return self.version

    @overload
    def run(
        self,
        jobs: Sequence[SpiceJob],
        *,
        desc: str = ...,
        raise_on_error: Literal[True] = ...,
    ) -> list[SpiceResult]: ...

    @overload
    def run(
        self,
        jobs: Sequence[SpiceJob],
        *,
        desc: str = ...,
        raise_on_error: bool,
    ) -> list[SpiceResult | SimulationError]: ...

    def run(
        self,
        jobs: Sequence[SpiceJob],
        *,
        desc: str = "ngspice",
        raise_on_error: bool = True,
    ) -> list[SpiceResult] | list[SpiceResult | SimulationError]:
        """Run ``jobs`` (cached ones are not re-simulated); results in input order.

        With ``raise_on_error`` the first failure is raised after every other job has
        finished and been cached, so nothing that succeeded is lost. Otherwise failed
        entries hold their :class:`SimulationError`.
        """
        jobs = list(jobs)
        results: list[SpiceResult | SimulationError | None] = [None] * len(jobs)
        version = self._version_for_keys()
        keys = [j.key(version) for j in jobs]
        todo: list[int] = []
        for i, k in enumerate(keys):
            hit = self._cache_get(k)
            if hit is not None:
                results[i] = hit
                self.stats["cached"] += 1
            else:
                todo.append(i)
        if todo and self.cluster is not None:
            self._dispatch_cluster(jobs, keys, todo, results, desc)
        elif todo:
            self._ensure_workers(len(todo))
            try:
                with Bar(total=len(todo), desc=desc) as bar:
                    self._dispatch(jobs, keys, todo, results, bar)
            except BaseException:  # Ctrl-C, SIGTERM, a cache write error: runs abandoned
                self.close()  # kill the busy workers now; a later run() starts fresh ones
                raise
        done = [r for r in results if r is not None]
        assert len(done) == len(results)  # every job has its result or its error
        errors = [r for r in done if isinstance(r, SimulationError)]
        if errors and raise_on_error:
            raise errors[0]
        return done

    def _dispatch(self, jobs, keys, todo, results, bar) -> None:
        queue = list(todo)
        busy: dict[int, Worker] = {}
        started: dict[int, float] = {}
        while queue or busy:
            for w in self._workers:
                if w.job is None and queue:
                    i = queue.pop(0)
                    payload = {
                        "job_id": i,
                        "netlist": jobs[i].netlist,
                        "vectors": list(jobs[i].vectors) or None,
                        "fallbacks": jobs[i].fallbacks,
                    }
                    w.job = i  # first: if interrupted mid-send, close() kills it
                    w.conn.send(("run", payload))
                    w.deadline = time.monotonic() + jobs[i].timeout_s
                    busy[i] = w
                    started[i] = time.monotonic()
            timeout = max(0.0, min(w.deadline for w in busy.values()) - time.monotonic())
            ready = wait([w.conn for w in busy.values()], timeout=timeout)
            now = time.monotonic()
            for w in list(busy.values()):
                i = w.job
                assert i is not None
                if w.conn in ready:
                    try:
                        msg = w.conn.recv()
                    except (EOFError, OSError):
                        w.proc.join(5)  # reap it, so its exit code is known
                        code = w.proc.exitcode
                        self._replace(w)
                        results[i] = SimulationError(
                            f"ngspice worker died during {jobs[i].label or 'a run'} "
                            f"(exit code {code})",
                            netlist_path=self._failed_netlist_path(jobs[i], keys[i]),
                        )
                        self.stats["failed"] += 1
                        del busy[i]
                        bar.update()
                        continue
                    w.job = None
                    del busy[i]
                    bar.update()
                    results[i] = self._record(jobs[i], keys[i], msg, now - started[i])
                elif now >= w.deadline:
                    self._replace(w)
                    results[i] = SimulationError(
                        f"ngspice run {jobs[i].label or ''} exceeded its timeout of "
                        f"{jobs[i].timeout_s:g} s; the worker was killed (raise the timeout or "
                        "simplify the netlist)",
                        netlist_path=self._failed_netlist_path(jobs[i], keys[i]),
                        tried=["plain"],
                    )
                    self.stats["failed"] += 1
                    del busy[i]
                    bar.update()

    def _dispatch_cluster(self, jobs, keys, todo, results, desc: str) -> None:
        """Run ``todo`` as tasks on the cluster; cache and record each as it returns."""
        from cosim.spice import remote

        futures = {}
        for i in todo:
            payload = {
                "job_id": i,
                "netlist": jobs[i].netlist,
                "vectors": list(jobs[i].vectors) or None,
                "fallbacks": jobs[i].fallbacks,
            }
            fut = self.cluster.submit(
                remote.run_job,
                payload,
                jobs[i].timeout_s,
                jobs[i].label,
                key=f"spice-{keys[i][:24]}-{i}",
                retries=self.retries,
            )
            futures[fut] = i

        def on_result(fut, msg) -> None:
            i = futures[fut]
            seconds = float(msg[3].get("worker_s", 0.0)) if msg[0] == "ok" else 0.0
            results[i] = self._record(jobs[i], keys[i], msg, seconds)

        def on_error(fut, exc: BaseException) -> None:
            # after its last try: a hang or crash (SpiceTaskFailed), or a worker lost more
            # often than the scheduler allows (KilledWorker: this netlist's failure too);
            # a lost scheduler is no netlist's fault
            from distributed import KilledWorker

            from cosim.cluster import failure

            lost = failure(exc, self.cluster.address)
            if lost is not None and not isinstance(exc, KilledWorker):
                raise lost
            i = futures[fut]
            what = (
                str(exc)
                if isinstance(exc, remote.SpiceTaskFailed)
                else (
                    f"{type(exc).__name__} on the cluster during {jobs[i].label or 'a run'}: {exc}"
                )
            )
            results[i] = SimulationError(
                f"{what} (tried {1 + self.retries} time(s))",
                netlist_path=self._failed_netlist_path(jobs[i], keys[i]),
                tried=["plain"],
            )
            self.stats["failed"] += 1

        self.cluster.gather(futures, on_result, desc=desc, on_error=on_error)

    def _record(
        self, job: SpiceJob, key: str, msg: tuple, seconds: float
    ) -> SpiceResult | SimulationError:
        """A worker's reply as the job's result (cached) or its error (netlist saved)."""
        if msg[0] == "ok":
            res = SpiceResult(msg[2], msg[3])
            self._cache_put(key, res)
            self.stats["simulated"] += 1
            self.stats["sim_seconds"] += seconds
            return res
        _, _, message, lines, tried = msg
        self.stats["failed"] += 1
        return SimulationError(
            f"{message} in {job.label or 'a SPICE run'}",
            netlist_path=self._failed_netlist_path(job, key),
            spice_messages=lines,
            tried=tried,
        )

    def _replace(self, w: Worker) -> None:
        w.kill()
        idx = self._workers.index(w)
        self._workers[idx] = self._spawn()
