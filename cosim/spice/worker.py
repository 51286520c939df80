"""Worker process: one libngspice instance per process (libngspice is not re-entrant).

The parent talks to it over a pipe. Messages to the worker: ``("run", payload)`` or
``("stop",)``. Replies: ``("ready", version)`` once at start, ``("fatal", message)`` if the
library cannot be loaded, then ``("ok", job_id, arrays, info)`` or
``("err", job_id, message, spice_lines, tried)`` per job.

The parent owns interruption: a worker ignores SIGINT (a Ctrl-C in the terminal reaches the
whole process group, and a KeyboardInterrupt inside an ngspice callback would only print an
"Exception ignored from cffi callback" traceback), keeps the default SIGTERM (dies quietly),
dies with its parent on Linux, and exits without a word when its pipe breaks.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import signal
import time
from pathlib import Path
from typing import Any

import numpy as np

# Convergence aids tried in order when a run fails; each is inserted as an .options line.
FALLBACKS: tuple[tuple[str, str], ...] = (
    ("plain", ""),
    (
        "gmin/source stepping with relaxed tolerances",
        ".options gminsteps=200 srcsteps=200 itl1=2000 itl2=1000 itl4=100 reltol=3e-3 "
        "abstol=1e-11 vntol=1e-5",
    ),
    ("gear integration, tighter steps", ".options method=gear itl4=200 reltol=1e-3 maxord=2"),
)


def _insert_options(netlist: str, options: str) -> str:
    """Insert an .options line right after the title (an .options line first would be lost)."""
    if not options:
        return netlist
    title, _, rest = netlist.partition("\n")
    return f"{title}\n{options}\n{rest}"


def _load_ngspice():
    logging.getLogger("PySpice").setLevel(logging.CRITICAL)
    import warnings

    warnings.filterwarnings("ignore", message="Unsupported Ngspice version")
    from PySpice.Spice.NgSpice.Shared import NgSpiceShared

    lib = os.environ.get("COSIM_NGSPICE_LIBRARY")
    if lib is not None:
        NgSpiceShared.LIBRARY_PATH = lib
        NgSpiceShared.setup_platform = classmethod(lambda cls: None)  # keep our path
    return NgSpiceShared.new_instance()


def _collect(ng, wanted: list[str] | None) -> dict[str, np.ndarray]:
    plot = ng.plot(None, ng.last_plot)
    out: dict[str, np.ndarray] = {}
    names = {k.lower(): k for k in plot}
    keys = list(names) if wanted is None else [w.lower() for w in wanted]
    missing = [k for k in keys if k not in names]
    if missing:
        raise KeyError(
            "ngspice produced no vector named "
            + ", ".join(missing[:5])
            + f" (have: {', '.join(sorted(names)[:12])}...)"
        )
    for k in keys:
        wf = plot[names[k]]
        data = getattr(wf, "_data", wf)
        out[k] = np.array(np.real(np.asarray(data)), dtype=float, copy=True).reshape(-1)
    return out


def _spice_lines(ng) -> list[str]:
    lines = [ln for ln in (list(ng._stdout) + list(ng._stderr)) if ln.strip()]
    keep = [
        ln
        for ln in lines
        if any(w in ln.lower() for w in ("error", "warning", "singular", "converge", "timestep"))
    ]
    return keep or lines[-10:]


def _run_one(ng, payload: dict[str, Any]) -> tuple:
    job_id = payload["job_id"]
    netlist: str = payload["netlist"]
    tried: list[str] = []
    messages: list[str] = []
    fallbacks = FALLBACKS if payload.get("fallbacks", True) else FALLBACKS[:1]
    for label, options in fallbacks:
        tried.append(label)
        text = _insert_options(netlist, options)
        try:
            ng.destroy()
            ng.remove_circuit()
        except Exception:  # nothing loaded yet
            pass
        try:
            ng.load_circuit(text)
            err_lines = [ln for ln in ng._stderr if ln.strip()]
            has_error = any(ln.lower().startswith("error") for ln in err_lines)
            # ngspice prints the offending element and the reason after its "Error" line
            load_errors = err_lines[-12:] if has_error else []
        except Exception:
            load_errors = [ln for ln in ng._stderr if ln.strip()][-12:] or ["(no message)"]
        if load_errors:  # a netlist error will not be fixed by convergence aids
            return ("err", job_id, "ngspice rejected the netlist", load_errors, tried)
        t0 = time.perf_counter()
        before = ng.last_plot
        ng.clear_output()
        # PySpice's own run() treats every non-"Warning" stderr line (gmin stepping
        # progress, for instance) as failure; judge success from ngspice's errors instead.
        rc = ng._ngspice_shared.ngSpice_Command(b"run")
        failed = rc != 0 or any(
            ln.lower().startswith("error") or "aborted" in ln.lower()
            for ln in list(ng._stdout) + list(ng._stderr)
        )
        if failed or ng.last_plot == before or ng.last_plot == "const":
            messages = _spice_lines(ng)
            continue
        try:
            arrays = _collect(ng, payload.get("vectors"))
        except KeyError as exc:
            return ("err", job_id, str(exc.args[0]), _spice_lines(ng), tried)
        info = {"elapsed_s": time.perf_counter() - t0, "fallback": label}
        return ("ok", job_id, arrays, info)
    return ("err", job_id, "ngspice did not converge", messages, tried)


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent goes (no orphaned workers).

    The kernel ties this to the parent *thread* that started the worker; the runner starts
    its workers from the thread that runs it, which outlives them.
    """
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        if libc.prctl(pr_set_pdeathsig, int(signal.SIGKILL), 0, 0, 0) != 0:
            return
    except (OSError, AttributeError):  # not Linux: the parent's pipe closing stops us
        return
    parent = mp.parent_process()
    if parent is not None and parent.pid is not None and os.getppid() != parent.pid:
        os._exit(0)  # the parent died before the request took effect


def setup_worker_signals() -> None:
    """Give a worker process its signal dispositions; call first in a worker entry point.

    SIGINT is ignored (the parent stops its workers), SIGTERM keeps its default (a quiet
    death), and the SIGINT/SIGTERM block the parent held while starting us is lifted; a
    Ctrl-C that arrived meanwhile is discarded.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    _die_with_parent()


def _send(conn, msg: tuple) -> bool:
    """Send ``msg`` to the parent; ``False`` when the parent is gone (its pipe broke)."""
    try:
        conn.send(msg)
    except (OSError, EOFError, ValueError):  # BrokenPipeError is an OSError
        return False
    return True


def worker_main(conn, workdir: str) -> None:
    """Entry point of a worker process (started with the ``spawn`` method)."""
    setup_worker_signals()
    _serve(conn, workdir)


def _serve(conn, workdir: str) -> None:
    """Load libngspice, say ready, then run jobs until told to stop or the pipe breaks."""
    try:
        ng = _load_ngspice()
        version = str(ng.ngspice_version)
    except Exception as exc:  # library missing or broken
        _send(conn, ("fatal", f"{type(exc).__name__}: {exc}"))
        conn.close()
        return
    if not _send(conn, ("ready", version)):
        return
    try:
        Path(workdir).mkdir(parents=True, exist_ok=True)
    except OSError:  # the parent checked it (check_cache_dir); nothing here depends on it
        pass
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):  # the parent is gone
            return
        if msg[0] == "stop":
            return
        payload = msg[1]
        try:
            reply = _run_one(ng, payload)
        except Exception as exc:  # pragma: no cover - defensive: report instead of dying
            reply = ("err", payload["job_id"], f"{type(exc).__name__}: {exc}", [], ["plain"])
        if not _send(conn, reply):
            return


def _exit_when_orphaned(interval_s: float = 1.0) -> None:
    """Exit this process once its parent is gone (checked every ``interval_s`` seconds).

    For a worker started as a plain subprocess (:func:`subprocess_main`), where the parent's
    death signal is not used: the kernel ties that signal to the parent *thread*, and a Dask
    worker's task threads come and go. ngspice releases the interpreter lock while it
    simulates, so this thread runs even during a hung simulation.
    """
    import threading

    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(interval_s)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watch, name="cosim-orphan-watch", daemon=True).start()


def subprocess_main(argv: list[str]) -> None:
    """Entry point of a worker started as ``python -m cosim.spice.worker FD WORKDIR``.

    ``FD`` is this process's end of a socket pair the parent made; the protocol is
    :func:`worker_main`'s. Used where the parent may not start multiprocessing children
    (a Dask worker process is daemonic).
    """
    from multiprocessing.connection import Connection

    fd, workdir = int(argv[0]), argv[1]
    conn = Connection(fd)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _exit_when_orphaned()
    _serve(conn, workdir)


def sleep_forever_main(conn, workdir: str) -> None:  # pragma: no cover - used by tests
    """A worker that never answers (for testing the hang timeout)."""
    setup_worker_signals()
    conn.send(("ready", "test"))
    while True:
        time.sleep(3600)


if __name__ == "__main__":  # pragma: no cover - run as a subprocess by cosim.spice.process
    import sys

    subprocess_main(sys.argv[1:])
