"""The calibration notebooks run, check their numbers, show their plots, and are committed as run.

The notebooks are committed *with* their outputs (``calibration/execute.py`` writes them),
so a designer reads SPICE against the surrogates on GitHub without running anything. Each
ends in a checks cell that asserts its SPICE-versus-surrogate numbers against stated bounds
and prints them as one ``CHECKS {json}`` line.

Every notebook is executed here with the same :func:`execute` as the script — a fresh
``python3`` kernel, the committed library (``COSIM_LIBRARY`` = the ``committed_library``
fixture, the library the committed outputs were made with) and a fresh SPICE cache, so each
notebook's own SPICE runs really simulate. A notebook fails when a cell raises (a check out
of bounds among them), when it displays no PNG image, when anything reaches stderr, or when
its checks differ from the committed ones by more than :data:`RTOL`/:data:`ATOL`: the
committed outputs must be what the code computes today.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
CALIBRATION = ROOT / "calibration"
NOTEBOOKS = sorted(CALIBRATION.glob("*.ipynb"))
EXPECTED = (
    "01_crossbar_ir_drop",
    "02_tia_subtractor",
    "03_sar_adc",
    "04_sense_row",
    "05_my_card",
)
# A re-run with the same ngspice repeats the committed numbers to rounding; these bounds
# leave room for another ngspice build's solver rounding (errors of 1e-3 LSB and below are
# all "zero" here) and still catch a changed netlist, surrogate or fit, which moves a check
# by far more. The bounds themselves are asserted inside the notebooks.
RTOL = 1e-2
ATOL = 1e-3


def _load_execute():
    spec = importlib.util.spec_from_file_location("calibration_execute", CALIBRATION / "execute.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


execute = _load_execute()


def _code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def _pngs(nb):
    return [
        o
        for c in _code_cells(nb)
        for o in c.outputs
        if o.output_type == "display_data" and "image/png" in o.get("data", {})
    ]


def test_the_calibration_notebooks_are_all_here():
    assert tuple(p.stem for p in NOTEBOOKS) == EXPECTED
    assert [p.stem for p in execute.notebooks()] == list(EXPECTED)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_executed(path):
    """Committed as run by calibration/execute.py: every code cell ran, in order, no error,
    with at least one plot and a checks cell that printed its numbers."""
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert nb.cells[0].cell_type == "markdown", "a notebook opens by saying what it measures"
    cells = _code_cells(nb)
    counts = [c.execution_count for c in cells]
    assert counts == list(range(1, len(cells) + 1)), (
        f"{path.name} is not committed as one run top to bottom; run calibration/execute.py"
    )
    errors = [o for c in cells for o in c.outputs if o.output_type == "error"]
    assert not errors, f"{path.name} holds an error output"
    assert _pngs(nb), f"{path.name} holds no PNG plot"
    assert execute.checks_of(nb), f"{path.name}: its last cell printed no CHECKS line"


@pytest.fixture(scope="module")
def notebook_spice_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("notebook-spice-cache")


@pytest.mark.ngspice
@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_checks_and_plots_as_committed(
    path, committed_library, notebook_spice_cache, tmp_path
):
    committed = execute.checks_of(nbformat.read(path, as_version=4))
    # raises CellExecutionError, naming the cell, if any cell (a failed check too) raises
    nb = execute.execute(path, committed_library.path, notebook_spice_cache, tmp_path)

    assert _pngs(nb), f"{path.name} displayed no plot"
    outputs = [o for cell in _code_cells(nb) for o in cell.outputs]
    stderr = [o.text for o in outputs if o.output_type == "stream" and o.name == "stderr"]
    assert not stderr, f"{path.name} wrote to stderr:\n" + "".join(stderr)
    fresh = execute.checks_of(nb)
    assert fresh.keys() == committed.keys(), (
        f"{path.name}: the checks changed; run calibration/execute.py and commit the notebook"
    )
    moved = {
        k: (committed[k], fresh[k])
        for k in fresh
        if not abs(fresh[k] - committed[k]) <= ATOL + RTOL * abs(committed[k])
    }
    assert not moved, (
        f"{path.name}: numbers differ from the committed outputs (committed, now): {moved}; "
        "run calibration/execute.py and commit the notebook"
    )
