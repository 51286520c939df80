"""Dask clusters: where the scheduler is, the connection, data shipped once, tasks counted.

``cosim characterize``, ``cosim evaluate`` and ``cosim report`` take ``--scheduler ADDRESS``
(or ``COSIM_SCHEDULER``): their work then runs as tasks on that Dask ``distributed`` cluster
instead of cosim's local worker pools. This module is the one place that talks to
``distributed``; it imports it only when a scheduler is asked for, so a local run never
loads it.

* :func:`scheduler_address` reads and checks the address (the flag, else the environment).
* :func:`connect` opens a :class:`Cluster`: a client that waits for at least one worker,
  says in one line where it runs (and the dashboard, when the scheduler serves one), and is
  closed with the command. An unreachable scheduler is one clear error, not a traceback.
* :meth:`Cluster.ship` sends a value to the cluster once (inside a task, so a lost worker
  costs nothing but a recomputation); tasks that take the returned future receive the
  value, and each worker fetches it at most once however many of its tasks use it.
* :meth:`Cluster.gather` waits for futures as they finish, advancing a progress bar per
  task, and cancels what is left when the caller is interrupted or a task fails.
* :func:`worker_memo` keeps what a worker process built from shipped data (a loaded
  library, an engine) for its later tasks.

Tasks keep no state a client needs: results come back to the client, which writes every
cache entry itself, so the on-disk caches stay the single source of truth and a cluster run
that is interrupted resumes like a local one.
"""

from __future__ import annotations

import os
import re
import sys
import threading
from collections.abc import Callable, Hashable, Iterable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, TypeVar

from cosim.errors import CosimError

__all__ = [
    "SCHEDULER_ENV",
    "Cluster",
    "add_scheduler_argument",
    "connect",
    "maybe_connect",
    "scheduler_address",
    "worker_memo",
    "worker_scratch",
]

SCHEDULER_ENV = "COSIM_SCHEDULER"
TIMEOUT_ENV = "COSIM_SCHEDULER_TIMEOUT"
CONNECT_TIMEOUT_S = 30.0
_ADDRESS = re.compile(r"^(?:(tcp|tls)://)?(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$")
_LABEL = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$")
_DECIMAL = re.compile(r"^[0-9]+(\.[0-9]*)?$|^\.[0-9]+$")

T = TypeVar("T")


def scheduler_address(flag: str | None) -> str | None:
    """The scheduler to use: ``flag`` if given, else ``$COSIM_SCHEDULER``, else ``None``
    (run locally). An address is ``[tcp://]HOST:PORT`` (also ``tls://``); an empty
    environment variable means local.

    Raises
    ------
    CosimError
        The address is not of that form, or its port is out of range.

    Examples
    --------
    >>> scheduler_address("tcp://10.0.0.5:8786")
    'tcp://10.0.0.5:8786'
    >>> scheduler_address("node7:8786")
    'tcp://node7:8786'
    """
    source = "--scheduler"
    text = flag
    connect_timeout()  # a bad COSIM_SCHEDULER_TIMEOUT is refused at once, scheduler or not
    if text is None:
        text = os.environ.get(SCHEDULER_ENV, "").strip() or None
        source = SCHEDULER_ENV
        if text is None:
            return None
    m = _ADDRESS.match(text.strip())
    host = m.group(2) if m is not None else ""
    if (
        m is None
        or not 1 <= int(m.group(3)) <= 65535
        or not (
            host.startswith("[")
            or (len(host) <= 253 and all(_LABEL.match(label) for label in host.split(".")))
        )
    ):
        raise CosimError(
            f"{source} {text!r} is not a Dask scheduler address; give tcp://HOST:PORT "
            "(the address `dask scheduler` prints, port 8786 by default)"
        )
    scheme = m.group(1) or "tcp"
    return f"{scheme}://{m.group(2)}:{m.group(3)}"


def add_scheduler_argument(p: Any, what: str) -> None:
    """Add ``--scheduler ADDRESS`` to an argparse parser; ``what`` names the work it moves."""
    p.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help=f"run {what} as tasks on this Dask cluster (tcp://HOST:PORT of `dask "
        f"scheduler`; default ${SCHEDULER_ENV}, else locally); the results are the same",
    )


@contextmanager
def maybe_connect(
    address: str | None, log: Callable[[str], None] | None = None
) -> Iterator[Cluster | None]:
    """:func:`connect` to ``address``, or ``None`` (a local run) when it is ``None``."""
    if address is None:
        yield None
        return
    with connect(address, log or _stderr) as cluster:
        yield cluster


def unused_with_scheduler(command: str, flags: list[str]) -> None:
    """Say on stderr that ``flags`` (given with ``--scheduler``) do not apply: the cluster's
    workers set the parallelism."""
    if flags:
        _stderr(
            f"cosim {command}: note: {', '.join(flags)} not used with --scheduler (the "
            "cluster's workers run the tasks: start them with `dask worker --nthreads N`)"
        )


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class Cluster:
    """A connected Dask client with cosim's conventions (see the module docstring)."""

    def __init__(self, client: Any, address: str) -> None:
        self.client = client
        self.address = address
        self._shipped: dict[Hashable, Any] = {}

    # -- what the cluster is ------------------------------------------------------------
    def describe(self) -> str:
        """One line: address, workers, their threads (the tasks that can run at once) and
        the dashboard, when the scheduler serves one (it needs bokeh)."""
        info = self.client.scheduler_info(n_workers=-1)
        workers = info.get("workers", {})
        threads = sum(int(w.get("nthreads", 1)) for w in workers.values())
        link = None
        if "dashboard" in info.get("services", {}):
            try:
                link = str(self.client.dashboard_link)
            except Exception:  # an odd dashboard configuration: no link, not a failed run
                link = None
        line = f"Dask scheduler {self.address}: {len(workers)} worker(s), {threads} thread(s)"
        return line + (f"; dashboard {link}" if link else "; no dashboard (install bokeh)")

    # -- data and tasks -----------------------------------------------------------------
    def ship(self, key: Hashable, value: Any) -> Any:
        """A future holding ``value``, sent once per ``key`` for this connection; every task
        given the future receives the value, and a worker fetches it at most once.

        The value travels inside a task (not ``scatter``): the scheduler keeps the task, so
        when the only worker holding the value is lost it is made again on another one,
        where scattered data would be gone for good.
        """
        fut = self._shipped.get(key)
        if fut is None:
            import warnings

            with warnings.catch_warnings():  # a dataset is a "large graph": on purpose
                warnings.filterwarnings("ignore", message=".*[Ll]arge graph.*")
                fut = self._shipped[key] = self.client.submit(_identity, value, pure=False)
        return fut

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``client.submit`` with ``pure=False`` unless a ``key`` is given (a named task
        that is submitted twice runs once)."""
        if "key" not in kwargs:
            kwargs.setdefault("pure", False)
        return self.client.submit(fn, *args, **kwargs)

    def gather(
        self,
        futures: Iterable[Any],
        on_result: Callable[[Any, Any], None],
        desc: str | None = "cluster",
        on_error: Callable[[Any, BaseException], None] | None = None,
    ) -> None:
        """Wait for ``futures`` in the order they finish: ``on_result(future, value)`` for
        each (on the caller's thread), a progress bar counting them. A task that failed
        after its retries raises its exception here, unless ``on_error(future, exc)`` takes
        it. ``desc=None``: no bar of its own (the caller counts in ``on_result``). When the
        caller is interrupted or an error escapes, the futures not yet done are cancelled."""
        from distributed import as_completed

        from cosim.progress import Bar

        futures = list(futures)
        if not futures:
            return
        rerun = "finished work is kept in the caches: rerun the command to resume"
        try:
            own_bar = Bar(total=len(futures), desc=desc) if desc is not None else nullcontext()
            with own_bar as bar:
                for fut in as_completed(futures, loop=self.client.loop):
                    if fut.status == "cancelled":
                        raise CosimError(
                            f"a task was cancelled on the Dask scheduler at {self.address} "
                            f"(restarted, or the connection was lost); {rerun}"
                        )
                    if fut.status == "error":
                        exc = fut.exception()
                        if on_error is not None:
                            on_error(fut, exc)
                        else:
                            lost = failure(exc, self.address)
                            if lost is not None:
                                raise lost
                            fut.result()  # the task's own exception, raised here
                    else:
                        try:
                            value = fut.result()
                        except Exception as exc:  # the connection went while fetching it
                            lost = failure(exc, self.address)
                            if lost is None:
                                raise
                            raise lost from None
                        on_result(fut, value)
                    if bar is not None:
                        bar.update()
        except BaseException:
            # this client's interest only: another run that wants the same tasks keeps them
            self.client.cancel([f for f in futures if not f.done()])
            raise

    def run_on_workers(self, fn: Callable[[], T]) -> dict[str, T]:
        """``fn()`` on every worker now (a probe such as the ngspice version)."""
        return dict(self.client.run(fn))

    def close(self) -> None:
        self._shipped.clear()
        self.client.close()


def connect_timeout() -> float:
    """Seconds to wait for the scheduler and its first worker: ``$COSIM_SCHEDULER_TIMEOUT``
    (0 < s <= 3600), else 30.

    Raises
    ------
    CosimError
        The variable is not such a number.
    """
    text = os.environ.get(TIMEOUT_ENV, "").strip()
    if not text:
        return CONNECT_TIMEOUT_S
    value = float(text) if _DECIMAL.match(text) else float("nan")  # no 1_0, no "２"
    if not 0.0 < value <= 3600.0:  # also NaN
        raise CosimError(f"{TIMEOUT_ENV}={text!r}: give seconds, more than 0 and at most 3600")
    return value


@contextmanager
def connect(
    address: str,
    log: Callable[[str], None] = _stderr,
    timeout_s: float | None = None,
) -> Iterator[Cluster]:
    """A :class:`Cluster` connected to ``address``, closed on exit.

    Waits up to ``timeout_s`` (default :func:`connect_timeout`) for the scheduler and for
    at least one worker, then logs one line (:meth:`Cluster.describe`).

    Raises
    ------
    CosimError
        ``distributed`` is not installed, the scheduler cannot be reached, or it has no
        worker within ``timeout_s``.
    """
    if timeout_s is None:
        timeout_s = connect_timeout()
    try:
        from distributed import Client
    except ImportError:  # pragma: no cover - a dependency of cosim since it runs on Dask
        raise CosimError(
            "--scheduler needs Dask's distributed package; run the README's set-up "
            "(pip install 'distributed>=2024.8')"
        ) from None
    _quiet_distributed()
    _probe(address, timeout_s)
    try:
        client = Client(address, timeout=timeout_s, set_as_default=False)
    except Exception as exc:  # it answered the probe a moment ago: name what broke
        raise CosimError(
            f"cannot connect to the Dask scheduler at {address}: {_what(exc)}; "
            f"check it is running, or run locally without --scheduler ({SCHEDULER_ENV} unset)"
        ) from None
    cluster = Cluster(client, address)
    try:
        try:
            client.wait_for_workers(1, timeout=timeout_s)
        except (OSError, TimeoutError):
            raise CosimError(
                f"the Dask scheduler at {address} has no worker after {timeout_s:g} s; start "
                f"some with `dask worker {address}`"
            ) from None
        _check_workers(cluster)
        log(cluster.describe())
        yield cluster
    finally:
        cluster.close()


def _what(exc: BaseException) -> str:
    """An exception in a few words, on one line."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__


def _quiet_distributed() -> None:
    """distributed logs its own errors (a lost connection, a retried task) on stderr; cosim
    says what happened in one line of its own, so only critical records pass."""
    import logging

    logging.getLogger("distributed").setLevel(logging.CRITICAL)


def _probe(address: str, timeout_s: float) -> None:
    """Ask ``address`` who it is, within ``timeout_s`` seconds in all: a port where nothing
    listens, something that is not Dask (a web server, the dashboard's port), a Dask worker
    instead of the scheduler, or a listener that never answers is one clear error, where
    ``Client`` would wait for its handshake for ever."""
    import asyncio

    from distributed.core import rpc

    async def identity() -> Any:
        r = rpc(address, timeout=timeout_s)
        try:
            return await r.identity()
        finally:
            await r.close_rpc()

    hint = (
        "check the address (the scheduler's, port 8786 by default, not its dashboard's), "
        "start one with `dask scheduler`, or run locally without --scheduler "
        f"({SCHEDULER_ENV} unset)"
    )
    try:
        who = asyncio.run(asyncio.wait_for(identity(), timeout_s))
    except TimeoutError:
        raise CosimError(
            f"no Dask scheduler answered at {address} within {timeout_s:g} s; {hint}"
        ) from None
    except Exception as exc:  # refused, unresolvable, not Dask's protocol, TLS not set up
        raise CosimError(
            f"cannot reach a Dask scheduler at {address} ({_what(exc)}); {hint}"
        ) from None
    kind = who.get("type") if isinstance(who, dict) else None
    if kind != "Scheduler":
        raise CosimError(
            f"{address} is a Dask {kind or 'server'}, not the scheduler; give the address "
            "`dask scheduler` prints"
        )


def _versions() -> dict[str, str]:
    """On a worker (and here): the versions that decide cosim's numbers."""
    import numpy
    import scipy

    import cosim

    return {"cosim": cosim.__version__, "numpy": numpy.__version__, "scipy": scipy.__version__}


def _check_workers(cluster: Cluster) -> None:
    """Every worker imports the client's cosim, NumPy and SciPy (a worker without cosim
    would fail task by task; another version could compute other numbers)."""
    try:
        found = cluster.run_on_workers(_versions)
    except Exception as exc:  # a worker that cannot unpickle a cosim function
        raise CosimError(
            f"a worker of the Dask scheduler at {cluster.address} cannot run cosim "
            f"({_what(exc)}); install cosim on every worker (scripts/setup.sh)"
        ) from None
    ours = _versions()
    for w, theirs in sorted(found.items()):
        for name, v in ours.items():
            if theirs.get(name) != v:
                raise CosimError(
                    f"worker {w} of the Dask scheduler at {cluster.address} runs {name} "
                    f"{theirs.get(name)}, this client {v}; install the same versions "
                    "everywhere (results must not depend on where a task ran)"
                )


def failure(exc: BaseException, address: str) -> CosimError | None:
    """The one-line error for a failure of the cluster itself (a task's workers lost too
    often, the scheduler gone, a task cancelled), or ``None`` for the task's own error."""
    import asyncio

    from distributed import KilledWorker
    from distributed.client import FutureCancelledError
    from distributed.comm import CommClosedError

    rerun = "finished work is kept in the caches: rerun the command to resume"
    if isinstance(exc, KilledWorker):
        return CosimError(
            f"a task's workers died more often than the Dask scheduler at {address} allows "
            f"({_what(exc)}); check the workers' memory and logs; {rerun}"
        )
    if isinstance(exc, FutureCancelledError | CommClosedError | asyncio.CancelledError):
        return CosimError(f"lost the Dask scheduler at {address} ({_what(exc)}); {rerun}")
    return None


# ------------------------------------------------------------------------ worker side
def _identity(value: T) -> T:
    """The task that holds a shipped value (:meth:`Cluster.ship`)."""
    return value


_MEMO: dict[Hashable, Any] = {}
_MEMO_LOCK = threading.RLock()  # a build may ask for another key (an engine, its library)
_MEMO_LIMIT = 16


_SCRATCH: dict[str, Path] = {}


def worker_scratch(name: str) -> Path:
    """This process's own scratch directory ``$TMPDIR/cosim-NAME-PID``, removed when the
    process exits normally (a killed worker leaves it to the system's temporary-file
    cleaning)."""
    with _MEMO_LOCK:
        path = _SCRATCH.get(name)
        if path is None:
            import atexit
            import shutil
            import tempfile

            path = _SCRATCH[name] = Path(tempfile.gettempdir()) / f"cosim-{name}-{os.getpid()}"
            atexit.register(shutil.rmtree, path, ignore_errors=True)
        return path


def worker_memo(key: Hashable, build: Callable[[], T]) -> T:
    """``build()`` once per ``key`` in this process (a worker's loaded library or engine);
    later tasks on the same worker reuse it. At most 16 entries are kept (oldest first
    out). Thread-safe: two threads asking for a key being built wait for the one build."""
    with _MEMO_LOCK:
        if key in _MEMO:
            return _MEMO[key]
        value = build()
        _MEMO[key] = value
        while len(_MEMO) > _MEMO_LIMIT:
            del _MEMO[next(iter(_MEMO))]
        return value
