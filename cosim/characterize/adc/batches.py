"""The ADC characterizations' SPICE jobs: batches of conversions split into testbench jobs,
run longest first, decoded back per batch (the SAR's :func:`add_batch`; the flash's sweep
splits its own batches with :func:`add_chunks` and shares the rest)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from cosim.characterize.context import CharContext
from cosim.spice.runner import SpiceJob, SpiceResult
from netlists.sar_adc import (
    SarAdcParams,
    decode_testbench,
    sar_testbench_netlist,
    sar_testbench_vectors,
)

#: Most conversions in one testbench job (keeps the parallel jobs balanced).
CHUNK = 64


@dataclass
class Batch:
    """Conversions of one instance for one purpose, split into testbench jobs."""

    params: Any  # the instance's netlist parameters (SarAdcParams, FlashAdcParams)
    v: np.ndarray
    k: np.ndarray
    label: str
    first_job: int = 0
    n_jobs: int = 0


def timeout_s(n_conv: int, bits: int) -> float:
    return 60.0 + 0.5 * n_conv * (bits + 2) / 10


def add_chunks(
    jobs: list[SpiceJob],
    cost: list[float],
    batch: Batch,
    job: Callable[[np.ndarray, np.ndarray, int], SpiceJob],
    job_cost: Callable[[np.ndarray, np.ndarray], float],
) -> Batch:
    """Append ``batch`` as jobs of at most :data:`CHUNK` conversions: ``job(v, k, j)``
    writes chunk ``j`` (0-based), ``job_cost(v, k)`` estimates its run time."""
    batch.first_job = len(jobs)
    for j, s in enumerate(range(0, batch.v.size, CHUNK)):
        v, k = batch.v[s : s + CHUNK], batch.k[s : s + CHUNK]
        jobs.append(job(v, k, j))
        cost.append(job_cost(v, k))
    batch.n_jobs = len(jobs) - batch.first_job
    return batch


def add_batch(jobs: list[SpiceJob], batch: Batch, cost: list[float]) -> None:
    """Append a SAR batch's testbench jobs."""
    p: SarAdcParams = batch.params
    add_chunks(
        jobs,
        cost,
        batch,
        lambda v, k, j: SpiceJob(
            sar_testbench_netlist(p, v, k),
            sar_testbench_vectors(),
            timeout_s=timeout_s(v.size, p.bits),
            label=f"SAR {batch.label} {j + 1}",
        ),
        lambda v, k: float(np.sum(p.bits + 2 - k)),  # cycles: ngspice time
    )


def run_longest_first(
    ctx: CharContext, jobs: list[SpiceJob], cost: list[float], desc: str = "SAR ADC"
) -> list:
    """Run ``jobs`` longest first (the runner hands them out in order), results in order;
    ``desc`` labels the progress."""
    order = sorted(range(len(jobs)), key=lambda i: -cost[i])
    res = ctx.runner.run([jobs[i] for i in order], desc=desc)
    out: list = [None] * len(jobs)
    for j, i in enumerate(order):
        out[i] = res[j]
    return out


def decode_batch(
    results: list[SpiceResult],
    batch: Batch,
    decode: Callable[[SpiceResult, Any, int], dict[str, np.ndarray]] = decode_testbench,
) -> dict[str, np.ndarray]:
    """The batch's decoded runs (``decode``: the architecture's testbench decoder), joined
    over its jobs (the conversion time left out)."""
    parts = []
    for j in range(batch.n_jobs):
        s = j * CHUNK
        n = min(CHUNK, batch.v.size - s)
        parts.append(decode(results[batch.first_job + j], batch.params, n))
    out = {key: np.concatenate([p[key] for p in parts]) for key in parts[0] if key != "t_conv_s"}
    return out


def elapsed(results: list[SpiceResult], batch: Batch) -> float | None:
    times = [results[batch.first_job + j].info.get("elapsed_s") for j in range(batch.n_jobs)]
    known = [t for t in times if t is not None]
    if len(known) < len(times):
        return None
    return float(sum(known))


def concat(*dicts: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([d[k] for d in dicts]) for k in dicts[0]}
