"""Digests of what cosim computes for given model files, to compare two versions of cosim.

For each model: its architecture, a digest of the integer reference's logits on the first
40 test samples of its dataset, of the file ``save_model`` writes for it, and of the
evaluation (one chip, every non-ideality; wall time left out) on a library. Run it under two
checkouts and ``diff`` the outputs:

    PYTHONPATH=OLD python scripts/model_digests.py LIB M1.npz M2.npz ... > old.txt
    PYTHONPATH=NEW python scripts/model_digests.py LIB M1.npz M2.npz ... > new.txt
"""

from __future__ import annotations

import hashlib
import json
import pathlib
import sys
import tempfile

from cosim.datasets import load_dataset
from cosim.engine.config import EngineConfig
from cosim.engine.evaluate import evaluate
from cosim.errors import CosimError
from cosim.library import load_library
from cosim.model import integer_forward, load_model, save_model


def main(argv: list[str]) -> None:
    lib = load_library(argv[0])
    for p in argv[1:]:
        m = load_model(p)
        ds = load_dataset(m.info.get("dataset", "digits"))
        x, y = ds.x_test[:40], ds.y_test[:40]
        logits = hashlib.sha256(integer_forward(m, x).logits.tobytes()).hexdigest()[:16]
        out = pathlib.Path(tempfile.mkdtemp()) / "m.npz"
        save_model(m, out)
        file = hashlib.sha256(out.read_bytes()).hexdigest()[:16]
        try:
            d = evaluate(m, lib, x, y, EngineConfig(chips=1, batch=40)).to_dict()
            d.pop("wall_s", None)
            ev = hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode())
            evd = ev.hexdigest()[:16]
        except CosimError as exc:  # a model the card cannot run: the error is the result
            evd = "error: " + str(exc)[:60]
        print(pathlib.Path(p).name, m.architecture, logits, file, evd)


if __name__ == "__main__":
    main(sys.argv[1:])
