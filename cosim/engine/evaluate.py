"""Evaluate a model over a dataset and Monte-Carlo chips: accuracy, statistics, energy, area.

The result does not depend on ``--batch`` or ``--threads``: every random draw and every
rounding that reaches a code is keyed by the sample, not by the batch it runs in (see
:mod:`cosim.engine.blocks`). A chip instance's draws are keyed by (seed, chip,
layer, tile, effect) (:mod:`cosim.engine.streams`); the read noise by (seed, chip, layer,
tile, block of MAC vectors); energies are tallied exactly per chip and added up in chip
order.

On a Dask cluster (``cluster``) each chip is one task: the model, the library's files and
the samples are shipped once, every worker builds the engine once per configuration
(:func:`cosim.cluster.worker_memo`), and the client adds the chips up in chip order, so the
result is the one a local run gives. :func:`evaluate_many` submits the chips of several
configurations (a sweep's points) at once.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from typing import Any

import numpy as np

from cosim.blas import single_thread
from cosim.engine.config import EngineConfig
from cosim.engine.core import Engine
from cosim.engine.costs import area_breakdown, layer_tuning
from cosim.engine.energy import LayerStats
from cosim.engine.readnoise import ReadNoise
from cosim.engine.results import (
    COMPONENTS,
    AreaReport,
    EnergyBreakdown,
    EvalResult,
    PeripheryReport,
    energy_sources_for,
)
from cosim.library import SurrogateLibrary
from cosim.model import Model
from cosim.progress import Bar

__all__ = ["EvalResult", "evaluate", "evaluate_many"]  # EvalResult lives in cosim.engine.results


def evaluate(
    model: Model,
    library: SurrogateLibrary,
    x: np.ndarray,
    y: np.ndarray,
    config: EngineConfig,
    desc: str = "evaluate",
    card=None,
    threads: int = 1,
    cluster: Any = None,
) -> EvalResult:
    """Run ``x`` through ``config.chips`` chip instances; labels ``y`` give the accuracy.

    ``card`` (optional) is a what-if variant of the library's card differing only in fields
    the surrogates don't depend on (:data:`cosim.engine.whatif.WHAT_IF_FIELDS`).

    ``threads``: batches run on this many threads (NumPy releases the interpreter lock in
    its array operations; BLAS runs one thread each).

    ``cluster``: a :class:`cosim.cluster.Cluster`; each chip is then one task there
    (``threads`` unused) and the result is the same.

    ``config.batch`` is rounded to whole blocks of every layer's MAC vectors
    (:meth:`~cosim.engine.core.Engine.batch_size`: the default 1000 stays 1000; with a
    dense layer, 1024 runs as 1000; batches under half a block stay as asked and pad their
    blocks). The predictions, statistics and energies are the same for every batch size and
    number of threads: the read noise is drawn per sample
    (:class:`~cosim.engine.readnoise.ReadNoise`), the products run on fixed blocks of vectors, and
    each chip's energies are tallied exactly and then added in chip order.
    """
    return evaluate_many(model, library, x, y, [config], [desc], card, threads, cluster)[0]


def evaluate_many(
    model: Model,
    library: SurrogateLibrary,
    x: np.ndarray,
    y: np.ndarray,
    configs: Sequence[EngineConfig],
    descs: Sequence[str] | None = None,
    card=None,
    threads: int = 1,
    cluster: Any = None,
) -> list[EvalResult]:
    """:func:`evaluate` under each of ``configs``, in order (one progress bar each locally;
    on a cluster every chip of every configuration is submitted at once)."""
    if threads < 1:
        from cosim.errors import CosimError

        raise CosimError(f"threads = {threads}; use at least 1")
    descs = list(descs) if descs is not None else ["evaluate"] * len(configs)

    def prepare(config: EngineConfig) -> tuple[Engine, np.ndarray, np.ndarray, float]:
        t0 = time.perf_counter()
        eng = Engine(model, library, config, card)
        eng.threads = threads  # chip programming too
        xc = eng.check_input(x)
        yc = np.asarray(y).reshape(-1)
        if yc.shape[0] != xc.shape[0]:
            from cosim.errors import DataError

            raise DataError(f"{xc.shape[0]} samples but {yc.shape[0]} labels")
        return eng, xc, yc, t0

    def chips(config: EngineConfig) -> range:
        return range(1 if config.ideal else config.chips)

    if cluster is None:  # one configuration at a time: one engine in memory
        out = []
        for config, desc in zip(configs, descs, strict=True):
            eng, xc, yc, t0 = prepare(config)
            outputs = _run_chips_local(eng, xc, chips(config), threads, desc)
            out.append(_result(eng, model, library, yc, outputs, t0))
        return out
    engines = [prepare(c) for c in configs]
    outputs_all = _run_chips_cluster(
        cluster, model, library, card, engines, [chips(c) for c in configs], descs
    )
    return [
        _result(eng, model, library, yc, outputs, t0)
        for (eng, _, yc, t0), outputs in zip(engines, outputs_all, strict=True)
    ]


ChipOutput = tuple[np.ndarray, dict[int, LayerStats]]


def run_chip(eng: Engine, x: np.ndarray, k: int, pool=None, bar=None) -> ChipOutput:
    """Chip ``k`` (``None`` chip in ideal mode) over all of ``x``: its predictions and its
    per-layer statistics with energies (J) finished; batches on ``pool``'s threads."""
    config = eng.cfg
    n = x.shape[0]
    size = eng.batch_size(config.batch)
    batches = range(0, n, size)
    chip = None if config.ideal else eng.chip(k)
    noise = ReadNoise(config.seed, k)

    def run(j: int) -> tuple[np.ndarray, dict[int, LayerStats]]:
        stats: dict[int, LayerStats] = {}
        b0 = batches[j]
        logits = eng.forward(chip, x[b0 : b0 + size], noise, stats, start=b0)
        return np.argmax(logits, axis=1), stats

    pred = np.empty(n, dtype=np.int64)
    jobs = range(len(batches))
    done = map(run, jobs) if pool is None else pool.map(run, jobs)
    per_chip: dict[int, LayerStats] = {}
    for j, (p, stats) in enumerate(done):
        pred[batches[j] : batches[j] + size] = p
        for i, s in stats.items():  # exact tallies: any order gives the same sums
            per_chip.setdefault(i, LayerStats(s.name)).merge(s)
        if bar is not None:
            bar.update()
    eng.finish_energy(chip, per_chip)
    return pred, per_chip


def _run_chips_local(
    eng: Engine, x: np.ndarray, chips: range, threads: int, desc: str
) -> list[ChipOutput]:
    n_batches = len(range(0, x.shape[0], eng.batch_size(eng.cfg.batch)))
    pool = ThreadPoolExecutor(threads) if threads > 1 and n_batches > 1 else None
    # one BLAS thread throughout: set once here, so that the threads' own settings nest;
    # the pool's threads end with the evaluation, also when it fails
    with (
        Bar(total=len(chips) * n_batches, desc=desc) as bar,
        single_thread(),
        pool or nullcontext(),
    ):
        return [run_chip(eng, x, k, pool, bar) for k in chips]


def _digest(obj: Any) -> str:
    return hashlib.sha256(pickle.dumps(obj, protocol=5)).hexdigest()[:32]


def _run_chips_cluster(
    cluster: Any,
    model: Model,
    library: SurrogateLibrary,
    card,
    engines: list,
    chip_lists: list[range],
    descs: Sequence[str],
) -> list[list[ChipOutput]]:
    from cosim.library import files_digest, library_files

    files = library_files(library)
    lib_digest = files_digest(files)
    model_digest = _digest(model)
    lib_f = cluster.ship(("library", lib_digest), files)
    model_f = cluster.ship(("model", model_digest), model)
    card_dict = card.to_dict() if card is not None else None
    futures: dict[Any, tuple[int, int]] = {}
    for ci, ((eng, xc, _, _), chips) in enumerate(zip(engines, chip_lists, strict=True)):
        x_f = cluster.ship(("samples", _digest(xc)), xc)  # once: every point has the same
        what = json.dumps([model_digest, lib_digest, card_dict, repr(eng.cfg)], sort_keys=True)
        for pos, k in enumerate(chips):
            fut = cluster.submit(
                _chip_task, model_f, lib_f, lib_digest, card_dict, eng.cfg, x_f, k, what
            )
            futures[fut] = (ci, pos)
    outputs: list[list[Any]] = [[None] * len(c) for c in chip_lists]

    def on_result(fut, value: ChipOutput) -> None:
        ci, pos = futures[fut]
        outputs[ci][pos] = value

    desc = descs[0] if len(descs) == 1 else f"{len(descs)} evaluations"
    cluster.gather(futures, on_result, desc=f"{desc} (chips on the cluster)")
    return outputs


def _chip_task(
    model: Model,
    files: dict[str, bytes],
    lib_digest: str,
    card_dict: dict[str, Any] | None,
    config: EngineConfig,
    x: np.ndarray,
    k: int,
    what: str,
) -> ChipOutput:
    """On a worker: chip ``k`` of the engine ``what`` names (built once per worker)."""
    from cosim.cluster import worker_memo
    from cosim.library import library_from_files
    from cosim.memory import tune_malloc

    tune_malloc()  # a Dask nanny's MALLOC_TRIM_THRESHOLD_ would cost 1.5x (cosim.memory)

    def build() -> Engine:
        from cosim.card import Card

        lib = worker_memo(("library", lib_digest), lambda: library_from_files(files))
        card = Card.from_dict(card_dict) if card_dict is not None else None
        eng = Engine(model, lib, config, card)
        eng.threads = 1  # the cluster's workers are the parallelism
        return eng

    eng = worker_memo(("engine", hashlib.sha256(what.encode()).hexdigest()), build)
    with single_thread():
        return run_chip(eng, x, k)


def _tuning_energy(eng: Engine, total: dict[int, LayerStats]) -> None:
    """Add the per-layer tuned periphery's energy (:func:`cosim.engine.costs.layer_tuning`)
    to ``total``'s layers: every hidden layer beyond the first keeps its reference buffers
    biased for the whole inference, ``tia.t_read_s`` per MAC vector of every layer (layers
    run one after the other, the tiles of a layer at once)."""
    t = layer_tuning(len(eng.maps), eng.card)
    if not t["sets"]:
        return
    t_run = eng.card.tia.t_read_s * sum(s.vectors for s in total.values())
    per_set = t["power_w"] / t["sets"] * t_run
    hidden = {m.index for m in eng.maps}  # not a residual Add's entry
    for i in sorted(i for i in total if i in hidden)[1:]:
        total[i].energy_j["layer_tuning"] += per_set


def _result(
    eng: Engine,
    model: Model,
    library: SurrogateLibrary,
    y: np.ndarray,
    outputs: list[ChipOutput],
    t0: float,
) -> EvalResult:
    """The evaluation from its chips' outputs, added in chip order."""
    config = eng.cfg
    n = y.shape[0]
    chips = len(outputs)
    accs, preds = [], []
    total: dict[int, LayerStats] = {}
    for pred, per_chip in outputs:
        for i, s in sorted(per_chip.items()):  # joules, added in chip order
            total.setdefault(i, LayerStats(s.name)).merge(s)
        accs.append(float(np.mean(pred == y)))
        preds.append(pred)
    per_inf = n * chips
    if config.layer_tuning:
        _tuning_energy(eng, total)
    layers = tuple(s.summary(per_inf) for _, s in sorted(total.items()))
    energy = dict.fromkeys(COMPONENTS, 0.0)
    for lay in layers:  # layer by layer, in network order: the same sums as before
        for comp, e in lay.energy_per_inference_j.items():
            energy[comp] += e
    periphery = PeripheryReport(
        shared=model.scheme == "global",
        transimpedance_ohm=tuple(m.periphery.r_t_ohm for m in eng.maps),
        card_r_feedback_ohm=eng.card.tia.r_feedback_ohm,
        card=eng.card.name,
        validated_array=f"{library.card.array.rows}x{library.card.array.cols}",
        array=f"{eng.card.array.rows}x{eng.card.array.cols}",
        adc_bits=tuple(m.periphery.adc_bits for m in eng.maps),
        tiles=tuple(len(m.tiles) for m in eng.maps),
        row_tiles=tuple(m.n_row_tiles for m in eng.maps),
    )
    area = area_breakdown(
        eng.maps, eng.card, model.scheme, config.partial_sums, tuning=config.layer_tuning
    )
    return EvalResult(
        accuracy_per_chip=tuple(accs),
        predictions=tuple(preds),
        layers=layers,
        energy_per_inference_j=EnergyBreakdown(**energy),
        area_m2=AreaReport.from_dict(area),
        n_samples=n,
        wall_s=time.perf_counter() - t0,
        config=config.describe(),
        periphery=periphery,
        sources=energy_sources_for(eng.card),
    )
