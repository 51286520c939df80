"""The units of work of a study, and how a worker process executes each.

A :class:`Task` is JSON-able (it crosses process boundaries and its payload is part of its
cache key). Four kinds:

``train``
    ``cosim train`` in-process (:func:`cosim.train.trainer.train`); writes the model file to
    the cache and returns the training metrics (test accuracy from the integer reference).
``evaluate``
    :func:`cosim.engine.evaluate.evaluate` of a cached model on the first ``limit`` test
    samples, on the study card with the task's what-if updates; returns
    :meth:`~cosim.engine.evaluate.EvalResult.to_dict` plus each hidden layer's fan-in.
``sweep``
    Accuracy versus ``nvw`` or ``nva`` (Bao et al.): the noiseless reference, then
    increasing values until the mean accuracy over chips falls more than ``drop`` below it;
    the largest tolerated value is interpolated linearly between the last two points.
``activations``
    Histograms of every hidden layer's output codes over the first ``limit`` test samples
    (:func:`cosim.model.forward.integer_forward` with ``keep_codes``).

Workers keep datasets, the library and models in per-process caches. On a Dask cluster a
task runs through :func:`execute_shipped`, which receives the libraries' files, the dataset
and the models it needs instead of reading the client's paths.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

_STATE: dict[str, Any] = {"datasets": {}, "models": {}, "libraries": {}}
# a cluster task's own datasets: a Dask worker runs tasks of several clients on its threads,
# and two clients may name different data with the same spec
_TASK = threading.local()


@dataclass
class Task:
    """One unit of work: ``kind``, cache ``key``, JSON ``payload``, the keys of the models
    it needs (``deps``) and a human-readable ``label``."""

    kind: str
    key: str
    payload: dict[str, Any]
    deps: tuple[str, ...] = ()
    label: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def init_worker() -> None:
    """Worker-process set-up: no nested progress bars, NumPy's temporaries on the heap
    (:func:`cosim.memory.tune_malloc`)."""
    from cosim.memory import tune_malloc

    os.environ["COSIM_PROGRESS"] = "0"
    tune_malloc()


def execute(kind: str, key: str, payload: dict[str, Any], env: dict[str, Any]) -> dict[str, Any]:
    """Run one task; ``env`` holds ``cache_dir``, ``library`` (path), ``card`` (the study
    card as a dict) and ``adc_libraries`` (per other ADC architecture its ``library`` path
    and ``card``). Returns the JSON-able result."""
    fn = {
        "train": _train,
        "evaluate": _evaluate,
        "sweep": _sweep,
        "activations": _activations,
        "accumulation": _accumulation,
    }[kind]
    return fn(key, payload, env)


def execute_shipped(
    kind: str,
    key: str,
    payload: dict[str, Any],
    env: dict[str, Any],
    libraries: dict[str, dict[str, bytes]],
    datasets: dict[str, Any],
    models: dict[str, Any],
) -> tuple[dict[str, Any], float]:
    """:func:`execute` on a cluster worker, from shipped data; ``(result, seconds)``.

    ``libraries``: per library path of ``env`` its files (:func:`cosim.library.library_files`),
    loaded once per worker into a private directory named by their digest; ``datasets``:
    the loaded datasets by spec; ``models``: per model key its file's bytes, or the result
    of the train task that made it. A train task's result carries its model file's bytes
    under ``_model_npz`` for the client to write into its cache.
    """
    import time

    from cosim.cluster import worker_scratch
    from cosim.fileio import write_bytes_atomic

    init_worker()
    t0 = time.perf_counter()
    local = {path: _shipped_library(files) for path, files in libraries.items()}
    scratch = worker_scratch("report")
    env = {
        **env,
        "cache_dir": str(scratch),
        "library": local[str(env["library"])],
        "adc_libraries": {
            n: {**v, "library": local[str(v["library"])]} for n, v in env["adc_libraries"].items()
        },
    }
    for mkey, value in models.items():
        if mkey not in _STATE["models"]:
            data = value[0]["_model_npz"] if isinstance(value, tuple) else value
            write_bytes_atomic(model_path(env, mkey), data)
            _model(mkey, env)
    _TASK.datasets = datasets  # this task's data, whatever another client calls the same
    try:
        out = execute(kind, key, payload, env)
    finally:
        _TASK.datasets = {}
    if kind == "train":
        out = {**out, "_model_npz": model_path(env, key).read_bytes()}
    return out, time.perf_counter() - t0


def _shipped_library(files: dict[str, bytes]) -> str:
    """The worker-local directory of a shipped library (written and checked once)."""
    from cosim.cluster import worker_memo
    from cosim.library import files_digest, library_from_files

    digest = files_digest(files)
    lib = worker_memo(("library", digest), lambda: library_from_files(files))
    path = str(lib.path)
    _STATE["libraries"][path] = lib
    return path


# ------------------------------------------------------------------------------ resources
def _dataset(spec: str, train_limit: int | None = None):
    from dataclasses import replace

    from cosim.datasets import load_dataset

    ds = getattr(_TASK, "datasets", {}).get(spec)
    if ds is None:
        ds = _STATE["datasets"].get(spec)
    if ds is None:
        ds = _STATE["datasets"][spec] = load_dataset(spec)
    if train_limit is not None and train_limit < len(ds.x_train):
        ds = replace(ds, x_train=ds.x_train[:train_limit], y_train=ds.y_train[:train_limit])
    return ds


def _library(env: dict[str, Any], adc: str | None = None):
    """The study's library, or (``adc``) the library of that other ADC architecture."""
    from cosim.library import load_library

    path = str(env["library"] if adc is None else env["adc_libraries"][adc]["library"])
    libs = _STATE["libraries"]
    if path not in libs:
        libs[path] = load_library(path)
    return libs[path]


def _model(key: str, env: dict[str, Any]):
    from cosim.model import load_model

    m = _STATE["models"].get(key)
    if m is None:
        m = _STATE["models"][key] = load_model(model_path(env, key))
    return m


def model_path(env: dict[str, Any], key: str) -> Path:
    """Where the model of train task ``key`` lives."""
    return Path(env["cache_dir"]) / "models" / f"{key}.npz"


def _card(env: dict[str, Any], updates: dict[str, dict[str, Any]], adc: str | None = None):
    from cosim.card import Card

    card = Card.from_dict(env["card"] if adc is None else env["adc_libraries"][adc]["card"])
    return card.with_updates(updates) if updates else card


def fan_ins(model) -> list[int]:
    """Fan-in (crossbar rows of data) of every hidden weight layer."""
    return [int(np.prod(lay.n_w.shape[1:])) for lay in model.hidden_layers]


# ---------------------------------------------------------------------------------- kinds
def _train(key: str, p: dict[str, Any], env: dict[str, Any]) -> dict[str, Any]:
    from cosim.model import save_model
    from cosim.train.trainer import TrainConfig, train

    cfg = TrainConfig(**p["config"])
    ds = _dataset(p["dataset"], p.get("train_limit"))
    out = train(cfg, ds, np.random.default_rng(cfg.seed))
    save_model(out.model, model_path(env, key))
    metrics = dict(out.metrics)
    metrics["w_max"] = [g["w_grid"]["w_max"] for g in metrics["grids"] if "w_grid" in g]
    return metrics


def _test_split(spec: str, limit: int) -> tuple[np.ndarray, np.ndarray]:
    ds = _dataset(spec)
    return ds.x_test[:limit], ds.y_test[:limit]


def _evaluate(key: str, p: dict[str, Any], env: dict[str, Any]) -> dict[str, Any]:
    from cosim.engine.config import EngineConfig
    from cosim.engine.evaluate import evaluate

    model = _model(p["model"], env)
    x, y = _test_split(p["dataset"], p["limit"])
    adc = p.get("library")  # another ADC architecture's library and card variant
    res = evaluate(
        model,
        _library(env, adc),
        x,
        y,
        EngineConfig(**p["config"]),
        card=_card(env, p["card_updates"], adc),
    )
    out = res.to_dict()
    out["fan_in"] = fan_ins(model)
    return out


def crossing(values: list[float], means: list[float], threshold: float) -> tuple[float, bool]:
    """The largest value whose accuracy stays at or above ``threshold``, interpolated
    linearly between the last point above and the first below; ``(value, censored)`` with
    ``censored`` True when no point fell below (the value is then the last one tried).

    Examples
    --------
    >>> crossing([0.0, 0.1, 0.2], [0.9, 0.88, 0.80], 0.85)
    (0.1375, False)
    """
    for i in range(1, len(values)):
        if means[i] < threshold:
            v0, v1, m0, m1 = values[i - 1], values[i], means[i - 1], means[i]
            frac = (m0 - threshold) / (m0 - m1) if m0 > m1 else 0.0
            return round(v0 + frac * (v1 - v0), 6), False
    return values[-1], True


def _sweep(key: str, p: dict[str, Any], env: dict[str, Any]) -> dict[str, Any]:
    from cosim.engine.config import EngineConfig
    from cosim.engine.evaluate import evaluate

    model = _model(p["model"], env)
    lib = _library(env)
    card = _card(env, p["card_updates"])
    x, y = _test_split(p["dataset"], p["limit"])
    base = EngineConfig(**p["config"])
    param = p["param"]
    # the reference has no variation at all: one chip is exact
    ref = evaluate(model, lib, x, y, base.with_(**{param: 0.0}, chips=1), card=card)
    threshold = ref.accuracy_mean - p["drop"]
    values, means, stds = [0.0], [ref.accuracy_mean], [0.0]
    for v in p["values"]:
        if v <= 0:
            continue
        # nva replaces the ADC instances, so the ADC switch must be on for it to act
        extra = {"adc": True} if param == "nva" else {}
        r = evaluate(model, lib, x, y, base.with_(**{param: v}, **extra), card=card)
        values.append(v)
        means.append(r.accuracy_mean)
        stds.append(r.accuracy_std)
        if r.accuracy_mean < threshold:
            break
    largest, censored = crossing(values, means, threshold)
    return {
        "parameter": param,
        "values": values,
        "accuracy_mean": means,
        "accuracy_std": stds,
        "reference_accuracy": ref.accuracy_mean,
        "threshold": threshold,
        "largest": largest,
        "censored": censored,
        "chips": base.chips,
        "samples": len(y),
    }


def _activations(key: str, p: dict[str, Any], env: dict[str, Any]) -> dict[str, Any]:
    from cosim.model import WeightLayer, integer_forward

    model = _model(p["model"], env)
    x, _ = _test_split(p["dataset"], p["limit"])
    hidden = [
        (i, lay)
        for i, lay in enumerate(model.layers)
        if isinstance(lay, WeightLayer) and lay.is_hidden
    ]
    bits: dict[int, int] = {}
    for i, lay in hidden:
        assert lay.out_grid is not None  # a hidden layer of a quantized model
        bits[i] = lay.out_grid.bits
    counts = {i: np.zeros(1 << bits[i], dtype=np.int64) for i, _ in hidden}
    for b in range(0, len(x), 500):
        codes = integer_forward(model, x[b : b + 500], keep_codes=True).codes
        for i, _ in hidden:
            counts[i] += np.bincount(codes[i].ravel(), minlength=1 << bits[i])
    return {
        "layers": [
            {
                "name": f"{i}:{lay.kind}",
                "bits": bits[i],
                "fan_in": f,
                "counts": counts[i].tolist(),
            }
            for (i, lay), f in zip(hidden, fan_ins(model), strict=True)
        ],
        "samples": len(x),
    }


def _accumulation(key: str, p: dict[str, Any], env: dict[str, Any]) -> dict[str, Any]:
    """The accumulation experiment's Monte-Carlo (:mod:`cosim.report.experiments.accumulation`)."""
    from cosim.report.experiments.accumulation import run_accumulation

    x, _ = _test_split(p["dataset"], p["limit"])
    return run_accumulation(
        _model(p["model"], env), _library(env), _card(env, p["card_updates"]), x, p
    )
