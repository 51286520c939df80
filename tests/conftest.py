"""Shared test set-up: no progress bars, no user SPICE cache, one quick characterization.

Fixtures
--------
``committed_library``
    The committed quick characterization of the default card (``tests/data/library-quick``,
    made by ``scripts/regen_test_library.sh``; ``tests/test_committed_library.py`` checks it
    still matches the netlist generators and the card), copied once per session into a
    temporary directory so no test can alter the committed files. It has the same
    ``.path`` as ``quick_library`` and costs no SPICE: use it wherever *a* library of the
    default card serves (engine, fuzz, report tests); keep ``quick_library`` for tests of
    characterization itself and of SPICE against a library made in the same session.
``quick_library``
    One ``--quick`` characterization of the **default card** (seed 0, 2 ngspice workers),
    run once per test session into a temporary directory with its own fresh SPICE cache
    (nothing comes from a user cache, so it really simulates). It returns a
    :class:`QuickLibrary` named tuple ``(path, report)``: the library directory (holding
    ``library.json``, ``arrays.npz``, ``validation.json``) and the
    :class:`~cosim.characterize.pipeline.CharacterizeReport`. Treat the directory as
    read-only: copy it (``shutil.copytree``) before corrupting it in a test. It costs about
    a minute on 2 cores the first time a test asks for it; tests that use it are SPICE
    tests and carry ``@pytest.mark.ngspice``.
``quick_library_cache``
    The SPICE cache directory that ``quick_library`` filled: re-running the same
    characterization (default card, ``--quick``, seed 0) against it is served from cache.
``quick_report``
    ``cosim report --quick`` run twice in a subprocess (2 workers) on ``committed_library``:
    the first run computes everything, the second is served from the cache
    (:class:`QuickReport`). ``tests/test_report.py`` reads it, and ``tests/test_cluster.py``
    compares a cluster run with it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

import pytest

# progress bars would only clutter captured output; subprocesses inherit this too
os.environ["COSIM_PROGRESS"] = "0"

#: The committed test library (``scripts/regen_test_library.sh`` rebuilds it).
COMMITTED_LIBRARY = Path(__file__).resolve().parent / "data" / "library-quick"


@pytest.fixture(scope="session", autouse=True)
def _no_user_spice_cache(tmp_path_factory):
    """A runner built without an explicit cache_dir must not read the user's cache."""
    old = os.environ.get("COSIM_CACHE_DIR")
    os.environ["COSIM_CACHE_DIR"] = str(tmp_path_factory.mktemp("default-spice-cache"))
    yield
    if old is None:
        os.environ.pop("COSIM_CACHE_DIR", None)
    else:
        os.environ["COSIM_CACHE_DIR"] = old


class QuickLibrary(NamedTuple):
    """The session's quick characterization: library directory and its report."""

    path: Path
    report: object  # cosim.characterize.pipeline.CharacterizeReport


@pytest.fixture(scope="session")
def quick_library_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("quick-library-spice-cache")


@pytest.fixture(scope="session")
def quick_library(tmp_path_factory, quick_library_cache) -> QuickLibrary:
    from cosim.card import load_card
    from cosim.characterize.pipeline import run_characterization

    out = tmp_path_factory.mktemp("quick-library") / "lib"
    report = run_characterization(
        load_card(), out, quick=True, jobs=2, seed=0, cache_dir=quick_library_cache,
        log=lambda line: None,
    )  # fmt: skip
    return QuickLibrary(out, report)


class CommittedLibrary(NamedTuple):
    """A session copy of the committed library (``path``, like :class:`QuickLibrary`)."""

    path: Path


@pytest.fixture(scope="session")
def committed_library(tmp_path_factory) -> CommittedLibrary:
    out = tmp_path_factory.mktemp("committed-library") / "lib"
    shutil.copytree(COMMITTED_LIBRARY, out)
    return CommittedLibrary(out)


class QuickReport(NamedTuple):
    out: Path
    first_s: float
    second_s: float
    first: dict
    second: dict
    stderr: str


def _run_report(out: Path, library: Path) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "cosim", "report", "--quick", "--out", str(out),
         "--library", str(library), "--jobs", "2"],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    seconds = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert "cosim report summary" in proc.stdout
    return seconds, proc.stderr


@pytest.fixture(scope="session")
def quick_report(committed_library, tmp_path_factory) -> QuickReport:
    out = tmp_path_factory.mktemp("report") / "quick"
    first_s, err = _run_report(out, committed_library.path)
    first = json.loads((out / "report.json").read_text())
    second_s, _ = _run_report(out, committed_library.path)
    second = json.loads((out / "report.json").read_text())
    return QuickReport(out, first_s, second_s, first, second, err)
