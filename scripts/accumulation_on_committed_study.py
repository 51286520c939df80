"""Run the accumulation experiment's two tasks against the committed full study's library
and cached W4A3 / W8A8 models (read only: the models are copied to a temporary cache).

    PYTHONPATH=. python scripts/accumulation_on_committed_study.py full OUT.json [STUDY_DIR]

(STUDY_DIR: the study output holding library/ and cache/; default the committed one.)
"""

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from cosim.datasets import load_dataset
from cosim.library import load_library
from cosim.report import tasks as T
from cosim.report.cache import array_digest, library_digest
from cosim.report.context import StudyContext
from cosim.report.experiments.accumulation import Accumulation
from cosim.report.plan import make_plan

quick = sys.argv[1] == "quick"
src = (
    Path(sys.argv[3])
    if len(sys.argv) > 3
    else Path(__file__).resolve().parent.parent / "benchmarks" / "results" / "report"
)
lib_path = src / "library"
spec = "fashion-mnist"
ds = load_dataset(spec)
plan = make_plan(False, spec, ds.preprocessing.input_shape)
lib = load_library(lib_path)
card = lib.card
digests = {spec: array_digest(ds.x_train, ds.y_train, ds.x_test, ds.y_test)}
ctx = StudyContext(plan, card, library_digest(lib_path), digests, True)
exp = Accumulation()
named = exp.declare(ctx)
cache = Path(tempfile.mkdtemp()) / "cache"
(cache / "models").mkdir(parents=True, exist_ok=True)
for t in named.values():
    for d in t.deps:
        shutil.copy(src / "cache" / "models" / f"{d}.npz", cache / "models" / f"{d}.npz")
env = {
    "cache_dir": str(cache),
    "library": str(lib_path),
    "card": card.to_dict(),
    "adc_libraries": {},
}
res = {}
for name, t in named.items():
    p = dict(t.payload)
    if quick:
        p["trials"] = 200
    t0 = time.time()
    res[name] = T.execute(t.kind, t.key, p, env)
    print(name, "took", round(time.time() - t0, 1), "s", file=sys.stderr)
out = exp.assemble(ctx, res)
Path(sys.argv[2]).write_text(json.dumps(out, indent=1))
