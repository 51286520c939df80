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
]

SCHEDULER_ENV = "COSIM_SCHEDULER"
TIMEOUT_ENV = "COSIM_SCHEDULER_TIMEOUT"
CONNECT_TIMEOUT_S = 30.0
_ADDRESS = re.compile(
    r"^(?:(tcp|tls|ucx|ws|wss)://)?(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$"
)

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
    if text is None:
        text = os.environ.get(SCHEDULER_ENV, "").strip() or None
        source = SCHEDULER_ENV
        if text is None:
            return None
    m = _ADDRESS.match(text.strip())
    if m is None or not 1 <= int(m.group(3)) <= 65535:
        raise CosimError(
            f"{source} {text!r} is not a Dask scheduler address; give tcp://HOST:PORT "
            "(the address `dask scheduler` prints, port 8786 by default)"
        )
    connect_timeout()  # a bad COSIM_SCHEDULER_TIMEOUT is refused now, not after loading
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


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class Cluster:
    """A connected Dask client with cosim's conventions (see the module docstring)."""

    def __init__(self, client: Any, address: str) -> None:
        self.client = client
        self.address = address
        self._shipped: dict[Hashable, Any] = {}

    # -- what the cluster is ------------------------------------------------------------
    def workers(self) -> int:
        """Number of workers the scheduler knows now."""
        return len(self.client.scheduler_info(n_workers=-1).get("workers", {}))

    def threads(self) -> int:
        """Threads over all workers (the tasks that can run at once)."""
        info = self.client.scheduler_info(n_workers=-1).get("workers", {})
        return sum(int(w.get("nthreads", 1)) for w in info.values())

    def dashboard(self) -> str | None:
        """The dashboard's address, when the scheduler serves one (it needs bokeh)."""
        services = self.client.scheduler_info(n_workers=0).get("services", {})
        if "dashboard" not in services:
            return None
        try:
            return str(self.client.dashboard_link)
        except Exception:  # an odd dashboard configuration: no link, not a failed run
            return None

    def describe(self) -> str:
        """One line: address, workers, threads and the dashboard (if any)."""
        line = (
            f"Dask scheduler {self.address}: {self.workers()} worker(s), {self.threads()} thread(s)"
        )
        link = self.dashboard()
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
        try:
            own_bar = Bar(total=len(futures), desc=desc) if desc is not None else nullcontext()
            with own_bar as bar:
                for fut in as_completed(futures, loop=self.client.loop):
                    if fut.status == "error" and on_error is not None:
                        on_error(fut, fut.exception())
                    else:
                        on_result(fut, fut.result())
                    if bar is not None:
                        bar.update()
        except BaseException:
            self.client.cancel([f for f in futures if not f.done()], force=True)
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
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
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
    try:
        client = Client(address, timeout=timeout_s, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise CosimError(
            f"cannot reach the Dask scheduler at {address} within {timeout_s:g} s "
            f"({type(exc).__name__}); start one with `dask scheduler`, check the address, "
            f"or run locally without --scheduler (and with {SCHEDULER_ENV} unset)"
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


def _cosim_version() -> str:
    """On a worker: the cosim version it imports."""
    import cosim

    return cosim.__version__


def _check_workers(cluster: Cluster) -> None:
    """Every worker imports the client's cosim version (a worker without cosim, or with
    another version, would fail or compute something else task by task)."""
    import cosim

    try:
        versions = cluster.run_on_workers(_cosim_version)
    except Exception as exc:  # a worker that cannot unpickle a cosim function
        raise CosimError(
            f"a worker of the Dask scheduler at {cluster.address} cannot run cosim "
            f"({type(exc).__name__}: {exc}); install cosim on every worker (scripts/setup.sh)"
        ) from None
    wrong = {w: v for w, v in versions.items() if v != cosim.__version__}
    if wrong:
        w, v = next(iter(sorted(wrong.items())))
        raise CosimError(
            f"{len(wrong)} worker(s) of the Dask scheduler at {cluster.address} run cosim "
            f"{v} (e.g. {w}), this client {cosim.__version__}; install the same cosim everywhere"
        )


# ------------------------------------------------------------------------ worker side
def _identity(value: T) -> T:
    """The task that holds a shipped value (:meth:`Cluster.ship`)."""
    return value


_MEMO: dict[Hashable, Any] = {}
_MEMO_LOCK = threading.RLock()  # a build may ask for another key (an engine, its library)
_MEMO_LIMIT = 16


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
