"""The study's result cache under ``DIR/cache/``: content-addressed, atomic, self-checking.

Every trained model, every task result and every assembled experiment is stored under the
hash of everything it depends on (:func:`stable_hash` of a JSON-able description: the
training configuration and the dataset's content hash for a model; the model's key, the
card's physics hash, the surrogate library's content hash, the engine configuration and the
samples for an evaluation; cosim's version and :data:`REPORT_VERSION` everywhere). A rerun
looks each one up and recomputes only what is missing, so changing one setting reruns only
what depends on it. Files are written atomically; an unreadable entry counts as missing.

Layout::

    cache/models/<key>.npz    model file (cosim train format)
    cache/models/<key>.json   its training metrics
    cache/tasks/<key>.json    evaluations, robustness sweeps, activation histograms
    cache/experiments/<name>-<key>.json   an assembled experiment
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from cosim.fileio import write_json_atomic

#: Bump when what a task computes changes (invalidates every cached model and result).
REPORT_VERSION = 1
#: Bump when the engine's results change for the same model, card and library (invalidates
#: evaluations and sweeps, not the trained models or the activation histograms). 2: unipolar
#: columns' g_min reference line and half-scale partial sums; 3: the reference line programmed
#: like the array (its mean leakage); 4: nva as a SAR search over perturbed levels; 5: read
#: noise drawn by Box–Muller from a generator per batch (the same distribution, other draws)
#: and the read energy estimated on every 8th unrolled vector; 6: the read energy summed
#: over every vector; 7: results independent of --batch and --threads (read noise per block
#: of samples, products on fixed blocks, energies tallied exactly) and conductances clipped
#: to [0, 1.5 g_max] after nvw; 8: the op-amp offsets see the devices' operating-point
#: slope g·s'(V), not the zero-bias g·s'(0).
ENGINE_VERSION = 8
#: Bump when an experiment's assembly changes (re-assembles from the cached task results).
ASSEMBLY_VERSION = 1


def _plain(obj: Any) -> Any:
    """JSON form of the NumPy scalars, arrays and paths a key may hold."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot hash {type(obj).__name__} into a cache key")


def stable_hash(obj: Any, length: int = 20) -> str:
    """Hex digest (``length`` characters) of the canonical JSON of ``obj``.

    Examples
    --------
    >>> stable_hash({"b": 1, "a": [1.0, 2]}) == stable_hash({"a": [1.0, 2], "b": 1})
    True
    """
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_plain)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def array_digest(*arrays: np.ndarray) -> str:
    """SHA-256 of the arrays' dtypes, shapes and bytes (a dataset's content hash)."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.data.cast("B"))  # a.data: the array's memoryview
    return h.hexdigest()[:20]


def library_digest(path: str | Path) -> str:
    """Content hash of a surrogate library: its card hash, fitted blocks and arrays.

    Timestamps and timings are left out, so re-characterizing the same card into the same
    surrogates (e.g. from the SPICE cache) keeps every cached evaluation valid. The files
    are read as :func:`cosim.library.load_library` reads them (bounded, regular files inside
    the library; a problem is a :class:`~cosim.errors.LibraryError`).
    """
    from cosim.library import read_library_arrays, read_library_json

    path = Path(path)
    doc = read_library_json(path)
    h = hashlib.sha256()
    h.update(json.dumps([doc.get("card_hash"), doc.get("blocks")], sort_keys=True).encode())
    arrays = read_library_arrays(path, doc)
    for key in sorted(arrays):
        h.update(key.encode())
        h.update(array_digest(arrays[key]).encode())
    return h.hexdigest()[:20]


class ResultCache:
    """Models, task results and experiments stored by key under ``root`` (see module)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.hits = 0
        self.misses = 0

    # -- paths ----------------------------------------------------------------------------
    def model_path(self, key: str) -> Path:
        return self.root / "models" / f"{key}.npz"

    def _json_path(self, kind: str, key: str) -> Path:
        folder = {"model": "models", "task": "tasks", "experiment": "experiments"}[kind]
        return self.root / folder / f"{key}.json"

    # -- access ---------------------------------------------------------------------------
    def get(self, kind: str, key: str) -> dict[str, Any] | None:
        """The stored result, or None when missing or unreadable (a model also needs its
        ``.npz``)."""
        path = self._json_path(kind, key)
        if kind == "model" and not self.model_path(key).is_file():
            self.misses += 1
            return None
        try:
            out = json.loads(path.read_text("utf-8"))
        except (OSError, json.JSONDecodeError, UnicodeDecodeError):
            self.misses += 1
            return None
        if not isinstance(out, dict):
            self.misses += 1
            return None
        self.hits += 1
        return out

    def put(self, kind: str, key: str, result: dict[str, Any]) -> None:
        """Store ``result`` atomically."""
        write_json_atomic(self._json_path(kind, key), result)

    def stats(self) -> dict[str, int]:
        return {"hits": self.hits, "misses": self.misses}
