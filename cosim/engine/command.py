"""``cosim evaluate``: arguments, the run, and a readable report."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

_SWITCHES = (
    ("programming-noise", "programming_noise", "device programming variation"),
    ("read-noise", "read_noise", "per-read conductance noise"),
    ("stuck-faults", "stuck_faults", "stuck-at-on/off devices"),
    ("ir-drop", "ir_drop", "wire resistance (crossbar surrogate)"),
    ("nonlinearity", "nonlinearity", "device I-V nonlinearity"),
    ("periphery", "periphery", "TIA/subtractor gain error, offsets, saturation"),
    ("adc-mismatch", "adc", "ADC capacitor mismatch and comparator offset"),
    ("sense-skip", "sense_skip", "sparsity-aware MSB skipping"),
)


def configure(p: argparse.ArgumentParser) -> None:
    """Add the sub-command's arguments (import-light)."""
    p.add_argument("--model", type=Path, required=True, help="model file from cosim train")
    p.add_argument(
        "--library",
        type=Path,
        required=True,
        help="surrogate library directory from cosim characterize",
    )
    p.add_argument(
        "--card",
        type=Path,
        default=None,
        help="what-if variant of the library's card (device levels, array size, noise "
        "scales, areas: fields the surrogates do not depend on)",
    )
    p.add_argument(
        "--dataset", default=None, help="dataset spec (default: the one the model was trained on)"
    )
    p.add_argument("--limit", type=int, default=None, help="evaluate the first N test samples")
    p.add_argument(
        "--ideal",
        action="store_true",
        help="ideal mode: the mapping in exact arithmetic, no hardware effect",
    )
    for flag, _field, help_ in _SWITCHES:
        p.add_argument(f"--no-{flag}", action="store_true", help=f"switch off: {help_}")
    p.add_argument(
        "--nvw",
        type=float,
        default=0.0,
        help="extra normalized weight variation sigma/(G_max-G_min) (Bao et al.)",
    )
    p.add_argument(
        "--nva",
        type=float,
        default=0.0,
        help="ADC comparison-level variation sigma/V_ref (Bao et al.)",
    )
    p.add_argument(
        "--t",
        dest="drift_t",
        type=float,
        default=None,
        help="time since programming (s) for drift; default: no drift",
    )
    p.add_argument(
        "--adc-bits",
        type=int,
        default=None,
        help="convert at this resolution (default: the model's activation bits)",
    )
    p.add_argument(
        "--partial-sums",
        choices=("digital", "analog"),
        default="digital",
        help="row-tile partial sums: converted per tile and added digitally "
        "(default) or joined on the bitlines and converted once",
    )
    p.add_argument("--chips", type=int, default=1, help="Monte-Carlo chip instances")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch", type=int, default=1000, help="samples per engine batch")
    p.add_argument(
        "--sweep",
        default=None,
        metavar="PARAM=START:STOP:STEP",
        help="accuracy versus nvw, nva, t or adc_bits (JSON + PNG)",
    )
    p.add_argument(
        "--margin",
        type=float,
        default=0.01,
        help="accuracy margin for the sweep's largest tolerated value (fraction)",
    )
    p.add_argument(
        "--plot", type=Path, default=None, help="PNG of the sweep (default beside --json)"
    )
    p.add_argument(
        "--verify-spice",
        type=int,
        default=0,
        metavar="K",
        help="re-run K random MAC operations of this evaluation in ngspice",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="engine threads over sample batches (default: the CPUs, up to 8; the result "
        "does not depend on it)",
    )
    p.add_argument("--jobs", type=int, default=None, help="ngspice workers for --verify-spice")
    p.add_argument("--cache-dir", type=Path, default=None, help="SPICE result cache")
    p.add_argument(
        "--json", type=Path, default=None, metavar="PATH", help="write everything measured as JSON"
    )


def config_from_args(args: argparse.Namespace):
    from cosim.engine.config import EngineConfig

    kw: dict[str, Any] = {
        "nvw": args.nvw,
        "nva": args.nva,
        "drift_t_s": args.drift_t,
        "adc_bits": args.adc_bits,
        "partial_sums": args.partial_sums,
        "chips": args.chips,
        "seed": args.seed,
        "batch": args.batch,
    }
    for flag, field, _ in _SWITCHES:
        kw[field] = not getattr(args, "no_" + flag.replace("-", "_"))
    if args.ideal:
        return EngineConfig.ideal_mode(
            seed=args.seed, batch=args.batch, partial_sums=args.partial_sums
        )
    return EngineConfig(**kw)


def run(args: argparse.Namespace) -> int:
    """Evaluate and print; returns the exit status."""
    import os

    import numpy as np

    from cosim.datasets import load_dataset
    from cosim.engine.evaluate import evaluate
    from cosim.errors import CosimError
    from cosim.fileio import write_json_atomic
    from cosim.library import load_library
    from cosim.train.modelfile import load_model

    threads = args.threads if args.threads is not None else max(1, min(8, os.cpu_count() or 1))
    if threads < 1:
        raise CosimError("--threads must be at least 1")
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
        if args.limit < 1:
            raise CosimError("--limit must be at least 1")
        x, y = x[: args.limit], y[: args.limit]
    cfg = config_from_args(args)
    card = None
    if args.card is not None:
        from cosim.card import load_card

        card = load_card(args.card)
    out: dict[str, Any] = {"model": str(args.model), "library": str(args.library), "dataset": spec}
    if args.sweep:
        from cosim.engine.sweep import SweepSpec, plot_sweep, run_sweep

        sw = SweepSpec.parse(args.sweep)
        res = run_sweep(model, library, x, y, cfg, sw, args.margin, card, threads)
        out["sweep"] = res
        png = args.plot or (
            args.json.with_suffix(".png") if args.json else Path(f"sweep-{sw.name}.png")
        )
        plot_sweep(res, png, f"{Path(args.model).name} on '{library.card.name}'")
        out["sweep_png"] = str(png)
        print(format_sweep(res))
        print(f"plot: {png}")
    else:
        r = evaluate(model, library, x, y, cfg, card=card, threads=threads)
        out["evaluation"] = r.to_dict()
        print(format_report(r, model, library))
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
            )
            out["verify_spice"] = v
            print(format_verify(v))
    if args.json is not None:
        write_json_atomic(args.json, out)
        print(f"json: {args.json}")
    del np
    return 0


def format_report(r, model, library) -> str:
    card = library.card
    e = r.energy_per_inference_j
    et = sum(e.values())
    a = r.area_m2
    mode = (
        "ideal"
        if r.config["ideal"]
        else "all non-idealities on"
        if all(r.config[f] for _, f, _ in _SWITCHES)
        else "selected non-idealities"
    )
    lines = [
        f"cosim evaluate: {model.architecture} ({model.scheme}) on card '{card.name}', {mode}",
        f"accuracy: {r.accuracy_mean * 100:.2f} % ± {r.accuracy_std * 100:.2f} over "
        f"{len(r.accuracy_per_chip)} chip(s), {r.n_samples} samples "
        f"(trained model: {model.info.get('test_accuracy', float('nan')) * 100:.2f} %)",
        f"periphery: {'shared' if r.periphery['shared'] else 'per layer'}; transimpedance "
        + ", ".join(f"{x / 1e3:.1f}" for x in sorted(set(r.periphery["transimpedance_ohm"])))
        + f" kohm (card: {r.periphery['card_r_feedback_ohm'] / 1e3:.1f}); tiles per layer "
        + ", ".join(str(t) for t in r.periphery["tiles"]),
        "",
        f"  {'layer':<10} {'ADC clip':>9} {'TIA sat':>9} {'skipped':>9} {'viol.':>6} "
        f"{'psum clip':>10} {'energy/inf':>12}",
    ]
    for lay in r.layers:
        le = sum(lay["energy_per_inference_j"].values())
        lines.append(
            f"  {lay['layer']:<10} {lay['adc_clipping_rate'] * 100:>8.2f}% "
            f"{lay['tia_saturation_rate'] * 100:>8.3f}% "
            f"{lay['skipped_cycle_fraction'] * 100:>8.2f}% {lay['bound_violations']:>6} "
            f"{lay['psum_clipping_rate'] * 100:>9.2f}% "
            f"{le * 1e12:>9.2f} pJ"
        )
    energy_line = (
        "energy per inference: not modelled in ideal mode (exact arithmetic, no circuits)"
        if r.config["ideal"]
        else f"energy per inference: {et * 1e9:.3f} nJ  ("
        + ", ".join(f"{k} {v / et * 100:.1f}%" for k, v in e.items() if et > 0)
        + ")"
    )
    lines += [
        "",
        energy_line,
        f"area ({a['periphery']} periphery): {a['total_m2'] * 1e6:.4f} mm^2  (dedicated: "
        f"{a['total_dedicated_m2'] * 1e6:.4f}, shared: {a['total_shared_m2'] * 1e6:.4f})",
        f"wall time: {r.wall_s:.1f} s",
    ]
    return "\n".join(lines)


def format_sweep(res: dict[str, Any]) -> str:
    lines = [
        f"sweep of {res['parameter']} ({res['label']}); noiseless accuracy "
        f"{res['reference_accuracy'] * 100:.2f} %"
    ]
    for v, m, s in zip(res["values"], res["accuracy_mean"], res["accuracy_std"], strict=True):
        lines.append(f"  {v:>10g}  {m * 100:6.2f} % ± {s * 100:.2f}")
    if res.get("largest_value_within_margin") is not None:
        lines.append(
            f"largest {res['parameter']} within {res['margin'] * 100:g} points: "
            f"{res['largest_value_within_margin']:g}"
        )
    return "\n".join(lines)


def format_verify(v: dict[str, Any]) -> str:
    return (
        f"verify-spice: {v['n_operations']} MAC operations ({v['n_codes']} ADC codes) in "
        f"ngspice: {v['identical_fraction'] * 100:.1f} % identical, "
        f"{v['within_1_lsb_fraction'] * 100:.1f} % within ±1 LSB; analog output error rms "
        f"{v['analog_rms_error_lsb']:.3f} LSB, max {v['analog_max_error_lsb']:.3f} LSB "
        f"({v['wall_s']:.0f} s)"
    )
