"""SPICE jobs as Dask tasks: what runs on a worker of the cluster.

libngspice is not re-entrant, so a Dask worker process never loads it itself: each task
borrows one of the worker process's own ngspice processes (started as plain subprocesses,
:meth:`cosim.spice.process.Worker.subprocess`, since a Dask worker may not start
multiprocessing children), as many as the worker runs tasks at once. A task:

* sends its netlist and waits at most the job's timeout; a hung ngspice is killed and the
  task raises :class:`SpiceTaskFailed`, as does a crashed one, so Dask retries it (the
  client submits with ``retries``); the client records the last failure with its netlist;
* returns the worker's reply (``("ok", job_id, arrays, info)`` or a convergence failure
  ``("err", job_id, message, lines, tried)``, which is final: convergence aids already ran).

Nothing is written on the worker but ngspice's scratch directory: the client owns the
result cache and the saved netlists of failed runs.
"""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path
from typing import Any

from cosim.spice.process import Worker

__all__ = ["SpiceTaskFailed", "ngspice_version", "run_job"]

START_TIMEOUT_S = 60.0
_IDLE: list[Worker] = []
_LOCK = threading.Lock()


class SpiceTaskFailed(Exception):
    """ngspice hung past its timeout or died: the task fails and Dask may retry it."""


def _workdir() -> Path:
    from cosim.cluster import worker_scratch

    return worker_scratch("spice") / "work"


def _acquire() -> Worker:
    with _LOCK:
        while _IDLE:
            w = _IDLE.pop()
            if w.proc.is_alive():
                return w
            w.kill()
    w = Worker.subprocess(_workdir())
    try:
        w.handshake(START_TIMEOUT_S)
    except BaseException:
        w.kill()
        raise
    return w


def _release(w: Worker) -> None:
    with _LOCK:
        _IDLE.append(w)


def ngspice_version() -> str:
    """The version of the libngspice this worker's ngspice processes load."""
    w = _acquire()
    _release(w)
    return w.version


def run_job(payload: dict[str, Any], timeout_s: float, label: str = "") -> tuple:
    """Run one job (the worker protocol's ``payload``) within ``timeout_s`` seconds.

    Raises
    ------
    SpiceTaskFailed
        ngspice exceeded the timeout (it is killed) or died during the run.
    """
    w = _acquire()
    keep = False
    try:
        w.conn.send(("run", payload))
        t0 = time.monotonic()
        if not w.conn.poll(timeout_s):
            raise SpiceTaskFailed(
                f"ngspice run {label or ''} exceeded its timeout of {timeout_s:g} s on a "
                "cluster worker; it was killed (raise the timeout or simplify the netlist)"
            )
        try:
            reply = w.conn.recv()
        except (EOFError, OSError):
            w.proc.join(5)
            raise SpiceTaskFailed(
                f"ngspice died during {label or 'a run'} on a cluster worker "
                f"(exit code {w.proc.exitcode})"
            ) from None
        keep = True
        if reply[0] == "ok":
            reply[3]["worker_s"] = time.monotonic() - t0
        return reply
    finally:
        if keep:
            _release(w)
        else:
            with contextlib.suppress(Exception):
                w.kill()
