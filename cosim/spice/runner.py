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
* :func:`check_cache_dir` says in one line what is wrong with an unusable cache directory;
  :class:`SpiceRunner` calls it before it starts any worker.

Examples
--------
>>> runner = SpiceRunner(jobs=1)                       # doctest: +SKIP
>>> job = SpiceJob("divider\\nV1 a 0 1\\nR1 a b 1k\\nR2 b 0 1k\\n.op\\n.end", ("b",))
>>> runner.run([job])[0]["b"]                           # doctest: +SKIP
array([0.5])
"""

from __future__ import annotations

import contextlib
import hashlib
import multiprocessing as mp
import os
import signal
import tempfile
import time
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

import numpy as np

from cosim.errors import CosimError, SimulationError
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


#: The entry of a cached result that names the key it was stored under.
_KEY_ENTRY = "__cosim_cache_key__"


def default_cache_dir() -> Path:
    """The cache directory used when none is given: ``$COSIM_CACHE_DIR`` or
    ``$XDG_CACHE_HOME/cosim/spice`` (``~/.cache/cosim/spice``)."""
    env = os.environ.get("COSIM_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "cosim" / "spice"


_CACHE_HINT = "pass --cache-dir a writable directory, or --no-cache"


def _check_dir(path: Path, what: str, hint: str) -> Path:
    """Create ``path`` if needed and prove a file can be written in it; one-line error if not."""
    if path.exists() and not path.is_dir():
        raise CosimError(f"{what} {path} is not a directory (it is a file); {hint}")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        if isinstance(exc, (FileExistsError, NotADirectoryError)):
            reason = (
                "it is a broken symbolic link"
                if path.is_symlink()
                else "a parent of it is a file, not a directory"
            )
        raise CosimError(f"cannot create {what} {path}: {reason}; {hint}") from None
    # permission bits do not stop root, and a read-only file system does not show in them:
    # the only reliable test is to write something
    try:
        fd, probe = tempfile.mkstemp(prefix=".cosim-probe-", dir=path)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise CosimError(f"cannot write in {what} {path}: {reason}; {hint}") from None
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(probe)
    return path


def check_cache_dir(path: str | os.PathLike[str]) -> Path:
    """Make sure ``path`` can serve as the SPICE result cache; returns it as a :class:`Path`.

    Creates the directory (and its parents) when missing. Call it before any long work so
    a bad ``--cache-dir`` is reported at once, in one line, instead of by every worker.

    Raises
    ------
    CosimError
        If ``path`` is a file, lies under a file, or cannot be created or written to; the
        message names the path and says what to do.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> check_cache_dir(d / "cache") == d / "cache"
    True
    >>> (d / "f").write_text("x")
    1
    >>> check_cache_dir(d / "f")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    cosim.errors.CosimError: SPICE cache directory .../f is not a directory (it is a file); ...
    """
    if not os.fspath(path):  # Path("") is "." : the cache would spill into the cwd
        raise CosimError(f"the SPICE cache directory is an empty path; {_CACHE_HINT}")
    return _check_dir(Path(path), "SPICE cache directory", _CACHE_HINT)


@contextlib.contextmanager
def _signals_blocked() -> Iterator[None]:
    """Hold SIGINT/SIGTERM back while a worker starts.

    The child inherits the blocked mask, so a Ctrl-C cannot interrupt it before it has
    installed its own disposition (ignore SIGINT); the parent receives the held signal as
    soon as the block ends, so nothing is lost.
    """
    if not hasattr(signal, "pthread_sigmask"):  # pragma: no cover - not POSIX
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _all_finite(arrays: dict[str, np.ndarray]) -> bool:
    return all(np.isfinite(a).all() for a in arrays.values() if np.issubdtype(a.dtype, np.inexact))


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
        try:
            with _signals_blocked():
                self.proc.start()
        except BaseException:  # interrupted as it started: leave no process behind
            if self.proc.pid is not None:
                self.proc.kill()
                self.proc.join(5)
            raise
        finally:
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

    def ask_to_stop(self) -> None:
        """An idle worker is asked to exit; a busy one (the run was abandoned) is killed."""
        if self.job is not None:
            if self.proc.is_alive():
                self.proc.kill()
            return
        try:
            self.conn.send(("stop",))
        except (OSError, ValueError):  # its pipe is broken or already closed
            if self.proc.is_alive():
                self.proc.kill()

    def reap(self, deadline: float) -> None:
        """Wait for the process until ``deadline`` (monotonic), then kill it."""
        self.proc.join(max(0.0, deadline - time.monotonic()))
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(5)
        self.conn.close()


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
            _check_dir(
                self._base_dir,
                "scratch directory",
                "set TMPDIR to a writable directory",
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

    def _spawn(self) -> _Worker:
        w = _Worker(self._ctx, self._workdir, self._target)
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
        owner = arrays.pop(_KEY_ENTRY, None) if arrays is not None else None
        if owner is None or owner.shape != () or str(owner) != key:
            arrays = None
        if arrays is None or not _all_finite(arrays):  # NaN/inf: corrupt, recompute
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)
            return None
        return SpiceResult(arrays, {"cached": True})

    def _cache_put(self, key: str, result: SpiceResult) -> None:
        path = self._cache_file(key)
        if path is None or not _all_finite(result.arrays):  # never cache what reads as corrupt
            return
        try:
            with atomic_path(path) as tmp:
                with open(tmp, "wb") as fh:
                    np.savez(fh, **result.arrays, **{_KEY_ENTRY: np.array(key)})
        except OSError as exc:
            raise CosimError(
                f"cannot write to the SPICE cache {self.cache_dir}: "
                f"{exc.strerror or exc}; free space there, {_CACHE_HINT}"
            ) from None

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
            try:
                with Bar(total=len(todo), desc=desc) as bar:
                    self._dispatch(jobs, keys, todo, results, bar)
            except BaseException:  # Ctrl-C, SIGTERM, a cache write error: runs abandoned
                self.close()  # kill the busy workers now; a later run() starts fresh ones
                raise
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
