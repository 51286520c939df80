"""The ngspice runner: results, failures with clear messages, timeouts, crashes, the cache."""

from __future__ import annotations

import gc
import os
import pickle
import signal
import threading
import time
import warnings
import zipfile

import numpy as np
import pytest

from cosim.errors import SimulationError
from cosim.spice import SpiceJob, SpiceRunner, ngspice_version
from cosim.spice.worker import FALLBACKS


def divider(v: float, title: str = "divider") -> str:
    return f"{title}\nV1 a 0 {v!r}\nR1 a b 1k\nR2 b 0 3k\n.op\n.end\n"


# a node that must equal 0 when it is above 0.5 V and 1 otherwise: no DC solution exists
NO_SOLUTION = "no solution\nR1 b 0 1k\nB1 b 0 V = v(b) > 0.5 ? 0 : 1\n.op\n.end\n"
# a resistor whose value is not a number, on line 3 (the title is line 1)
SYNTAX_ERROR = "syntax error\nV1 a 0 1\nR1 a 0 zzz\n.op\n.end\n"
# one second of a 1 kHz sine at a femtosecond maximum step: 1e15 steps, i.e. forever
HANGS = "hangs\nV1 a 0 SIN(0 1 1k)\nR1 a 0 1k\n.tran 1e-15 1 0 1e-15\n.end\n"


def crashing_worker(conn, workdir):
    """A real worker that dies (exit code 3) on a netlist whose title is CRASH, or closes
    its pipe and dies half a second later on one titled SLOWCRASH."""
    from cosim.spice import worker

    real = worker._run_one

    def run_one(ng, payload):
        if payload["netlist"].startswith("CRASH"):
            os._exit(3)
        if payload["netlist"].startswith("SLOWCRASH"):
            conn.close()
            time.sleep(0.5)
            os._exit(3)
        return real(ng, payload)

    worker._run_one = run_one
    worker.worker_main(conn, workdir)


@pytest.fixture
def runner(tmp_path):
    with SpiceRunner(jobs=2, cache_dir=tmp_path / "cache") as r:
        yield r


@pytest.mark.ngspice
def test_results_are_named_arrays_in_input_order(runner):
    volts = [0.4, 1.0, 2.0, 4.0, 8.0, 12.0]
    jobs = [SpiceJob(divider(v, f"divider {k}"), ("b", "V1#branch")) for k, v in enumerate(volts)]
    results = runner.run(jobs)
    for v, res in zip(volts, results, strict=True):
        # a linear .op: ngspice solves it exactly up to rounding
        assert res["b"] == pytest.approx([0.75 * v], rel=1e-12)
        assert res["B"] == pytest.approx([0.75 * v], rel=1e-12)  # names are case-insensitive
        assert res["v1#branch"] == pytest.approx([-v / 4000.0], rel=1e-12)
        assert "b" in res and "c" not in res
        assert res.info["fallback"] == "plain" and res.info["elapsed_s"] >= 0
    with pytest.raises(KeyError, match="no vector 'c'"):
        results[0]["c"]
    assert runner.stats["simulated"] == 6 and runner.stats["failed"] == 0
    assert runner.version == ngspice_version() and runner.version.startswith("3")
    # every vector when none is named; a vector ngspice did not produce is an error
    everything = runner.run([SpiceJob(divider(3.0, "all"))])[0]
    assert {"a", "b", "v1#branch"} <= set(everything.arrays)
    with pytest.raises(SimulationError, match="no vector named nope"):
        runner.run([SpiceJob(divider(3.0, "missing"), ("nope",))])


@pytest.mark.ngspice
def test_missing_ngspice_library_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv("COSIM_NGSPICE_LIBRARY", "/nonexistent/libngspice.so")
    with SpiceRunner(jobs=1, cache_dir=tmp_path) as r:
        with pytest.raises(SimulationError) as exc:
            r.run([SpiceJob(divider(1.0), ("b",))])
    msg = str(exc.value)
    assert "cannot load the ngspice shared library" in msg
    assert "/nonexistent/libngspice.so" in msg
    assert "apt-get install ngspice libngspice0-dev" in msg and "COSIM_NGSPICE_LIBRARY" in msg
    with pytest.raises(SimulationError, match="apt-get install"):
        ngspice_version()


@pytest.mark.ngspice
def test_no_convergence_carries_netlist_messages_and_what_was_tried(runner):
    with pytest.raises(SimulationError) as exc:
        runner.run([SpiceJob(NO_SOLUTION, ("b",), timeout_s=60, label="the bistable node")])
    err = exc.value
    assert str(err).startswith("ngspice did not converge in the bistable node")
    assert err.tried == tuple(label for label, _ in FALLBACKS)
    assert len(err.tried) == 3 and "gmin" in err.tried[1]
    assert err.netlist_path is not None and err.netlist_path.is_file()
    assert err.netlist_path.read_text() == NO_SOLUTION  # kept for inspection, as submitted
    assert err.spice_messages, "ngspice's own messages are carried"
    assert any("timestep too small" in m.lower() or "gmin" in m.lower() for m in err.spice_messages)
    text = str(err)
    assert f"netlist: {err.netlist_path}" in text and "tried: plain, gmin" in text
    assert "ngspice said:" in text
    # without fallbacks only the plain run is tried
    with pytest.raises(SimulationError) as exc2:
        runner.run([SpiceJob(NO_SOLUTION, ("b",), timeout_s=60, fallbacks=False)])
    assert exc2.value.tried == ("plain",)
    assert runner.stats["failed"] == 2 and runner.stats["cached"] == 0


@pytest.mark.ngspice
def test_syntax_error_is_rejected_with_ngspice_line(runner):
    with pytest.raises(SimulationError) as exc:
        runner.run([SpiceJob(SYNTAX_ERROR, ("a",), label="typo")])
    err = exc.value
    assert str(err).startswith("ngspice rejected the netlist in typo")
    assert err.tried == ("plain",)  # convergence aids cannot fix a netlist error
    assert any("line 3" in m for m in err.spice_messages)
    assert err.netlist_path.read_text() == SYNTAX_ERROR


@pytest.mark.ngspice
def test_syntax_error_message_shows_the_offending_line_and_reason(runner):
    with pytest.raises(SimulationError) as exc:
        runner.run([SpiceJob(SYNTAX_ERROR, ("a",))])
    said = "\n".join(exc.value.spice_messages).lower()
    assert "r1 a 0 zzz" in said and "unknown parameter" in said


@pytest.mark.ngspice
def test_hung_worker_is_killed_and_the_next_job_still_runs(tmp_path):
    # one worker: the job after the hung one can only run on its replacement
    with SpiceRunner(jobs=1, cache_dir=tmp_path) as r:
        t0 = time.monotonic()
        hung, ok = r.run(
            [
                SpiceJob(HANGS, ("a",), timeout_s=3, label="the slow one"),
                SpiceJob(divider(2.0), ("b",)),
            ],
            raise_on_error=False,
        )
        wall = time.monotonic() - t0
    assert isinstance(hung, SimulationError)
    assert "the slow one exceeded its timeout of 3 s; the worker was killed" in str(hung)
    assert hung.netlist_path.read_text() == HANGS
    assert ok["b"] == pytest.approx([1.5], rel=1e-12)
    assert r.stats["failed"] == 1 and r.stats["simulated"] == 1
    # 3 s timeout + restarting one worker; far less than the 1e15 steps it asked for
    assert wall < 60


@pytest.mark.ngspice
def test_crashed_worker_is_reported_and_replaced(tmp_path):
    with SpiceRunner(jobs=1, cache_dir=tmp_path, _worker_target=crashing_worker) as r:
        crashed, ok = r.run(
            [
                SpiceJob("CRASH\n" + divider(1.0), ("b",), label="doomed"),
                SpiceJob(divider(1.0), ("b",)),
            ],
            raise_on_error=False,
        )
    assert isinstance(crashed, SimulationError)
    assert str(crashed).startswith("ngspice worker died during doomed (exit code")
    assert crashed.netlist_path.is_file()
    assert ok["b"] == pytest.approx([0.75], rel=1e-12)


@pytest.mark.ngspice
def test_crashed_worker_reports_its_exit_code(tmp_path):
    with SpiceRunner(jobs=1, cache_dir=tmp_path, _worker_target=crashing_worker) as r:
        (crashed,) = r.run([SpiceJob("SLOWCRASH\n" + divider(1.0), ("b",))], raise_on_error=False)
    assert "(exit code 3)" in str(crashed)


@pytest.mark.ngspice
def test_raise_on_error_false_returns_errors_in_place(runner, tmp_path):
    jobs = [
        SpiceJob(divider(1.0), ("b",)),
        SpiceJob(NO_SOLUTION, ("b",), fallbacks=False),
        SpiceJob(divider(2.0), ("b",)),
        SpiceJob(SYNTAX_ERROR, ("a",)),
    ]
    res = runner.run(jobs, raise_on_error=False)
    assert [type(x).__name__ for x in res] == [
        "SpiceResult",
        "SimulationError",
        "SpiceResult",
        "SimulationError",
    ]
    assert "converge" in str(res[1]) and "rejected" in str(res[3])
    # with raise_on_error the first error is raised, after the others finished and were cached
    with SpiceRunner(jobs=2, cache_dir=tmp_path / "c2") as r2:
        with pytest.raises(SimulationError, match="did not converge"):
            r2.run([jobs[1], SpiceJob(divider(5.0), ("b",)), jobs[3]])
        again = r2.run([SpiceJob(divider(5.0), ("b",))])
        assert r2.stats["cached"] == 1 and again[0]["b"] == pytest.approx([3.75], rel=1e-12)


@pytest.mark.ngspice
def test_failures_are_not_cached(runner):
    runner.run([SpiceJob(SYNTAX_ERROR, ("a",))], raise_on_error=False)
    runner.run([SpiceJob(SYNTAX_ERROR, ("a",))], raise_on_error=False)
    assert runner.stats["failed"] == 2 and runner.stats["cached"] == 0


def _cache_files(d):
    return sorted(p for p in d.rglob("*.npz") if p.parent.name != "failed")


@pytest.mark.ngspice
def test_cache_serves_a_rerun_and_recomputes_a_corrupt_entry(tmp_path):
    cache = tmp_path / "cache"
    jobs = [SpiceJob(divider(1.0), ("b",)), SpiceJob(divider(2.0), ("b", "a"))]
    with SpiceRunner(jobs=2, cache_dir=cache) as r:
        first = r.run(jobs)
        assert r.stats["simulated"] == 2 and r.stats["cached"] == 0
    files = _cache_files(cache)
    assert len(files) == 2
    # a new runner (a new process in real life) is served from the cache
    with SpiceRunner(jobs=2, cache_dir=cache) as r:
        second = r.run(jobs)
        assert r.stats["cached"] == 2 and r.stats["simulated"] == 0
        assert second[0].info == {"cached": True}
        for a, b in zip(first, second, strict=True):
            assert a.arrays.keys() == b.arrays.keys()
            for k in a.arrays:
                np.testing.assert_array_equal(a[k], b[k])
        # the key covers the netlist text and the requested vectors
        r.run([SpiceJob(divider(1.0), ("b", "a")), SpiceJob(divider(1.0) + "\n", ("b",))])
        assert r.stats["simulated"] == 2
    # a corrupt entry is ignored and recomputed (and replaced by a good one)
    victim = files[0]
    victim.write_bytes(b"this is not an npz file")
    with SpiceRunner(jobs=2, cache_dir=cache) as r:
        third = r.run(jobs)
        assert r.stats["cached"] == 1 and r.stats["simulated"] == 1
    np.testing.assert_array_equal(third[0]["b"], first[0]["b"])
    with np.load(victim) as z:
        assert "b" in z.files


@pytest.mark.ngspice
def test_truncated_cache_entry_is_recomputed(tmp_path):
    cache = tmp_path / "cache"
    job = SpiceJob(divider(1.0), ("b",))
    with SpiceRunner(jobs=1, cache_dir=cache) as r:
        r.run([job])
    (victim,) = _cache_files(cache)
    victim.write_bytes(victim.read_bytes()[:40])  # the zip header survives, the rest is gone
    crashed = False
    # np.load leaks its file handle when it raises; keep that ResourceWarning inside here
    with warnings.catch_warnings(), SpiceRunner(jobs=1, cache_dir=cache) as r:
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            result = r.run([job])
        except zipfile.BadZipFile:
            crashed = True
        gc.collect()
    assert not crashed, "a truncated cache entry crashed the run"
    assert result[0]["b"] == pytest.approx([0.75], rel=1e-12)
    assert r.stats["simulated"] == 1


@pytest.mark.ngspice
def test_no_cache_writes_no_files(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    with SpiceRunner(jobs=1, cache_dir=None) as r:
        r.run([SpiceJob(divider(1.0), ("b",))])
        r.run([SpiceJob(divider(1.0), ("b",))])
        assert r.stats["simulated"] == 2 and r.stats["cached"] == 0
    assert not _cache_files(tmp_path)


def test_simulation_error_keeps_its_fields_across_processes(tmp_path):
    err = SimulationError(
        "it broke", netlist_path=tmp_path / "x.cir", spice_messages=["a", "b"], tried=["plain"]
    )
    back = pickle.loads(pickle.dumps(err))
    assert isinstance(back, SimulationError)
    assert (back.netlist_path, back.spice_messages, back.tried) == (
        tmp_path / "x.cir",
        ("a", "b"),
        ("plain",),
    )
    assert str(back) == str(err)


def test_invalid_job_count():
    with pytest.raises(ValueError, match="jobs must be >= 1"):
        SpiceRunner(jobs=0)


# -- issue 9: corrupt (non-finite) cache entries, unusable cache directories, interruption --


@pytest.mark.ngspice
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_cache_entry_holding_nan_or_inf_is_recomputed(tmp_path, bad):
    cache = tmp_path / "cache"
    job = SpiceJob(divider(1.0), ("b", "a"))
    with SpiceRunner(jobs=1, cache_dir=cache) as r:
        r.run([job])
    (victim,) = _cache_files(cache)
    with np.load(victim) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["a"] = np.array([bad])  # a valid npz, but no simulation produces this
    with open(victim, "wb") as fh:
        np.savez(fh, **arrays)
    with SpiceRunner(jobs=1, cache_dir=cache) as r:
        (res,) = r.run([job])
        assert r.stats["cached"] == 0 and r.stats["simulated"] == 1
    assert res["a"] == pytest.approx([1.0], rel=1e-12)
    assert res["b"] == pytest.approx([0.75], rel=1e-12)
    with np.load(victim) as z:  # replaced by a good entry
        assert np.isfinite(z["a"]).all() and np.isfinite(z["b"]).all()
    with SpiceRunner(jobs=1, cache_dir=cache) as r:  # ...which is served from now on
        r.run([job])
        assert r.stats["cached"] == 1 and r.stats["simulated"] == 0


@pytest.mark.ngspice
def test_empty_cache_entry_is_recomputed(tmp_path):
    cache = tmp_path / "cache"
    job = SpiceJob(divider(2.0), ("b",))
    with SpiceRunner(jobs=1, cache_dir=cache) as r:
        r.run([job])
    (victim,) = _cache_files(cache)
    victim.write_bytes(b"")
    with SpiceRunner(jobs=1, cache_dir=cache) as r:
        (res,) = r.run([job])
        assert r.stats["simulated"] == 1
    assert res["b"] == pytest.approx([1.5], rel=1e-12)


def test_non_finite_results_are_not_cached(tmp_path):
    from cosim.spice import SpiceResult

    r = SpiceRunner(jobs=1, cache_dir=tmp_path / "cache")  # no worker starts before run()
    r._cache_put("ab" * 32, SpiceResult({"b": np.array([1.0, np.nan])}))
    assert not _cache_files(tmp_path)
    r._cache_put("cd" * 32, SpiceResult({"b": np.array([1.0, 2.0])}))
    assert len(_cache_files(tmp_path)) == 1
    assert r._cache_get("ab" * 32) is None and r._cache_get("cd" * 32) is not None


def _one_line(exc: BaseException) -> str:
    msg = str(exc)
    assert "\n" not in msg, msg
    return msg


def test_cache_dir_that_is_a_file_is_one_clear_error(tmp_path):
    from cosim.errors import CosimError
    from cosim.spice import check_cache_dir

    f = tmp_path / "not-a-dir"
    f.write_text("precious")
    for bad, why in ((f, "is not a directory (it is a file)"), (f / "sub", "a parent of it")):
        with pytest.raises(CosimError) as exc:
            check_cache_dir(bad)
        msg = _one_line(exc.value)
        assert str(bad) in msg and why in msg
        assert msg.endswith("pass --cache-dir a writable directory, or --no-cache")
        # the runner checks before it starts a single worker
        with pytest.raises(CosimError, match="SPICE cache directory"):
            SpiceRunner(jobs=2, cache_dir=bad)
    assert f.read_text() == "precious"  # nothing was written over it


def test_unwritable_cache_dir_is_one_clear_error(tmp_path, monkeypatch):
    from cosim.errors import CosimError
    from cosim.spice import cache as cache_mod
    from cosim.spice import check_cache_dir

    d = tmp_path / "ro"
    d.mkdir()
    if os.geteuid() != 0:
        d.chmod(0o500)
    else:  # root writes through permission bits: make the write itself fail

        def refuse(*a, **k):
            raise PermissionError(13, "Permission denied")

        monkeypatch.setattr(cache_mod.tempfile, "mkstemp", refuse)
    try:
        with pytest.raises(CosimError) as exc:
            check_cache_dir(d)
        msg = _one_line(exc.value)
        assert msg.startswith(f"cannot write in SPICE cache directory {d}: Permission denied;")
        assert "--cache-dir" in msg
        with pytest.raises(CosimError, match="cannot write in SPICE cache directory"):
            SpiceRunner(jobs=1, cache_dir=d)
    finally:
        d.chmod(0o700)


def test_check_cache_dir_creates_a_missing_directory(tmp_path):
    from cosim.spice import check_cache_dir

    d = tmp_path / "a" / "b" / "cache"
    assert check_cache_dir(str(d)) == d and d.is_dir()
    assert list(d.iterdir()) == []  # the write probe is removed


@pytest.mark.parametrize("bad", [0, -1, True, 1.5])
def test_invalid_job_counts(bad):
    with pytest.raises(ValueError, match="jobs must be >= 1"):
        SpiceRunner(jobs=bad, cache_dir=None)


def _interrupt_main_after(seconds: float) -> threading.Timer:
    """A real SIGINT to the main thread (as Ctrl-C): it interrupts a blocking wait, which
    ``_thread.interrupt_main`` does not."""
    t = threading.Timer(
        seconds, signal.pthread_kill, (threading.main_thread().ident, signal.SIGINT)
    )
    t.start()
    return t


@pytest.mark.ngspice
def test_interrupted_run_kills_its_busy_workers_and_the_runner_recovers(tmp_path):
    with SpiceRunner(jobs=2, cache_dir=tmp_path) as r:
        r.run([SpiceJob(divider(1.0), ("b",)), SpiceJob(divider(3.0), ("b",))])  # workers up
        procs = [w.proc for w in r._workers]
        assert len(procs) == 2 and all(p.is_alive() for p in procs)
        timer = _interrupt_main_after(1.0)
        t0 = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            r.run([SpiceJob(HANGS, ("a",), timeout_s=60), SpiceJob(HANGS + "*", ("a",))])
        timer.join()
        # both workers were busy: killed at once, not waited for (5 s each) or left running
        assert time.monotonic() - t0 < 4
        assert not any(p.is_alive() for p in procs) and r._workers == []
        # the runner is usable again, with fresh workers
        (res,) = r.run([SpiceJob(divider(2.0), ("b",))])
        assert res["b"] == pytest.approx([1.5], rel=1e-12)
        assert r._workers and r._workers[0].proc not in procs


@pytest.mark.ngspice
def test_worker_ignores_sigint_and_prints_nothing(tmp_path, capfd):
    # a Ctrl-C in a terminal reaches the workers too; the parent alone decides what stops
    with SpiceRunner(jobs=1, cache_dir=tmp_path) as r:
        r.run([SpiceJob(divider(1.0), ("b",))])
        pid = r._workers[0].proc.pid

        def poke():
            for _ in range(10):
                time.sleep(0.2)
                os.kill(pid, signal.SIGINT)

        t = threading.Thread(target=poke)
        t.start()
        (hung,) = r.run([SpiceJob(HANGS, ("a",), timeout_s=3)], raise_on_error=False)
        t.join()
    # it ran on until its timeout instead of dying of the SIGINTs
    assert "exceeded its timeout of 3 s" in str(hung)
    err = capfd.readouterr().err
    assert "KeyboardInterrupt" not in err and "Traceback" not in err
    assert "Exception ignored" not in err


@pytest.mark.ngspice
def test_a_cache_entry_moved_over_another_key_is_simulated_again(tmp_path):
    """An entry names its own key: one copied over another's file (found by a hostile
    user: a swapped entry of the same shapes gave a library 200 LSB off, silently) is not
    trusted but re-simulated."""
    a = SpiceJob(divider(1.0, "a"), ("b",))
    b = SpiceJob(divider(3.0, "b"), ("b",))
    with SpiceRunner(jobs=1, cache_dir=tmp_path) as r:
        ra, rb = r.run([a, b])
        files = _cache_files(tmp_path)
        assert len(files) == 2
        files[1].write_bytes(files[0].read_bytes())  # one entry under the other's name
        ra2, rb2 = r.run([a, b])
        assert r.stats["simulated"] == 3 and r.stats["cached"] == 1
    np.testing.assert_array_equal(ra2["b"], ra["b"])
    np.testing.assert_array_equal(rb2["b"], rb["b"])
    assert not np.array_equal(ra["b"], rb["b"])
