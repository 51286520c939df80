"""Run every block's characterization and write the surrogate library.

Order: crossbar → TIA → subtractor → ADC (the card's ``adc.architecture``, through
:func:`cosim.converters.adc_architecture`; the SAR's block is ``sar_adc``) → sense row
(which needs the crossbar and TIA surrogates and the ADC's transitions) → energy figures
from the same runs. Every SPICE run goes through one
:class:`~cosim.spice.runner.SpiceRunner`, whose cache makes a re-run instant and lets an
interrupted characterization resume where it stopped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from types import EllipsisType
from typing import Any

import numpy as np

from cosim.card import Card
from cosim.characterize.context import BlockResult, CharContext
from cosim.circuits import device_model
from cosim.converters import adc_architecture
from cosim.fileio import LIBRARY_FILES, LIBRARY_MARKER, check_output_dir
from cosim.library import BlockValidation, validation_from_dict, write_library
from cosim.spice.runner import SpiceRunner


@dataclass
class CharacterizeReport:
    """What a characterization produced: where (the library directory), how long (wall and
    per-block seconds), the SPICE runner's counts, and each block's validation record (as
    written to ``validation.json``)."""

    out_dir: Path
    validation: dict[str, BlockValidation]
    wall_s: float
    block_s: dict[str, float]
    runner_stats: dict[str, Any]
    ngspice_version: str
    energy: dict[str, Any] = field(default_factory=dict)


def energy_figures(card: Card, blocks: dict[str, BlockResult]) -> dict[str, Any]:
    """Energy per operation that the engine uses, from the SPICE-measured blocks."""
    out: dict[str, Any] = {}
    adc = blocks.get(adc_architecture(card.adc.architecture).block)
    if adc is not None:
        sur = adc.surrogate
        skips = np.arange(card.adc.bits)
        out["adc_energy_per_conversion_j"] = [
            float(sur.energy_per_conversion_j(int(k))) for k in skips
        ]
    sense = blocks.get("sense_row")
    if sense is not None and "opamp_power_w" in sense.extra:
        out["opamp_power_w"] = float(sense.extra["opamp_power_w"])
    return out


def run_characterization(
    card: Card,
    out_dir: str | Path,
    *,
    quick: bool = False,
    jobs: int = 1,
    seed: int = 0,
    cache_dir: str | Path | EllipsisType | None = ...,
    log=print,
    cluster: Any = None,
) -> CharacterizeReport:
    """Characterize every block of ``card`` and write the library to ``out_dir``.

    Parameters
    ----------
    card
        Validated hardware card.
    out_dir
        Library directory (replaced atomically when complete). It must be missing, an empty
        directory or an earlier library (:func:`cosim.fileio.check_output_dir`); that is
        checked before any simulation, so a wrong ``out_dir`` costs nothing.
    quick
        Smaller sweeps (≤ 3 min on 2 cores for the default card).
    jobs
        Parallel ngspice worker processes.
    seed
        Base seed of every sweep design and Monte-Carlo instance.
    cache_dir
        SPICE result cache (default ``$COSIM_CACHE_DIR`` or ``~/.cache/cosim/spice``;
        ``None`` disables it).
    log
        Called with one line per finished block.
    cluster
        A :class:`cosim.cluster.Cluster`: the SPICE runs are its tasks (``jobs`` unused);
        the library is the same as a local run's but for its timings and ``scheduler``.

    Raises
    ------
    CosimError
        ``out_dir`` is something cosim must not replace (a file, a link, a directory that
        is not a library, the current directory); raised before any work.
    """
    from cosim.characterize.crossbar import characterize_crossbar
    from cosim.characterize.periphery import characterize_subtractor, characterize_tia
    from cosim.characterize.sense_row import characterize_sense_row

    check_output_dir(out_dir, kind="library", marker=LIBRARY_MARKER, contents=LIBRARY_FILES)
    arch = adc_architecture(card.adc.architecture)
    t0 = time.perf_counter()
    device = device_model(card)
    block_s: dict[str, float] = {}
    results: dict[str, BlockResult] = {}
    with SpiceRunner(jobs=jobs, cache_dir=cache_dir, cluster=cluster) as runner:
        ctx = CharContext(card, device, runner, quick=quick, seed=seed)

        def step(name, fn, *args):
            t = time.perf_counter()
            res = fn(ctx, *args)
            block_s[name] = time.perf_counter() - t
            results[name] = res
            record = BlockValidation.from_dict(res.validation, f"block '{name}' validation")
            head = _headline(name, record, adc_block=arch.block)
            log(f"  {name:<11} {block_s[name]:6.1f} s  {head}")
            return res

        xb = step("crossbar", characterize_crossbar)
        tia = step("tia", characterize_tia)
        step("subtractor", characterize_subtractor)
        adc = step(arch.block, arch.characterize)
        if card.sense_row.enabled:
            transitions = np.asarray(adc.surrogate.thresholds(), dtype=float)
            step("sense_row", characterize_sense_row, xb.surrogate, tia.surrogate, transitions)
        version = runner.version
        stats = dict(runner.stats)
    energy = energy_figures(card, results)
    validation = validation_from_dict({name: r.validation for name, r in results.items()})
    blocks = {
        name: {"surrogate": r.surrogate, "netlist_hashes": r.netlist_hashes, "extra": r.extra}
        for name, r in results.items()
    }
    wall = time.perf_counter() - t0
    meta = {
        "ngspice_version": version,
        "quick": quick,
        "seed": seed,
        "jobs": None if cluster is not None else jobs,
        "scheduler": None if cluster is None else cluster.address,
        "wall_s": wall,
        "block_s": block_s,
        "spice_runs": {name: r.n_spice_runs for name, r in results.items()},
        "runner_stats": stats,
        "energy": energy,
    }
    write_library(out_dir, card, blocks, validation, meta)
    return CharacterizeReport(Path(out_dir), validation, wall, block_s, stats, version, energy)


def _headline(name: str, v: BlockValidation, adc_block: str) -> str:
    """One line of block ``name``'s held-out validation (an unmeasured metric is "n/a")."""

    def f(x: float | None, spec: str) -> str:
        return "n/a" if x is None else format(x, spec)

    if name in ("crossbar", "tia", "subtractor"):
        return (
            f"held-out {v.n_heldout}: rms {f(v.rms_error_lsb, '.3f')} LSB, "
            f"max {f(v.max_error_lsb, '.3f')} LSB"
        )
    if name == adc_block:
        return f"held-out {v.n_heldout}: code agreement {f(v.code_agreement, '.4f')}"
    if name == "sense_row":
        return (
            f"held-out {v.n_heldout}: bound violations {f(v.bound_violations, 'd')}, "
            f"mean skipped MSBs {f(v.mean_skipped_bits_heldout, '.2f')}"
        )
    return ""
