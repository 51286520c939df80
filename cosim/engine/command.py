"""``cosim evaluate``: arguments and the run (its tables are in :mod:`cosim.engine.tables`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cosim import argcheck as ac
from cosim.cluster import (
    add_scheduler_argument,
    maybe_connect,
    scheduler_address,
    unused_with_scheduler,
)
from cosim.engine.config import EFFECT_SWITCHES, LIMITS

if TYPE_CHECKING:  # the command module stays import-light
    pass


def _limited(name: str):
    """The argparse type of an EngineConfig setting: finite and inside ``LIMITS[name]``."""
    lo, hi, lo_open = LIMITS[name]
    return ac.real(lo, hi, lo_open=lo_open)


# argparse checks the documented ranges before any work (the same table EngineConfig uses)
_NVW = _limited("nvw")
_T = _limited("drift_t_s")


def configure(p: argparse.ArgumentParser) -> None:
    """Add the sub-command's arguments (import-light)."""
    p.add_argument("--model", type=ac.path, required=True, help="model file from cosim train")
    p.add_argument(
        "--library",
        type=ac.path,
        required=True,
        help="surrogate library directory from cosim characterize",
    )
    p.add_argument(
        "--card",
        type=ac.path,
        default=None,
        help="what-if variant of the library's card (device levels, array size, noise "
        "scales, areas: fields the surrogates do not depend on)",
    )
    p.add_argument(
        "--dataset", default=None, help="dataset spec (default: the one the model was trained on)"
    )
    p.add_argument(
        "--limit", type=ac.integer(1, 10**9), default=None, help="evaluate the first N test samples"
    )
    p.add_argument(
        "--ideal",
        action="store_true",
        help="ideal mode: the mapping in exact arithmetic, no hardware effect",
    )
    for flag, _field, help_ in EFFECT_SWITCHES:
        p.add_argument(f"--no-{flag}", action="store_true", help=f"switch off: {help_}")
    p.add_argument(
        "--nvw",
        type=_NVW,
        default=0.0,
        help="extra normalized weight variation sigma/(G_max-G_min), 0..1 (Bao et al.)",
    )
    p.add_argument(
        "--nva",
        type=_NVW,
        default=0.0,
        help="ADC comparison-level variation sigma/V_ref, 0..1 (Bao et al.)",
    )
    p.add_argument(
        "--t",
        dest="drift_t",
        type=_T,
        default=None,
        help="time since programming (s) for drift, > 0 and at most 3.2e8 (10 years); "
        "default: no drift",
    )
    p.add_argument(
        "--drift-compensation",
        choices=("none", "global", "column"),
        default="none",
        help="after drift (--t or --sweep t), a calibration read gives one digital scale "
        "per layer (global) or per output column (column) for the codes (default: none)",
    )
    p.add_argument(
        "--adc-bits",
        type=ac.integer(1, 8),
        default=None,
        help="convert at this resolution, 1..8 (default: the model's activation bits)",
    )
    p.add_argument(
        "--partial-sums",
        choices=("digital", "analog"),
        default="digital",
        help="row-tile partial sums: converted per tile and added digitally "
        "(default) or joined on the bitlines and converted once",
    )
    p.add_argument(
        "--layer-tuning",
        action="store_true",
        help="count a per-layer model's tuned periphery: the card's tia.tuning_buffers_per_layer"
        " reference buffers and tia.tuning_dacs_per_layer trim DACs for every hidden layer "
        "beyond the first, in energy and area (per-layer and fixed models only)",
    )
    p.add_argument(
        "--chips", type=ac.integer(1, 10_000), default=1, help="Monte-Carlo chip instances"
    )
    p.add_argument("--seed", type=ac.seed, default=0, help="random seed, 0..2^32-1 (default 0)")
    p.add_argument(
        "--batch",
        type=ac.integer(1, 1_000_000),
        default=1000,
        help="samples per engine batch: memory against speed only, the result does not "
        "depend on it (default 1000)",
    )
    p.add_argument(
        "--sweep",
        default=None,
        metavar="PARAM=START:STOP:STEP",
        help="accuracy versus nvw, nva, t or adc_bits (JSON + PNG); values in the flag's "
        "range, at most 200 points",
    )
    p.add_argument(
        "--margin",
        type=ac.fraction,
        default=0.01,
        help="accuracy margin for the sweep's largest tolerated value (fraction)",
    )
    p.add_argument(
        "--plot", type=ac.path, default=None, help="PNG of the sweep (default beside --json)"
    )
    p.add_argument(
        "--verify-spice",
        type=ac.integer(0, 100_000),
        default=0,
        metavar="K",
        help="re-run K random MAC operations of this evaluation in ngspice",
    )
    p.add_argument(
        "--threads",
        type=ac.workers,
        default=None,
        help="engine threads over sample batches (default: the CPUs, up to 8; the result "
        "does not depend on it)",
    )
    p.add_argument(
        "--jobs",
        type=ac.workers,
        default=None,
        help="ngspice workers for --verify-spice (default: the CPUs, up to 8)",
    )
    p.add_argument("--cache-dir", type=ac.path, default=None, help="SPICE result cache")
    add_scheduler_argument(p, "the chips, sweep points and --verify-spice runs")
    p.add_argument(
        "--json",
        type=ac.path,
        default=None,
        metavar="PATH",
        help="write everything measured as JSON",
    )


def config_from_args(args: argparse.Namespace):
    """The :class:`~cosim.engine.config.EngineConfig` of the parsed flags.

    ``--ideal`` is exact arithmetic with no hardware effect: combining it with a flag that
    sets a hardware effect would silently ignore that flag, so it is an error.
    """
    from cosim.engine.config import EngineConfig
    from cosim.errors import CosimError

    kw: dict[str, Any] = {
        "nvw": args.nvw,
        "nva": args.nva,
        "drift_t_s": args.drift_t,
        "drift_compensation": args.drift_compensation,
        "adc_bits": args.adc_bits,
        "partial_sums": args.partial_sums,
        "chips": args.chips,
        "seed": args.seed,
        "batch": args.batch,
        "layer_tuning": args.layer_tuning,
    }
    for flag, field, _ in EFFECT_SWITCHES:
        kw[field] = not getattr(args, "no_" + flag.replace("-", "_"))
    sweeps_t = (args.sweep or "").partition("=")[0].strip() == "t"
    if (
        args.drift_compensation != "none"
        and not args.ideal
        and args.drift_t is None
        and not sweeps_t
    ):
        # a compensation without drift changes nothing: a forgotten --t, not a request
        raise CosimError(
            f"--drift-compensation {args.drift_compensation} compensates drift, but no --t "
            "(time since programming) is set: add --t SECONDS or --sweep t=..."
        )
    if args.ideal:
        ignored = [
            f"--{name}"
            for name, value in (
                ("nvw", args.nvw),
                ("nva", args.nva),
                ("t", args.drift_t),
                ("adc-bits", args.adc_bits),
                ("sweep", args.sweep),
                ("drift-compensation", args.drift_compensation != "none"),
                ("layer-tuning", args.layer_tuning),
            )
            if value
        ]
        ignored += [f"--chips {args.chips}"] if args.chips != 1 else []
        if ignored:
            raise CosimError(
                f"--ideal has no hardware effect, so {', '.join(ignored)} would be ignored; "
                "drop --ideal to simulate the chip"
            )
        return EngineConfig.ideal_mode(
            seed=args.seed, batch=args.batch, partial_sums=args.partial_sums
        )
    return EngineConfig(**kw)


def partial_sum_note(model: Any, card: Any, cfg: Any) -> str | None:
    """A line for the user when digital partial sums convert at fewer bits than the layers'
    activations carry (a low-resolution card, such as a 3-bit flash: each row tile's partial
    sum is converted at ``adc.bits``), else ``None``."""
    if cfg.ideal or cfg.partial_sums != "digital":
        return None
    from cosim.engine.mapping import map_model

    bits = cfg.adc_bits if cfg.adc_bits is not None else card.adc.bits
    if bits >= 8:  # the usual card: no mapping needed to know there is nothing to say
        return None
    split = [m for m in map_model(model, card) if m.n_row_tiles > 1]
    if not split:
        return None
    names = ", ".join(str(m.index) for m in split)
    return (
        f"layer(s) {names} span several row tiles, and each tile's partial sum converts at "
        f"{bits} bits (the card's adc.bits); --partial-sums analog joins them on the "
        "bitlines and converts once"
    )


def _check_outputs(args: argparse.Namespace) -> Path | None:
    """Check every output path before any work; returns the sweep's PNG path (if a sweep)."""
    from cosim.errors import CosimError
    from cosim.fileio import check_output_file

    if args.json is not None:
        check_output_file(args.json, kind="json")
    png = None
    if args.sweep:
        png = args.plot or (
            args.json.with_suffix(".png") if args.json else Path(f"sweep-{args.sweep_name}.png")
        )
        check_output_file(png, kind="png")
        if args.json is not None and Path(png).absolute() == Path(args.json).absolute():
            raise CosimError(f"--plot and --json both name {png}; give them different paths")
    elif args.plot is not None:
        raise CosimError("--plot draws a sweep: add --sweep PARAM=START:STOP:STEP")
    if args.verify_spice and args.cache_dir is not None:
        from cosim.spice.runner import check_cache_dir

        check_cache_dir(args.cache_dir)
    return png


def run(args: argparse.Namespace) -> int:
    """Evaluate and print; returns the exit status."""
    import os

    from cosim.datasets import load_dataset
    from cosim.engine.evaluate import evaluate
    from cosim.engine.tables import (
        LARGE_TILE,
        describe_tiles,
        format_report,
        format_sweep,
        format_verify,
    )
    from cosim.errors import CosimError
    from cosim.fileio import write_output_json
    from cosim.library import load_library
    from cosim.model import load_model

    # Everything the flags decide is checked before the model, library or data are read.
    sweep = None
    args.sweep_name = None
    if args.sweep:
        from cosim.engine.sweep import SweepSpec

        sweep = SweepSpec.parse(args.sweep)
        args.sweep_name = sweep.name
        flag = {"nvw": args.nvw, "nva": args.nva, "t": args.drift_t, "adc_bits": args.adc_bits}
        if flag[sweep.name]:
            flag_name = "--" + sweep.name.replace("_", "-")
            raise CosimError(
                f"{flag_name} and --sweep {sweep.name}=... both set {sweep.name}; the sweep "
                f"would ignore {flag_name}: drop one"
            )
        if args.verify_spice:
            raise CosimError(
                "--verify-spice checks one evaluation, not a sweep: run it without --sweep"
            )
    cfg = config_from_args(args)
    png = _check_outputs(args)
    address = scheduler_address(args.scheduler)
    if address:
        given = [f"--{f}" for f in ("threads", "jobs") if getattr(args, f) is not None]
        unused_with_scheduler("evaluate", given)
    threads = args.threads if args.threads is not None else max(1, min(8, os.cpu_count() or 1))
    card = None
    if args.card is not None:
        from cosim.card import load_card

        card = load_card(args.card)
    model = load_model(args.model)
    library = load_library(args.library)
    spec = args.dataset or model.info.get("dataset")
    if not spec:
        raise CosimError(
            "the model file does not say which dataset it was trained on; pass --dataset"
        )
    ds = load_dataset(spec)
    x, y = ds.x_test, ds.y_test
    if args.limit is not None:
        x, y = x[: args.limit], y[: args.limit]
    if card is not None:  # a card the library cannot serve is refused first
        from cosim.engine.core import what_if_card

        what_if_card(library, card)
    in_use = card if card is not None else library.card
    if args.verify_spice:  # refused before the evaluation, not after it
        from cosim.engine.mapping import map_model
        from cosim.engine.verify import verifiable_layers

        verifiable_layers(map_model(model, in_use), cfg)
    psum_note = partial_sum_note(model, in_use, cfg)
    if psum_note:
        import sys

        print(f"cosim evaluate: note: {psum_note}", file=sys.stderr, flush=True)
    if in_use.array.rows * in_use.array.cols > LARGE_TILE:
        import sys

        print(f"cosim evaluate: {describe_tiles(in_use, cfg)}", file=sys.stderr, flush=True)
    out: dict[str, Any] = {"model": str(args.model), "library": str(args.library), "dataset": spec}
    if args.card is not None:
        out["card"] = str(args.card)
    with maybe_connect(address) as cluster:
        if sweep is not None:
            from cosim.engine.sweep import plot_sweep, run_sweep

            res = run_sweep(
                model, library, x, y, cfg, sweep, args.margin, card, threads, cluster=cluster
            )
            out["sweep"] = res
            assert png is not None
            plot_sweep(res, png, f"{Path(args.model).name} on '{in_use.name}'")
            out["sweep_png"] = str(png)
            print(format_sweep(res))
            print(f"plot: {png}")
        else:
            r = evaluate(model, library, x, y, cfg, card=card, threads=threads, cluster=cluster)
            out["evaluation"] = r.to_dict()
            print(format_report(r, model, in_use))
            if args.verify_spice:
                from cosim.engine.verify import verify_spice

                jobs = args.jobs or max(1, min(8, os.cpu_count() or 1))
                v = verify_spice(
                    model,
                    library,
                    x,
                    cfg,
                    args.verify_spice,
                    jobs=jobs,
                    cache_dir=args.cache_dir,
                    seed=args.seed,
                    card=card,
                    cluster=cluster,
                )
                out["verify_spice"] = v
                print(format_verify(v))
    if args.json is not None:
        write_output_json(args.json, out)
        print(f"json: {args.json}")
    return 0
