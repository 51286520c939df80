"""Run SPICE jobs in ngspice worker processes, with timeouts, convergence aids and a cache.

* One libngspice per worker process, started with ``spawn`` (libngspice is not re-entrant).
* ``jobs`` workers run in parallel; a worker that exceeds a job's timeout is killed and
  replaced, and that job fails with a :class:`~cosim.errors.SimulationError`.
* A failing run is retried with convergence aids (gmin/source stepping, relaxed tolerances,
  gear integration) before it is reported; the error carries the netlist path (written
  under ``<cache>/failed/``), ngspice's own messages and what was tried.
* Results are cached on disk, keyed by the netlist text, the requested vectors and the
  ngspice version, so a re-run is instant and an interrupted run resumes where it stopped.

Examples
--------
>>> runner = SpiceRunner(jobs=1)                       # doctest: +SKIP
>>> job = SpiceJob("divider\\nV1 a 0 1\\nR1 a b 1k\\nR2 b 0 1k\\n.op\\n.end", ("b",))
>>> runner.run([job])[0]["b"]                           # doctest: +SKIP
array([0.5])
"""

from __future__ import annotations

import hashlib
import multiprocessing as mp
import os
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

import numpy as np

from cosim.errors import SimulationError
from cosim.fileio import atomic_path, write_text_atomic
from cosim.progress import Bar

RUNNER_VERSION = "1"
_INSTALL_HINT = (
    "install it with `apt-get install ngspice libngspice0-dev` (the README's set-up command "
    "does this), or point COSIM_NGSPICE_LIBRARY at your libngspice.so"
)


@dataclass(frozen=True)
class SpiceJob:
    """One ngspice run: a complete netlist (with its analysis) and the vectors to return.

    Parameters
    ----------
    netlist
        Netlist text; its first line is the title.
    vectors
        Names of vectors to return (node names, ``vsrc#branch``, ``time``, ``v-sweep``...);
        case-insensitive. Empty means all vectors of the last plot.
    timeout_s
        Wall-clock limit for this job including retries (s).
    label
        Short description for progress bars and errors.
    fallbacks
        Retry with convergence aids when the plain run fails.
    """

    netlist: str
    vectors: tuple[str, ...] = ()
    timeout_s: float = 600.0
    label: str = ""
    fallbacks: bool = True

    def key(self, version: str) -> str:
        h = hashlib.sha256()
        for part in (
            RUNNER_VERSION,
            version,
            self.netlist,
            "|".join(v.lower() for v in self.vectors),
        ):
            h.update(part.encode())
            h.update(b"\0")
        return h.hexdigest()


@dataclass
class SpiceResult:
    """Named arrays from one run, plus how it was obtained."""

    arrays: dict[str, np.ndarray]
    info: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, name: str) -> np.ndarray:
        try:
            return self.arrays[name.lower()]
        except KeyError:
            raise KeyError(f"no vector {name!r} in this result") from None

    def __contains__(self, name: str) -> bool:
        return name.lower() in self.arrays


def default_cache_dir() -> Path:
    env = os.environ.get("COSIM_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "cosim" / "spice"


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


class _Worker:
    def __init__(self, ctx, workdir: Path, target=None) -> None:
        from cosim.spice import worker as wmod

        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(
            target=target or wmod.worker_main, args=(child, str(workdir)), daemon=True
        )
        self.proc.start()
        child.close()
        self.job: int | None = None
        self.deadline = 0.0
        self.version = ""

    def handshake(self, timeout_s: float) -> None:
        if not self.conn.poll(timeout_s):
            self.kill()
            raise SimulationError(f"ngspice worker did not start within {timeout_s:.0f} s")
        try:
            msg = self.conn.recv()
        except EOFError:
            self.proc.join(1)
            raise SimulationError(
                f"ngspice worker exited while loading the library (exit code "
                f"{self.proc.exitcode}); {_INSTALL_HINT}"
            ) from None
        if msg[0] == "fatal":
            self.kill()
            raise SimulationError(
                f"cannot load the ngspice shared library: {msg[1]}; {_INSTALL_HINT}"
            )
        self.version = msg[1]

    def kill(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(5)
        self.conn.close()

    def stop(self) -> None:
        try:
            self.conn.send(("stop",))
        except (OSError, BrokenPipeError):
            pass
        self.proc.join(5)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(5)


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
    """

    def __init__(
        self,
        jobs: int = 1,
        cache_dir: str | os.PathLike[str] | type(...) | None = ...,  # type: ignore[valid-type]
        start_timeout_s: float = 60.0,
        _worker_target=None,
    ) -> None:
        if jobs < 1:
            raise ValueError("jobs must be >= 1")
        self.jobs = jobs
        self.cache_dir = (
            default_cache_dir()
            if cache_dir is ...
            else (Path(cache_dir) if cache_dir is not None else None)
        )
        self.start_timeout_s = start_timeout_s
        self._ctx = mp.get_context("spawn")
        self._workers: list[_Worker] = []
        self._target = _worker_target
        self.version = ""
        self.stats = {"cached": 0, "simulated": 0, "failed": 0, "sim_seconds": 0.0}

    # -- lifecycle ----------------------------------------------------------------------
    def __enter__(self) -> SpiceRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for w in self._workers:
            w.stop()
        self._workers = []

    @property
    def _base_dir(self) -> Path:
        if self.cache_dir is not None:
            return self.cache_dir
        return Path(os.environ.get("TMPDIR", "/tmp")) / "cosim-spice"

    @property
    def _workdir(self) -> Path:
        return self._base_dir / "work"

    def _spawn(self) -> _Worker:
        w = _Worker(self._ctx, self._workdir, self._target)
        w.handshake(self.start_timeout_s)
        if not self.version:
            self.version = w.version
        return w

    def _ensure_workers(self, n: int | None = None) -> None:
        want = self.jobs if n is None else min(self.jobs, n)
        while len(self._workers) < max(want, 1):
            self._workers.append(self._spawn())

    # -- cache --------------------------------------------------------------------------
    def _cache_file(self, key: str) -> Path | None:
        if self.cache_dir is None:
            return None
        return self.cache_dir / key[:2] / f"{key}.npz"

    def _cache_get(self, key: str) -> SpiceResult | None:
        path = self._cache_file(key)
        if path is None or not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile):  # corrupt: recompute
            path.unlink(missing_ok=True)
            return None
        return SpiceResult(arrays, {"cached": True})

    def _cache_put(self, key: str, result: SpiceResult) -> None:
        path = self._cache_file(key)
        if path is None:
            return
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **result.arrays)

    def _failed_netlist_path(self, job: SpiceJob, key: str) -> Path:
        path = self._base_dir / "failed" / f"{key[:16]}.cir"
        write_text_atomic(path, job.netlist)
        return path

    # -- running ------------------------------------------------------------------------
    def _version_for_keys(self) -> str:
        if not self.version:
            self._ensure_workers(1)
        return self.version

    def run(
        self,
        jobs: Sequence[SpiceJob],
        *,
        desc: str = "ngspice",
        raise_on_error: bool = True,
    ) -> list[SpiceResult | SimulationError]:
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
        if todo:
            self._ensure_workers(len(todo))
            with Bar(total=len(todo), desc=desc) as bar:
                self._dispatch(jobs, keys, todo, results, bar)
        errors = [r for r in results if isinstance(r, SimulationError)]
        if errors and raise_on_error:
            raise errors[0]
        return results  # type: ignore[return-value]

    def _dispatch(self, jobs, keys, todo, results, bar) -> None:
        queue = list(todo)
        busy: dict[int, _Worker] = {}
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
                    w.conn.send(("run", payload))
                    w.job = i
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
                    if msg[0] == "ok":
                        res = SpiceResult(msg[2], msg[3])
                        self._cache_put(keys[i], res)
                        results[i] = res
                        self.stats["simulated"] += 1
                        self.stats["sim_seconds"] += now - started[i]
                    else:
                        _, _, message, lines, tried = msg
                        results[i] = SimulationError(
                            f"{message} in {jobs[i].label or 'a SPICE run'}",
                            netlist_path=self._failed_netlist_path(jobs[i], keys[i]),
                            spice_messages=lines,
                            tried=tried,
                        )
                        self.stats["failed"] += 1
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

    def _replace(self, w: _Worker) -> None:
        w.kill()
        idx = self._workers.index(w)
        self._workers[idx] = self._spawn()
