"""Evaluate a model over a dataset and Monte-Carlo chips: accuracy, statistics, energy, area.

The result does not depend on ``--batch`` or ``--threads``: every random draw and every
rounding that reaches a code is keyed by the sample, not by the batch it runs in (see
:mod:`cosim.engine.blocks`). A chip instance's draws are keyed by (seed, chip,
layer, tile, effect) (:mod:`cosim.engine.streams`); the read noise by (seed, chip, layer,
tile, block of MAC vectors); energies are tallied exactly per chip and added up in chip
order.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext

import numpy as np

from cosim.blas import single_thread
from cosim.engine.config import EngineConfig
from cosim.engine.core import Engine
from cosim.engine.costs import area_breakdown
from cosim.engine.energy import LayerStats
from cosim.engine.readnoise import ReadNoise
from cosim.engine.results import (
    COMPONENTS,
    AreaReport,
    EnergyBreakdown,
    EvalResult,
    PeripheryReport,
)
from cosim.library import SurrogateLibrary
from cosim.model import Model
from cosim.progress import Bar

__all__ = ["EvalResult", "evaluate"]  # EvalResult lives in cosim.engine.results


def evaluate(
    model: Model,
    library: SurrogateLibrary,
    x: np.ndarray,
    y: np.ndarray,
    config: EngineConfig,
    desc: str = "evaluate",
    card=None,
    threads: int = 1,
) -> EvalResult:
    """Run ``x`` through ``config.chips`` chip instances; labels ``y`` give the accuracy.

    ``card`` (optional) is a what-if variant of the library's card differing only in fields
    the surrogates don't depend on (:data:`cosim.engine.whatif.WHAT_IF_FIELDS`).

    ``threads``: batches run on this many threads (NumPy releases the interpreter lock in
    its array operations; BLAS runs one thread each).

    ``config.batch`` is rounded to whole blocks of every layer's MAC vectors
    (:meth:`~cosim.engine.core.Engine.batch_size`: the default 1000 stays 1000; with a
    dense layer, 1024 runs as 1000; batches under half a block stay as asked and pad their
    blocks). The predictions, statistics and energies are the same for every batch size and
    number of threads: the read noise is drawn per sample
    (:class:`~cosim.engine.readnoise.ReadNoise`), the products run on fixed blocks of vectors, and
    each chip's energies are tallied exactly and then added in chip order.
    """
    if threads < 1:
        from cosim.errors import CosimError

        raise CosimError(f"threads = {threads}; use at least 1")
    t0 = time.perf_counter()
    eng = Engine(model, library, config, card)
    eng.threads = threads  # chip programming too
    x = eng.check_input(x)
    y = np.asarray(y).reshape(-1)
    if y.shape[0] != x.shape[0]:
        from cosim.errors import DataError

        raise DataError(f"{x.shape[0]} samples but {y.shape[0]} labels")
    n = x.shape[0]
    chips = 1 if config.ideal else config.chips
    accs, preds = [], []
    total: dict[int, LayerStats] = {}
    size = eng.batch_size(config.batch)
    batches = range(0, n, size)
    pool = ThreadPoolExecutor(threads) if threads > 1 and len(batches) > 1 else None
    # one BLAS thread throughout: set once here, so that the threads' own settings nest;
    # the pool's threads end with the evaluation, also when it fails
    with Bar(total=chips * len(batches), desc=desc) as bar, single_thread(), pool or nullcontext():
        for k in range(chips):
            chip = None if config.ideal else eng.chip(k)
            noise = ReadNoise(config.seed, k)

            def run(j: int, chip=chip, noise=noise) -> tuple[np.ndarray, dict[int, LayerStats]]:
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
                bar.update()
            eng.finish_energy(chip, per_chip)
            for i, s in sorted(per_chip.items()):  # joules, added in chip order
                total.setdefault(i, LayerStats(s.name)).merge(s)
            accs.append(float(np.mean(pred == y)))
            preds.append(pred)
    per_inf = n * chips
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
    area = area_breakdown(eng.maps, eng.card, model.scheme, config.partial_sums)
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
    )
