"""Ctrl-C and SIGTERM: workers stopped, finished work kept, one line, the right exit status.

The in-process tests drive :func:`cosim.cli.main` with a stand-in command (fast, no SPICE);
the subprocess tests interrupt a real ``cosim characterize`` once its first SPICE results
are in the cache.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest

from cosim import cli

# -- in process: cosim.cli.main with a stand-in command ------------------------------------


@pytest.fixture
def fake_command(monkeypatch):
    """A ``cosim fake`` command whose ``run`` is ``fake_command.behaviour(args)``."""
    mod = types.ModuleType("cosim_test_fake_command")
    mod.events = []

    def configure(p):
        p.add_argument("--x", default=None)

    def run(args):
        try:
            return mod.behaviour(args)
        finally:
            mod.events.append("cleaned up")

    mod.configure, mod.run = configure, run
    monkeypatch.setitem(sys.modules, mod.__name__, mod)
    monkeypatch.setattr(cli, "COMMANDS", {"fake": (mod.__name__, "a stand-in")})
    return mod


@pytest.fixture
def sigterm_sentinel():
    """A SIGTERM handler of the caller's own, which main() must leave in place."""

    def caller_handler(signum, frame):  # pragma: no cover - never called
        raise AssertionError("the caller's handler ran")

    previous = signal.signal(signal.SIGTERM, caller_handler)
    yield caller_handler
    signal.signal(signal.SIGTERM, previous)


def _wait_for_signal() -> None:
    """Block like a command waiting on its workers, until a signal's exception arrives."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        time.sleep(0.01)
    raise AssertionError("no signal arrived")


def test_sigterm_unwinds_like_ctrl_c_and_exits_143(fake_command, sigterm_sentinel, capsys):
    def behaviour(args):
        os.kill(os.getpid(), signal.SIGTERM)
        _wait_for_signal()

    fake_command.behaviour = behaviour
    assert cli.main(["fake"]) == 143
    out, err = capsys.readouterr()
    assert err == "cosim fake: interrupted (SIGTERM); finished work is kept\n" and out == ""
    assert fake_command.events == ["cleaned up"]  # the command's finally ran
    assert signal.getsignal(signal.SIGTERM) is sigterm_sentinel


def test_a_second_sigterm_does_not_interrupt_the_clean_up(fake_command, sigterm_sentinel, capsys):
    def behaviour(args):
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            _wait_for_signal()
        finally:
            os.kill(os.getpid(), signal.SIGTERM)  # impatient: again, during the clean-up
            time.sleep(0.05)
            fake_command.events.append("clean-up finished")

    fake_command.behaviour = behaviour
    assert cli.main(["fake"]) == 143
    assert fake_command.events == ["clean-up finished", "cleaned up"]
    assert capsys.readouterr().err.count("\n") == 1
    assert signal.getsignal(signal.SIGTERM) is sigterm_sentinel


def test_ctrl_c_still_exits_130(fake_command, sigterm_sentinel, capsys):
    def behaviour(args):
        signal.raise_signal(signal.SIGINT)
        _wait_for_signal()

    fake_command.behaviour = behaviour
    assert cli.main(["fake"]) == 130
    assert capsys.readouterr().err == "cosim fake: interrupted; finished work is kept\n"
    assert fake_command.events == ["cleaned up"]
    assert signal.getsignal(signal.SIGTERM) is sigterm_sentinel


def test_handler_is_restored_after_success_and_errors(fake_command, sigterm_sentinel, capsys):
    from cosim.errors import CosimError

    seen = []

    def ok(args):
        seen.append(signal.getsignal(signal.SIGTERM))
        return 0

    fake_command.behaviour = ok
    assert cli.main(["fake"]) == 0
    assert seen[0] is not sigterm_sentinel  # installed while the command ran
    assert signal.getsignal(signal.SIGTERM) is sigterm_sentinel

    def fails(args):
        raise CosimError("no good")

    fake_command.behaviour = fails
    assert cli.main(["fake"]) == 2
    assert capsys.readouterr().err == "cosim fake: error: no good\n"
    assert signal.getsignal(signal.SIGTERM) is sigterm_sentinel


def test_an_ignored_sigterm_stays_ignored(fake_command):
    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        fake_command.behaviour = lambda args: signal.getsignal(signal.SIGTERM) == signal.SIG_IGN
        assert cli.main(["fake"]) == 1  # True: still ignored while the command ran
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGTERM, previous)


# -- a real `cosim characterize`, interrupted -----------------------------------------------

# the `cosim` entry point, with Ctrl-C's usual disposition even if pytest was started with
# SIGINT ignored (as background jobs of a non-interactive shell are)
_COSIM = (
    "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "sys.argv[0] = 'cosim'; from cosim.cli import main; sys.exit(main())"
)


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (psutil when installed, else /proc)."""
    try:
        import psutil
    except ImportError:  # pragma: no cover - psutil is usually there
        parents: dict[int, list[int]] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                except OSError:
                    continue
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                parents.setdefault(ppid, []).append(int(entry.name))
        out, todo = [], [pid]
        while todo:
            kids = parents.get(todo.pop(), [])
            out += kids
            todo += kids
        return out
    try:
        return [c.pid for c in psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for an init that does not reap counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _cache_entries(cache: Path) -> list[Path]:
    return sorted(p for p in cache.rglob("*.npz") if p.parent.name != "failed")


def _interrupt_characterize(tmp_path: Path, send) -> tuple[int, str, list[Path], list[int]]:
    """Start `cosim characterize`, wait for its first cached results, call ``send(proc)``.

    Returns the exit status, stderr, the cache entries seen before the signal, and the
    processes that were below the command when it was signalled.
    """
    cache, lib = tmp_path / "cache", tmp_path / "lib"
    env = {**os.environ, "COSIM_PROGRESS": "0"}
    env.pop("COSIM_CACHE_DIR", None)
    cmd = [sys.executable, "-c", _COSIM, "characterize", "--quick", "--jobs", "2"]
    cmd += ["--out", str(lib), "--cache-dir", str(cache)]
    proc = subprocess.Popen(
        cmd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a shell job would be
    )
    try:
        deadline = time.monotonic() + 60
        while not _cache_entries(cache):
            assert proc.poll() is None, f"cosim exited early: {proc.communicate()}"
            assert time.monotonic() < deadline, "no SPICE result reached the cache in 60 s"
            time.sleep(0.05)
        before = _cache_entries(cache)
        kids = _descendants(proc.pid)
        assert len(kids) >= 2, "the two ngspice workers are running"
        send(proc)
        _out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:  # pragma: no cover - only when the test is failing
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    # nothing it started may outlive it (workers, multiprocessing's resource tracker)
    deadline = time.monotonic() + 10
    while any(_alive(k) for k in kids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(k) for k in kids), "processes outlived cosim"
    assert not lib.exists(), "an interrupted characterization wrote a library"
    return proc.returncode, err, before, kids


def _assert_work_kept(cache: Path, before: list[Path]) -> None:
    after = _cache_entries(cache)
    assert set(before) <= set(after)  # finished runs stay cached, so a re-run resumes
    for entry in after:  # ...and every entry is whole (atomic writes)
        with np.load(entry) as z:
            assert "__cosim_cache_key__" in z.files  # an entry names its own key
            numbers = [z[k] for k in z.files if z[k].dtype.kind in "fc"]
            assert numbers and all(np.isfinite(a).all() for a in numbers)
    assert not [p for p in cache.rglob("*.tmp")], "a half-written cache entry was left"


@pytest.mark.ngspice
def test_sigterm_stops_characterize_cleanly(tmp_path):
    code, err, before, _ = _interrupt_characterize(
        tmp_path, lambda proc: proc.send_signal(signal.SIGTERM)
    )
    assert code == 143, err
    assert err == "cosim characterize: interrupted (SIGTERM); finished work is kept\n"
    _assert_work_kept(tmp_path / "cache", before)


@pytest.mark.ngspice
def test_ctrl_c_stops_characterize_cleanly(tmp_path):
    # a terminal's Ctrl-C signals the whole foreground process group, workers included
    code, err, before, _ = _interrupt_characterize(
        tmp_path, lambda proc: os.killpg(proc.pid, signal.SIGINT)
    )
    assert code == 130, err
    assert err == "cosim characterize: interrupted; finished work is kept\n"
    assert "Traceback" not in err and "Exception ignored" not in err
    _assert_work_kept(tmp_path / "cache", before)
