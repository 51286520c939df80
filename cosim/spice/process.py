"""The parent's handle on one ngspice worker process: start (signals held back), handshake,
stop, kill, reap. The worker's own side is :mod:`cosim.spice.worker`."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from cosim.errors import SimulationError

_INSTALL_HINT = (
    "install it with `apt-get install ngspice libngspice0-dev` (the README's set-up command "
    "does this), or point COSIM_NGSPICE_LIBRARY at your libngspice.so"
)


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


class _Subprocess:
    """A ``subprocess.Popen`` seen through the part of ``multiprocessing.Process`` that
    :class:`Worker` uses (``is_alive``, ``kill``, ``join``, ``exitcode``, ``pid``)."""

    def __init__(self, popen: subprocess.Popen) -> None:
        self._popen = popen
        self.pid = popen.pid

    def is_alive(self) -> bool:
        return self._popen.poll() is None

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self._popen.kill()

    def join(self, timeout: float | None = None) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._popen.wait(timeout)

    @property
    def exitcode(self) -> int | None:
        return self._popen.poll()


class Worker:
    @classmethod
    def subprocess(cls, workdir: Path) -> Worker:
        """A worker started as ``python -m cosim.spice.worker`` over a socket pair, for a
        parent that may not start multiprocessing children (a Dask worker process is
        daemonic). It speaks the same protocol; it exits when its parent is gone."""
        from multiprocessing.connection import Connection

        ours, theirs = socket.socketpair()
        self = cls.__new__(cls)
        try:
            with _signals_blocked():
                popen = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "cosim.spice.worker",
                        str(theirs.fileno()),
                        str(workdir),
                    ],
                    pass_fds=(theirs.fileno(),),
                    stdin=subprocess.DEVNULL,
                    # a Dask nanny's MALLOC_TRIM_THRESHOLD_ slows ngspice too: not passed on
                    env={
                        **{k: v for k, v in os.environ.items() if k != "MALLOC_TRIM_THRESHOLD_"},
                        "COSIM_PROGRESS": "0",
                    },
                )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self.conn = Connection(ours.detach())
        self.proc = _Subprocess(popen)
        self._idle()
        return self

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
        self._idle()

    def _idle(self) -> None:
        """No job yet, no version until the handshake (both ways of starting a worker)."""
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
