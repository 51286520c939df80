"""``--scheduler``: cosim's work on a real Dask cluster (a ``dask scheduler`` and ``dask
worker`` processes on 127.0.0.1), compared with the local runs of the same session.

* A quick characterization runs through two workers; one is killed (its process group,
  SIGKILL) once results are coming back; the library must equal the session's local one
  (``quick_library``) byte for byte in its arrays and validation.
* A quick report runs through the cluster with a worker killed mid-run; its ``report.json``
  must equal the local quick report's (``quick_report``) but for timings and the command.
* ``cosim evaluate`` (chips, a sweep, ``--verify-spice``) gives the local JSON.
* A hung ngspice on a worker is killed at its timeout, retried, then recorded as failed with
  its netlist saved on the client.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cosim.errors import SimulationError


class DaskCluster:
    """A scheduler and named workers, each in its own process group."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.file = root / "scheduler.json"
        self.procs: dict[str, subprocess.Popen] = {}
        self.env = {**os.environ, "COSIM_PROGRESS": "0"}
        self._start("scheduler", [
            "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
            "--scheduler-file", str(self.file),
        ])  # fmt: skip
        deadline = time.monotonic() + 60
        while not self.file.is_file():
            assert time.monotonic() < deadline, "dask scheduler did not start"
            assert self.procs["scheduler"].poll() is None, self.log("scheduler")
            time.sleep(0.2)
        self.address = json.loads(self.file.read_text())["address"]

    def _start(self, name: str, args: list[str]) -> None:
        log = open(self.root / f"{name}.log", "wb")  # closed below: Popen keeps its copy
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", "dask", *args],
            stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True,
        )  # fmt: skip
        log.close()

    def log(self, name: str) -> str:
        return (self.root / f"{name}.log").read_text(errors="replace")[-3000:]

    def add_worker(self, name: str) -> None:
        self._start(name, [
            "worker", "--scheduler-file", str(self.file), "--nthreads", "1", "--no-nanny",
            "--no-dashboard", "--name", name, "--local-directory", str(self.root / name),
        ])  # fmt: skip
        self.wait_for_workers()

    def workers(self) -> list[str]:
        return [n for n, p in self.procs.items() if n != "scheduler" and p.poll() is None]

    def wait_for_workers(self) -> None:
        from distributed import Client

        with Client(self.address, timeout=60) as c:
            c.wait_for_workers(len(self.workers()), timeout=60)

    def kill(self, name: str) -> None:
        """Lose a machine: SIGKILL the worker's whole process group (ngspice included)."""
        proc = self.procs.pop(name)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)

    def close(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory):
    cluster = DaskCluster(tmp_path_factory.mktemp("dask"))
    try:
        cluster.add_worker("w1")
        cluster.add_worker("w2")
        yield cluster
    finally:
        cluster.close()


def _cosim(args: list[str], address: str) -> subprocess.Popen:
    env = {**os.environ, "COSIM_PROGRESS": "0", "COSIM_SCHEDULER": address}
    return subprocess.Popen(
        [sys.executable, "-m", "cosim", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip


def _kill_when(cluster: DaskCluster, proc: subprocess.Popen, ready, victim: str) -> bool:
    """Kill ``victim`` once ``ready()`` holds while ``proc`` still runs; True if it did."""
    deadline = time.monotonic() + 600
    while proc.poll() is None and time.monotonic() < deadline:
        if ready():
            cluster.kill(victim)
            return True
        time.sleep(0.1)
    return False


def _finish(proc: subprocess.Popen, timeout: float = 900) -> tuple[str, str]:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]
    assert "Traceback" not in err
    return out, err


@pytest.mark.slow
def test_characterization_survives_a_lost_worker(dask_cluster, quick_library, tmp_path):
    cache = tmp_path / "spice-cache"
    lib = tmp_path / "lib"
    proc = _cosim(
        ["characterize", "--quick", "--seed", "0", "--cache-dir", str(cache), "--out", str(lib)],
        dask_cluster.address,
    )
    # results are coming back (the client caches each), and more are running: lose w1
    killed = _kill_when(dask_cluster, proc, lambda: len(list(cache.glob("*/*.npz"))) >= 8, "w1")
    dask_cluster.add_worker("w3")  # a replacement joins the running characterization
    out, err = _finish(proc)
    assert killed, "the characterization ended before a worker could be killed"
    assert f"Dask scheduler {dask_cluster.address}: 2 worker(s)" in err
    assert "on the Dask cluster" in out
    for name in ("arrays.npz", "validation.json"):
        assert (lib / name).read_bytes() == (quick_library.path / name).read_bytes(), name
    meta = json.loads((lib / "library.json").read_text())
    local = json.loads((quick_library.path / "library.json").read_text())
    assert _untimed(meta["blocks"]) == _untimed(local["blocks"]) and meta["card"] == local["card"]
    assert meta["scheduler"] == dask_cluster.address and meta["jobs"] is None


def _untimed(blocks: dict) -> dict:
    """A library's blocks without the seconds its characterization took."""
    out = json.loads(json.dumps(blocks))
    for b in out.values():
        for k in ("wall_s", "ngspice_s_per_conversion"):
            b.get("extra", {}).pop(k, None)
    return out


def _comparable(report: dict) -> dict:
    r = json.loads(json.dumps(report))
    for key in ("timing", "command"):
        r.pop(key)
    r["library"].pop("seconds")
    r["accuracy_grid_details"].pop("train_seconds")
    return r


@pytest.mark.slow
def test_quick_report_survives_a_lost_worker(
    dask_cluster, quick_report, committed_library, tmp_path
):
    out = tmp_path / "report"
    proc = _cosim(
        ["report", "--quick", "--library", str(committed_library.path), "--out", str(out)],
        dask_cluster.address,
    )
    models = out / "cache" / "models"  # trained models come back: lose a worker among them
    killed = _kill_when(
        dask_cluster, proc, lambda: len(list(models.glob("*.npz"))) >= 3, dask_cluster.workers()[0]
    )
    dask_cluster.add_worker("w4")  # a replacement joins the running report
    _finish(proc)
    assert killed, "the report ended before a worker could be killed"
    report = json.loads((out / "report.json").read_text())
    assert _comparable(report) == _comparable(quick_report.first)
    assert report["timing"]["tasks_run"] == quick_report.first["timing"]["tasks_run"]


@pytest.mark.slow
def test_evaluate_on_the_cluster_matches_local(dask_cluster, committed_library, tmp_path):
    from cosim.cli import main

    model = tmp_path / "m.npz"
    assert main(["train", "--dataset", "digits", "--model", "mlp", "--epochs", "2",
                 "--w-bits", "4", "--a-bits", "3", "--out", str(model)]) == 0  # fmt: skip
    base = ["evaluate", "--model", str(model), "--library", str(committed_library.path),
            "--limit", "100", "--chips", "2", "--seed", "5"]  # fmt: skip
    runs = {
        "plain": [],
        "sweep": ["--sweep", "nvw=0.05:0.15:0.05"],
        "verify": ["--verify-spice", "2", "--cache-dir", str(tmp_path / "c-{where}")],
    }
    for name, extra in runs.items():
        got = {}
        for where, address in (("local", None), ("cluster", dask_cluster.address)):
            js = tmp_path / f"{name}-{where}.json"
            args = [*base, *(a.format(where=where) for a in extra), "--json", str(js)]
            args += ["--scheduler", address] if address else []
            assert main(args) == 0, (name, where)
            got[where] = json.loads(js.read_text())
        for r in got.values():
            r.pop("sweep_png", None)
            r.get("evaluation", {}).pop("wall_s", None)
            if "verify_spice" in r:
                v = r["verify_spice"]
                r["verify_spice"] = {k: v[k] for k in v if "second" not in k and k != "wall_s"}
        assert got["local"] == got["cluster"], name


@pytest.mark.slow
def test_a_worker_address_is_not_a_scheduler(dask_cluster, tmp_path, capsys):
    from distributed import Client

    from cosim.cli import main

    with Client(dask_cluster.address, timeout=30) as c:
        worker = next(iter(c.scheduler_info()["workers"]))
    assert main(["report", "--quick", "--out", str(tmp_path / "r"), "--scheduler", worker]) == 2
    err = capsys.readouterr().err
    assert "is a Dask Worker, not the scheduler" in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_hung_ngspice_on_a_worker_is_killed_retried_and_recorded(dask_cluster, tmp_path):
    from cosim.cluster import connect
    from cosim.spice.runner import SpiceJob, SpiceRunner

    hang = SpiceJob(
        "endless rc\nV1 a 0 PULSE(0 1 0 1p 1p 1n 2n)\nR1 a b 1k\nC1 b 0 1p\n.tran 1p 10\n.end",
        ("b",), timeout_s=1.0, label="endless rc",
    )  # fmt: skip
    ok = SpiceJob("divider\nV1 a 0 1\nR1 a b 1k\nR2 b 0 3k\n.op\n.end", ("b",))
    with connect(dask_cluster.address, log=lambda line: None) as cl:
        with SpiceRunner(cache_dir=tmp_path, cluster=cl, retries=1) as runner:
            t0 = time.monotonic()
            out = runner.run([hang, ok], raise_on_error=False)
            seconds = time.monotonic() - t0
    err, res = out
    assert isinstance(err, SimulationError)
    assert "exceeded its timeout of 1 s" in str(err) and "tried 2 time(s)" in str(err)
    assert err.netlist_path is not None and Path(err.netlist_path).read_text() == hang.netlist
    assert float(res["b"][0]) == pytest.approx(0.75)
    assert seconds < 60  # two tries of 1 s each, not the 10 s transient
    assert runner.stats["failed"] == 1 and runner.stats["simulated"] == 1


# -------------------------------------------------------------- without a cluster (fast)
@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("tcp://10.0.0.5:8786", "tcp://10.0.0.5:8786"),
        ("node7:8786", "tcp://node7:8786"),
        ("tls://h.example.org:1", "tls://h.example.org:1"),
        ("  tcp://[::1]:8786 ", "tcp://[::1]:8786"),
    ],
)
def test_scheduler_address_forms(text, want, monkeypatch):
    from cosim.cluster import scheduler_address

    monkeypatch.delenv("COSIM_SCHEDULER_TIMEOUT", raising=False)
    assert scheduler_address(text) == want


@pytest.mark.parametrize(
    "text",
    [
        "",
        "nonsense",
        "tcp://host",
        "http://h:80",
        "h:0",
        "h:65536",
        "h:8786/x",
        "a b:1",
        "ucx://h:1",
        "a..b:1",
        ".:1",
        "x" * 64 + ":1",
        "-h:1",
        "inproc://x",
    ],
)
def test_a_bad_scheduler_address_is_one_line(text):
    from cosim.cluster import scheduler_address
    from cosim.errors import CosimError

    with pytest.raises(CosimError, match="not a Dask scheduler address") as info:
        scheduler_address(text)
    assert "\n" not in str(info.value)


def test_the_environment_names_the_scheduler_and_its_timeout(monkeypatch):
    from cosim.cluster import connect_timeout, scheduler_address
    from cosim.errors import CosimError

    monkeypatch.delenv("COSIM_SCHEDULER", raising=False)
    monkeypatch.delenv("COSIM_SCHEDULER_TIMEOUT", raising=False)
    assert scheduler_address(None) is None and connect_timeout() == 30.0
    monkeypatch.setenv("COSIM_SCHEDULER", "  ")
    assert scheduler_address(None) is None  # empty: local
    monkeypatch.setenv("COSIM_SCHEDULER", "h:8786")
    assert scheduler_address(None) == "tcp://h:8786"
    assert scheduler_address("other:1") == "tcp://other:1"  # the flag wins
    monkeypatch.setenv("COSIM_SCHEDULER", "h")
    with pytest.raises(CosimError, match="COSIM_SCHEDULER 'h'"):
        scheduler_address(None)
    for bad in ("0", "-1", "nan", "inf", "1e9", "soon", "1_0", "\uff12", "0x10"):
        monkeypatch.setenv("COSIM_SCHEDULER_TIMEOUT", bad)
        with pytest.raises(CosimError, match="COSIM_SCHEDULER_TIMEOUT"):
            scheduler_address("h:8786")
    monkeypatch.setenv("COSIM_SCHEDULER_TIMEOUT", "2.5")
    assert connect_timeout() == 2.5
    monkeypatch.setenv("COSIM_SCHEDULER_TIMEOUT", "soon")  # refused even without a scheduler
    with pytest.raises(CosimError, match="COSIM_SCHEDULER_TIMEOUT"):
        scheduler_address(None)


def test_an_unreachable_scheduler_is_one_line_and_writes_nothing(tmp_path, monkeypatch, capsys):
    import socket

    from cosim.cli import main

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("COSIM_SCHEDULER_TIMEOUT", "1")
    out = tmp_path / "lib"
    t0 = time.monotonic()
    rc = main(["characterize", "--quick", "--out", str(out), "--scheduler", f"127.0.0.1:{port}"])
    err = capsys.readouterr().err
    assert rc == 2 and time.monotonic() - t0 < 30
    assert re.search(
        r"(no Dask scheduler answered|cannot reach a Dask scheduler) at tcp://127", err
    )
    assert len(err.strip().splitlines()) == 1 and not out.exists()
    rep = tmp_path / "rep"
    rc = main(["report", "--quick", "--out", str(rep), "--scheduler", f"127.0.0.1:{port}"])
    assert rc == 2 and "Dask scheduler" in capsys.readouterr().err
    assert not rep.exists()  # the report directory it had begun is gone again


def test_something_that_is_not_a_scheduler_is_one_line_within_the_timeout(
    tmp_path, monkeypatch, capsys
):
    """A listener that accepts and never speaks (a dashboard port, a stuck server) would
    hold distributed's Client in its handshake for ever; TLS without its configuration
    fails inside distributed."""
    import socket

    from cosim.cli import main

    monkeypatch.setenv("COSIM_SCHEDULER_TIMEOUT", "2")
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        for address, needle in (
            (f"127.0.0.1:{port}", "no Dask scheduler answered at tcp://127.0.0.1:"),
            (f"tls://127.0.0.1:{port}", "cannot reach a Dask scheduler at tls://127.0.0.1:"),
        ):
            t0 = time.monotonic()
            rc = main(["report", "--quick", "--out", str(tmp_path / "r"), "--scheduler", address])
            err = capsys.readouterr().err
            assert rc == 2 and time.monotonic() - t0 < 20, err
            assert needle in err and len(err.strip().splitlines()) == 1, err
            assert not (tmp_path / "r").exists()


def test_a_shipped_library_loads_with_the_same_checks(committed_library, tmp_path):
    from cosim.errors import LibraryError
    from cosim.library import files_digest, library_files, library_from_files, load_library

    files = library_files(committed_library.path)
    lib = library_from_files(files, root=tmp_path)
    assert lib.path.parent == tmp_path and lib.path.name == files_digest(files)
    assert lib.card == load_library(committed_library.path).card
    again = library_from_files(files, root=tmp_path)  # written once, loaded again
    assert again.path == lib.path and len(list(tmp_path.iterdir())) == 1
    with pytest.raises(LibraryError, match="must hold exactly"):
        library_from_files({"library.json": files["library.json"]}, root=tmp_path)
    (lib.path / "arrays.npz").unlink()  # a temporary-file cleaner took part of the copy
    assert library_from_files(files, root=tmp_path).card == lib.card  # written again
    (lib.path / "validation.json").write_text("{}")  # damaged: its digest no longer matches
    assert library_from_files(files, root=tmp_path).card == lib.card
    assert (lib.path / "validation.json").read_bytes() == files["validation.json"]
    assert [p.name for p in tmp_path.iterdir()] == [lib.path.name]  # nothing stale left
    broken = {**files, "arrays.npz": b"not a zip"}
    with pytest.raises(LibraryError):
        library_from_files(broken, root=tmp_path)


def test_worker_memo_builds_once_and_keeps_the_newest():
    from cosim.cluster import worker_memo

    calls = []
    for _ in range(3):
        assert worker_memo(("test", 1), lambda: calls.append(1) or "built") == "built"
    assert calls == [1]
    for k in range(20):  # evicts the oldest entries, never the one just built
        assert worker_memo(("test-evict", k), lambda k=k: k) == k
    assert worker_memo(("test-evict", 19), lambda: "rebuilt") == 19
    assert worker_memo(("test", 1), lambda: "rebuilt") == "rebuilt"
