"""``cosim characterize``: arguments, the run, and a readable summary."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from cosim import argcheck as ac
from cosim.cluster import (
    add_scheduler_argument,
    maybe_connect,
    scheduler_address,
    unused_with_scheduler,
)


def configure(p: argparse.ArgumentParser) -> None:
    """Add the sub-command's arguments (import-light)."""
    p.add_argument(
        "--card",
        type=ac.path,
        default=None,
        help="hardware card (TOML); default: the card that ships with cosim",
    )
    p.add_argument(
        "--out",
        type=ac.path,
        default=Path("cosim-library"),
        help="library directory to write (default: ./cosim-library); it must not exist, be "
        "empty, or be a cosim library (which is then replaced once the new one is complete)",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="smaller sweeps: about 3 minutes on 2 cores for the default card",
    )
    p.add_argument(
        "--jobs",
        type=ac.workers,
        default=None,
        help="parallel ngspice workers, 1..256 (default: number of CPUs, at most 8)",
    )
    p.add_argument(
        "--seed",
        type=ac.seed,
        default=0,
        help="seed of sweeps and Monte-Carlo draws, 0..2^32-1 (default 0)",
    )
    p.add_argument(
        "--cache-dir",
        type=ac.path,
        default=None,
        help="SPICE result cache (default: $COSIM_CACHE_DIR or ~/.cache/cosim/spice)",
    )
    p.add_argument("--no-cache", action="store_true", help="simulate everything again")
    add_scheduler_argument(p, "the ngspice simulations")
    p.add_argument(
        "--json",
        type=ac.path,
        default=None,
        metavar="PATH",
        help="also write the validation summary as JSON",
    )


def run(args: argparse.Namespace) -> int:
    """Characterize the card and print a summary; returns the exit status."""
    from cosim.card import load_card
    from cosim.characterize.pipeline import run_characterization
    from cosim.errors import CosimError
    from cosim.fileio import LIBRARY_MARKER, check_output_dir, check_output_file, write_output_json
    from cosim.library import validation_to_dict
    from cosim.spice.runner import check_cache_dir, default_cache_dir

    # Every path is checked before the first simulation: nothing runs for minutes and
    # then fails on an output it cannot write, and no foreign file is ever replaced.
    check_output_dir(args.out, kind="surrogate library", marker=LIBRARY_MARKER)
    if args.json is not None:
        check_output_file(args.json, kind="json")
        if Path(args.out).resolve() in Path(args.json).resolve().parents:
            raise CosimError(
                f"--json {args.json} lies inside the library directory {args.out}, which is "
                "written as a whole: write the JSON elsewhere"
            )
    address = scheduler_address(args.scheduler)
    if address:
        unused_with_scheduler("characterize", ["--jobs"] if args.jobs is not None else [])
    card = load_card(args.card)
    jobs = args.jobs if args.jobs is not None else max(1, min(8, os.cpu_count() or 1))
    cache: Any = None if args.no_cache else (args.cache_dir if args.cache_dir else ...)
    if cache is not None:
        check_cache_dir(default_cache_dir() if cache is ... else cache)
    mode = "quick" if args.quick else "full"
    where = f"on the Dask cluster at {address}" if address else f"{jobs} ngspice worker(s)"
    print(f"cosim characterize: card '{card.name}', {mode} sweeps, {where}", flush=True)
    with maybe_connect(address) as cluster:
        rep = run_characterization(
            card,
            args.out,
            quick=args.quick,
            jobs=jobs,
            seed=args.seed,
            cache_dir=cache,
            cluster=cluster,
        )
    print(format_summary(rep, card))
    if args.json is not None:
        write_output_json(
            args.json,
            {
                "library": str(rep.out_dir),
                "wall_s": rep.wall_s,
                "block_s": rep.block_s,
                "ngspice_version": rep.ngspice_version,
                "runner": rep.runner_stats,
                "energy": rep.energy,
                "validation": validation_to_dict(rep.validation),
            },
        )
    return 0


def format_summary(rep, card) -> str:
    """The designer's table: each block's held-out error in ADC LSBs."""
    from cosim.converters import adc_architecture

    v = rep.validation  # block name: BlockValidation
    lines = [
        "",
        f"library: {rep.out_dir}  (library.json, arrays.npz, validation.json)",
        f"ngspice {rep.ngspice_version}; {rep.runner_stats.get('simulated', 0)} runs simulated, "
        f"{rep.runner_stats.get('cached', 0)} from cache; {rep.wall_s:.0f} s",
        f"errors against held-out SPICE runs, in LSB of the {card.adc.bits}-bit ADC "
        f"({card.adc_lsb_v * 1e3:.2f} mV, {card.i_lsb_a * 1e9:.1f} nA at the TIA input):",
        f"  {'block':<11} {'held-out':>9} {'rms':>9} {'max':>9}   notes",
    ]
    for name in ("crossbar", "tia", "subtractor"):
        if name in v:
            b = v[name]
            x = b.extras  # the block's own figures
            note = ""
            if name == "crossbar":
                note = (
                    f"{x['size']}; without IR-drop model: max {x['ideal_model_max_error_lsb']:.1f};"
                    f" at 2.5 ohm: max {x['at_2p5_ohm']['max_error_lsb']:.2f}"
                )
                if "extrapolation_128x128" in x:
                    note += f"; 128x128: max {x['extrapolation_128x128']['max_error_lsb']:.2f}"
            else:
                note = f"clipping: max {x['clip_max_error_lsb']:.3f}"
            lines.append(
                f"  {name:<11} {b.n_heldout:>9} {b.rms_error_lsb:>9.3f} "
                f"{b.max_error_lsb:>9.3f}   {note}"
            )
    adc_block = adc_architecture(card.adc.architecture).block
    if adc_block in v:
        b = v[adc_block]
        # INL/DNL: the SAR's figures; another architecture may not report them
        nan = float("nan")
        lines.append(
            f"  {adc_block:<11} {b.n_heldout:>9} {'code agreement':>19} "
            f"{b.code_agreement:.4f}; INL max {b.extras.get('inl_max_lsb', nan):.2f}"
            f", DNL max {b.extras.get('dnl_max_lsb', nan):.2f}"
        )
    if "sense_row" in v:
        b = v["sense_row"]
        lines.append(
            f"  {'sense_row':<11} {b.n_heldout:>9} {'bound violations':>19} "
            f"{b.bound_violations}; thresholds "
            + ", ".join(f"{x * 1e3:.0f}" for x in b.extras["thresholds_v"])
            + " mV"
        )
    if rep.energy.get("adc_energy_per_conversion_j"):
        e = rep.energy["adc_energy_per_conversion_j"]
        lines.append(
            "ADC energy per conversion vs skipped MSBs: "
            + ", ".join(f"{x * 1e15:.0f}" for x in e)
            + " fJ"
        )
    return "\n".join(lines)
