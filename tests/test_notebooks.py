"""The calibration notebooks run top to bottom on the default card and show their plots.

Every notebook in ``calibration/`` is executed with nbclient in a fresh ``python3`` kernel —
ipykernel's own kernel spec, which jupyter_client starts with this interpreter — against the
session's quick characterization (``COSIM_LIBRARY`` = the ``quick_library`` fixture) and a
fresh SPICE cache (``COSIM_CACHE_DIR``), so each notebook's own SPICE runs really simulate.
A notebook fails when a cell raises, when it displays no PNG image, or when anything reaches
stderr (a warning in a notebook is as much an error as in a test).

The notebooks are committed without outputs (they are executed here and by the reader); a fast
test keeps them that way.
"""

from __future__ import annotations

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
# one cell may run a quick characterization (notebook 05: about 30 s on 2 idle cores) or a
# few 64x64 ngspice runs; 10 minutes only trips on a hang, not on a slow shared machine
CELL_TIMEOUT_S = 600


def _code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def test_the_calibration_notebooks_are_all_here():
    assert tuple(p.stem for p in NOTEBOOKS) == EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_clean(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert nb.cells[0].cell_type == "markdown", "a notebook opens by saying what it measures"
    for cell in _code_cells(nb):
        assert cell.outputs == [] and cell.execution_count is None, (
            f"{path.name} holds outputs; commit it cleared (the tests execute it)"
        )


@pytest.fixture(scope="module")
def notebook_spice_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("notebook-spice-cache")


@pytest.mark.ngspice
@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_and_plots(path, quick_library, notebook_spice_cache, tmp_path, monkeypatch):
    from nbclient import NotebookClient

    # the kernel inherits this environment; TMPDIR keeps the notebooks' scratch files here
    monkeypatch.setenv("COSIM_LIBRARY", str(quick_library.path))
    monkeypatch.setenv("COSIM_CACHE_DIR", str(notebook_spice_cache))
    monkeypatch.setenv("COSIM_PROGRESS", "0")
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        kernel_name="python3",
        timeout=CELL_TIMEOUT_S,
        resources={"metadata": {"path": str(tmp_path)}},  # the kernel's working directory
        extra_arguments=["--IPKernelApp.log_level=ERROR"],  # no start-up chatter on stderr
    )
    client.execute()  # raises CellExecutionError, naming the cell, if any cell fails

    outputs = [o for cell in _code_cells(nb) for o in cell.outputs]
    images = [
        o for o in outputs if o.output_type == "display_data" and "image/png" in o.get("data", {})
    ]
    assert images, f"{path.name} displayed no plot"
    stderr = [o.text for o in outputs if o.output_type == "stream" and o.name == "stderr"]
    assert not stderr, f"{path.name} wrote to stderr:\n" + "".join(stderr)
