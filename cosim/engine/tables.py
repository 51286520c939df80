"""The tables ``cosim evaluate`` prints: the evaluation report, a sweep, the SPICE check, and
the line on large tiles."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cosim.engine.config import EFFECT_SWITCHES
from cosim.engine.results import energy_sources_by_kind

if TYPE_CHECKING:
    from cosim.card import Card
    from cosim.engine.results import EvalResult
    from cosim.model import Model


#: Tiles above this many devices get a line on stderr before the chip is built.
LARGE_TILE = 128 * 128


def describe_tiles(card, cfg) -> str:
    """One line on the tile size in use and, with IR drop on, how large each tile's solve is.

    Printed (for tiles above :data:`LARGE_TILE` devices) before the chip is built, so a
    what-if card with large tiles says at once what it will cost: the exact transfer
    (nested dissection) grows about as n^3 with the tile's side n (0.08 s at 256x257,
    0.46 s at 512x513 on one core of this machine class: benchmarks/results/tiles.json).
    """
    rows, cols = card.array.rows, card.array.cols
    line = f"tiles of {rows}x{cols} devices on card '{card.name}'"
    if not cfg.ideal and cfg.ir_drop:
        line += (
            f"; IR drop solves a {2 * rows * cols}-node wire network per tile and chip "
            "(~0.1 s per tile at 256x256, ~0.5 s at 512x512, growing as n^3; "
            "--no-ir-drop skips it)"
        )
    return line


def energy_provenance(sources=None) -> str:
    """One line: which energy components are simulated in SPICE, computed by the engine, or
    the card's design figures: of ``sources`` (the evaluation's own, which follow its card:
    ``adc.e_conv_j`` makes the ADC a card figure), by default
    :data:`cosim.engine.results.ENERGY_SOURCES`."""
    names = {
        "spice": "simulated in SPICE",
        "engine": "computed from the devices",
        "card": "card figures",
    }
    parts = [f"{names[s]}: {', '.join(ks)}" for s, ks in energy_sources_by_kind(sources).items()]
    return "  energy sources: " + "; ".join(parts)


def format_report(r: EvalResult, model: Model, card: Card) -> str:
    """The readable evaluation report; ``card``: the card in use (a what-if card if given)."""
    e = r.energy_per_inference_j
    et = e.total_j
    a = r.area_m2
    mode = (
        "ideal"
        if r.config["ideal"]
        else "all non-idealities on"
        if all(r.config[f] for _, f, _ in EFFECT_SWITCHES)
        else "selected non-idealities"
    )
    if not r.config["ideal"] and r.config["drift_t_s"] is not None:
        mode += (
            f"; drift t = {r.config['drift_t_s']:g} s, "
            f"compensation {r.config['drift_compensation']}"
        )
    lines = [
        f"cosim evaluate: {model.architecture} ({model.scheme}) on card '{card.name}', {mode}",
        f"accuracy: {r.accuracy_mean * 100:.2f} % ± {r.accuracy_std * 100:.2f} over "
        f"{len(r.accuracy_per_chip)} chip(s), {r.n_samples} samples "
        f"(trained model: {model.info.get('test_accuracy', float('nan')) * 100:.2f} %)",
        f"periphery: {'shared' if r.periphery.shared else 'per layer'}; transimpedance "
        + ", ".join(f"{x / 1e3:.1f}" for x in sorted(set(r.periphery.transimpedance_ohm)))
        + f" kohm (card: {r.periphery.card_r_feedback_ohm / 1e3:.1f}); tiles per layer "
        + ", ".join(str(t) for t in r.periphery.tiles),
        "",
        f"  {'layer':<10} {'ADC clip':>9} {'TIA sat':>9} {'skipped':>9} {'viol.':>6} "
        f"{'psum clip':>10} {'energy/inf':>12}",
    ]
    for lay in r.layers:
        le = lay.energy_per_inference_j.total_j
        lines.append(
            f"  {lay.layer:<10} {lay.adc_clipping_rate * 100:>8.2f}% "
            f"{lay.tia_saturation_rate * 100:>8.3f}% "
            f"{lay.skipped_cycle_fraction * 100:>8.2f}% {lay.bound_violations:>6} "
            f"{lay.psum_clipping_rate * 100:>9.2f}% "
            f"{le * 1e12:>9.2f} pJ"
        )
    energy_line = (
        "energy per inference: not modelled in ideal mode (exact arithmetic, no circuits)"
        if r.config["ideal"]
        else f"energy per inference: {et * 1e9:.3f} nJ  ("
        + ", ".join(f"{k} {v / et * 100:.1f}%" for k, v in e.items() if et > 0)
        + ")\n"
        + energy_provenance(r.sources)
    )
    lines += [
        "",
        energy_line,
        f"area ({a.periphery} periphery): {a.total_m2 * 1e6:.4f} mm^2  (dedicated: "
        f"{a.total_dedicated_m2 * 1e6:.4f}, shared: {a.total_shared_m2 * 1e6:.4f})",
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
    lo, hi = v["identical_rate_ci95"]
    layers = ", ".join(
        f"layer {lay['layer']} {lay['codes_compared']} codes {lay['identical_rate'] * 100:.1f} %"
        for lay in v["per_layer"]
    )
    return (
        f"verify-spice: {v['n_operations']} MAC operations, {v['codes_compared']} ADC codes "
        f"compared (every output of {v['vectors_simulated']} vectors) in ngspice: "
        f"{v['identical_rate'] * 100:.1f} % identical (95 % interval "
        f"{lo * 100:.1f}-{hi * 100:.1f} %), "
        f"{v['within_1_lsb_fraction'] * 100:.1f} % within ±1 LSB; analog output error rms "
        f"{v['analog_rms_error_lsb']:.3f} LSB, max {v['analog_max_error_lsb']:.3f} LSB; "
        f"{layers} ({v['wall_s']:.0f} s)"
    )
