"""Execute the calibration notebooks in place, so they are committed with their outputs.

    python calibration/execute.py                     # every notebook, the committed library
    python calibration/execute.py 03_sar_adc.ipynb    # one notebook
    python calibration/execute.py --library DIR --cache-dir DIR

Each notebook runs top to bottom in a fresh ``python3`` kernel (ipykernel's own kernel spec,
which jupyter_client starts with this interpreter) with ``COSIM_LIBRARY`` set to the library
(default: the committed ``tests/data/library-quick``, so the committed outputs and the test
suite read the same surrogates) and ``COSIM_CACHE_DIR`` set to the SPICE cache (default: a
fresh temporary one, so the notebooks' own SPICE runs really simulate). The kernel starts
in the repository root (so the committed outputs name the library as
``tests/data/library-quick``, not a path on one machine) with ``TMPDIR`` a temporary
directory (notebook 05 writes its card and library there). A cell that raises —
a failed check among them — stops the run, and that notebook is not rewritten.

``tests/test_notebooks.py`` runs the same :func:`execute` and compares each notebook's
``checks`` cell (the last code cell; it prints one ``CHECKS {json}`` line) with the committed
one: :func:`checks_of` reads those numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
CALIBRATION = ROOT / "calibration"
COMMITTED_LIBRARY = ROOT / "tests" / "data" / "library-quick"
# one cell may run a quick characterization (notebook 05: about 30 s on 2 idle cores) or a
# few 64x64 ngspice runs; 10 minutes only trips on a hang, not on a slow shared machine
CELL_TIMEOUT_S = 600
#: The line prefix of the checks cell's one line of JSON.
CHECKS_PREFIX = "CHECKS "


def notebooks() -> list[Path]:
    """Every calibration notebook, in reading order."""
    return sorted(CALIBRATION.glob("*.ipynb"))


def execute(path: Path, library: Path, cache_dir: Path, work_dir: Path):
    """Run notebook ``path`` against ``library`` and return it with its outputs (unsaved).

    The kernel inherits ``COSIM_LIBRARY``, ``COSIM_CACHE_DIR``, ``COSIM_PROGRESS=0`` and
    ``TMPDIR=work_dir`` and starts in the repository root (``library`` may be relative
    to it). Raises nbclient's ``CellExecutionError``, naming the cell, when a cell raises.
    """
    from nbclient import NotebookClient

    env = {
        "COSIM_LIBRARY": str(library),
        "COSIM_CACHE_DIR": str(cache_dir),
        "COSIM_PROGRESS": "0",
        "TMPDIR": str(work_dir),
        # the notebooks import cosim, netlists and device_models from this checkout
        "PYTHONPATH": os.pathsep.join(filter(None, (str(ROOT), os.environ.get("PYTHONPATH")))),
    }
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the kernel process inherits this environment
    try:
        nb = nbformat.read(path, as_version=4)
        NotebookClient(
            nb,
            kernel_name="python3",
            timeout=CELL_TIMEOUT_S,
            record_timing=False,  # no timestamps: a re-run changes only what it computes
            resources={"metadata": {"path": str(ROOT)}},  # the kernel's working directory
            extra_arguments=["--IPKernelApp.log_level=ERROR"],  # no start-up chatter on stderr
        ).execute()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return nb


def checks_of(nb) -> dict[str, float]:
    """The numbers the notebook's checks cell printed (``{}`` when it has not run)."""
    cells = [c for c in nb.cells if c.cell_type == "code"]
    for out in cells[-1].outputs if cells else []:
        if out.get("output_type") == "stream" and out.get("name") == "stdout":
            for line in out.text.splitlines():
                if line.startswith(CHECKS_PREFIX):
                    return json.loads(line[len(CHECKS_PREFIX) :])
    return {}


def _from_root(path: Path) -> Path:
    """``path`` relative to the repository root when it lies inside it, else absolute."""
    path = path.resolve()
    try:
        return path.relative_to(ROOT)
    except ValueError:
        return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("notebooks", nargs="*", help="notebook names (default: all)")
    ap.add_argument("--library", type=Path, default=COMMITTED_LIBRARY)
    ap.add_argument("--cache-dir", type=Path, help="SPICE cache (default: a fresh one)")
    args = ap.parse_args(argv)
    paths = [CALIBRATION / Path(n).name for n in args.notebooks] or notebooks()
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        known = ", ".join(p.name for p in notebooks())
        ap.error(f"no notebook {', '.join(missing)} in {CALIBRATION}; there are: {known}")
    with tempfile.TemporaryDirectory(prefix="cosim-notebooks-") as tmp:
        cache = args.cache_dir or Path(tmp) / "spice-cache"
        for path in paths:
            work = Path(tempfile.mkdtemp(dir=tmp))
            print(f"executing {path.name} ...", flush=True)
            nb = execute(path, _from_root(args.library), cache, work)
            nbformat.validate(nb)
            nbformat.write(nb, path)
            print(f"  checks: {json.dumps(checks_of(nb))}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
