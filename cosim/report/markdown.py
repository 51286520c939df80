"""``report.md``: headline table, then each figure with the published value beside it.

Every figure is followed by three lines: **Published** (the paper's number and where it is),
**Ours** (the same quantity from this study) and **Why ours differs** (dataset, card,
epochs, method), then a short table. docs/report.md has the longer method notes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cosim.report.references import REFERENCES

Report = dict[str, Any]


def _pct(x: float | None, digits: int = 1) -> str:
    if x is None:
        return "n/a"
    text = f"{x * 100:.{digits}f}"
    if text.startswith("-") and text.strip("-0.") == "":  # a negative that rounds to 0
        text = text[1:]
    return f"{text} %"


def _net(rep: Report) -> str:
    p = rep["plan"]
    names = {"lenet5": "LeNet-5", "mlp": "the MLP", "cnn6": "the six-conv CNN"}
    return f"{names.get(p['arch'], p['arch'])} on {p['dataset']}"


def _training(rep: Report, epochs: int) -> str:
    p = rep["plan"]
    d = rep.get("accuracy_grid_details", {})
    n = d.get("train_samples")
    samples = f"{n} training samples, " if n else ""
    return f"{samples}{epochs} epoch{'s' if epochs != 1 else ''} of Adam (batch {p['batch_size']})"


def _data_note(rep: Report, float_acc: float) -> str:
    ds = rep["plan"]["dataset"]
    if ds.startswith("fashion-mnist"):
        return f"Fashion-MNIST is harder than MNIST (float {_pct(float_acc)} here vs 99.08 %)"
    if ds == "digits":
        return (
            "scikit-learn's 8x8 digits (about 1400 training images) are a small task "
            f"(float {_pct(float_acc)} here vs 99.08 % on MNIST)"
        )
    return f"a different dataset (float {_pct(float_acc)} here vs 99.08 % on MNIST)"


def _block(fig: str, pub: str, ours: str, why: str, table: list[list[str]] | None = None) -> str:
    lines = [
        f"![{fig}]({fig})",
        "",
        f"**Published** {pub}",
        "",
        f"**Ours:** {ours}",
        "",
        f"**Why ours differs:** {why}",
        "",
    ]
    if table:
        lines.append("| " + " | ".join(table[0]) + " |")
        lines.append("|" + "---|" * len(table[0]))
        lines += ["| " + " | ".join(row) + " |" for row in table[1:]]
        lines.append("")
    return "\n".join(lines)


def _pub(key: str) -> str:
    ref = REFERENCES[key]
    return f"({ref['source']}): {ref['text']}."


# ------------------------------------------------------------------------------ sections
def _grid(rep: Report) -> str:
    d, ref = rep["accuracy_grid_details"], REFERENCES["accuracy_grid"]
    g = rep["accuracy_grid"]
    ours = (
        f"{_net(rep)}: W4A3 {_pct(g['W4A3'], 2)} vs {_pct(d['float_accuracy'], 2)} float "
        f"({(d['design_point_minus_float']) * 100:+.2f} points); best cell {d['best']['name']} "
        f"{_pct(d['best']['accuracy'], 2)}. Weights above the card's "
        f"{d['device_level_bits']}-bit device levels still train (this is a training "
        "experiment); the hardware experiments run them on an 8-bit-level what-if card."
    )
    why = (
        f"{_net(rep)} ({_training(rep, d['epochs'])}) instead of LeNet-5 on MNIST trained "
        f"for 300 iteration cycles; {_data_note(rep, d['float_accuracy'])}; the short "
        "training lowers every cell, and global quantization shares one set of ranges "
        "across all layers."
    )
    rows = [["", "ours", "published (LeNet-5, MNIST)"]]
    rows.append(["W4A3", _pct(g["W4A3"], 2), _pct(ref["W4A3"], 2)])
    rows.append(["float", _pct(d["float_accuracy"], 2), _pct(ref["float"], 2)])
    rows.append(
        [
            "W4A3 − float",
            f"{d['design_point_minus_float'] * 100:+.2f} points",
            f"{(ref['W4A3'] - ref['float']) * 100:+.2f} points",
        ]
    )
    if "W8A8" in g:
        rows.append(["W8A8", _pct(g["W8A8"], 2), "saturated (≥ 6-bit weights best)"])
    if "W1A1" in g:
        rows.append(["W1A1", _pct(g["W1A1"], 2), "large decline at 1 bit"])
    return _block("fig1_accuracy_grid.png", _pub("accuracy_grid"), ours, why, rows)


def _clip(rep: Report) -> str:
    d = rep["clip_bound"]
    ours = (
        f"best hi = {d['best_hi']:g} ({_pct(d['best_accuracy'], 2)}); the accuracies over hi = "
        + ", ".join(f"{h:g}" for h in d["hi"])
        + f" span {d['spread'] * 100:.2f} points."
    )
    why = (
        "in cosim's global scheme the input DAC shares the activation range, so the integer "
        "network the hardware runs does not depend on hi at all (docs/training.md); hi only "
        "scales the logits during training (a softmax temperature) and the range losses. "
        "Bao et al. keep inputs in [0, 1] and clip hidden activations at hi, which makes hi "
        "a real clipping level; also a different dataset and epochs."
    )
    rows = [
        ["hi", *[f"{h:g}" for h in d["hi"]]],
        ["accuracy", *[_pct(a, 2) for a in d["accuracy"]]],
    ]
    rows.append(["final w_max", *[f"{w:.3g}" for w in d["w_max"]]])
    return _block("fig2_clip_bound.png", _pub("clip_bound"), ours, why, rows)


def _fmt_largest(v: float, cen: bool) -> str:
    return f"≥ {v:g}" if cen else f"{v:.3g}"


def _nvw(rep: Report) -> str:
    d = rep["robustness"]
    n = d["nvw"]
    pairs = [_fmt_largest(v, c) for v, c in zip(n["largest"], n["censored"], strict=True)]
    trend = _trend(n["w_bits"], n["largest"])
    ours = (
        f"largest nvw at A{n['a_bits']} by weight bits: "
        + ", ".join(f"W{w}: {s}" for w, s in zip(n["w_bits"], pairs, strict=True))
        + f" ({trend})."
    )
    lv = d["what_if_level_bits_8_for_w_bits"]
    why = (
        f"criterion: {d['criterion']} (Bao et al.: above 90 % absolute on MNIST); "
        f"{d['samples']} test samples of {_net(rep)}; σ = nvw·(G_max − G_min) on every device "
        "of the differential pair; "
        + (
            f"W {', '.join(map(str, lv))} run on a what-if card with 8-bit device levels; "
            if lv
            else ""
        )
        + "short training."
    )
    rows = [["weight bits", *map(str, n["w_bits"])], ["largest nvw", *pairs]]
    rows.append(
        ["noiseless accuracy", *[_pct(c["reference_accuracy"]) for c in n["curves"].values()]]
    )
    return _block("fig3a_robustness_nvw.png", _pub("robustness_nvw"), ours, why, rows)


def _trend(x: list[int], y: list[float]) -> str:
    """How ``y`` follows the precision ``x``: the mean over the upper half of the
    precisions against the lower half's; within 10 % either way counts as no clear trend
    (the Monte-Carlo sweeps are noisy at that level)."""
    pts = sorted((a, b) for a, b in zip(x, y, strict=True) if b is not None and b == b)
    if len(pts) < 2:
        return "one point"
    half = len(pts) // 2
    lo = float(np.mean([b for _, b in pts[:half]]))
    hi = float(np.mean([b for _, b in pts[-half:]]))
    if lo == 0:
        return "no clear trend"
    rel = hi / lo - 1.0
    what = f"upper half of the precisions {rel * 100:+.0f} % against the lower half"
    if rel <= -0.1:
        return f"falls with precision ({what}), as published"
    if rel >= 0.1:
        return f"rises with precision ({what}), unlike the paper"
    return f"no clear trend ({what}), unlike the paper"


def _nva(rep: Report) -> str:
    d = rep["robustness"]
    n = d["nva"]
    rows = [["", *[f"A{a}" for a in n["a_bits"]]]]
    parts = []
    for w in n["w_bits"]:
        vals = [
            _fmt_largest(v, c)
            for v, c in zip(n["largest"][f"W{w}"], n["censored"][f"W{w}"], strict=True)
        ]
        rows.append([f"W{w}", *vals])
        parts.append(f"W{w}: {_trend(n['a_bits'], n['largest'][f'W{w}'])}")
    ours = "largest nva per activation precision — " + "; ".join(parts) + "."
    why = (
        "one comparison-level table per ADC instance (shared by the card's columns per ADC), "
        "Bao et al. per weight filter; σ = nva·V_ref on every comparison level of the SAR "
        "search (the code errs by about that voltage at any resolution); "
        f"{d['criterion']}; {_net(rep)}."
    )
    return _block("fig3b_robustness_nva.png", _pub("robustness_nva"), ours, why, rows)


def _cdf(rep: Report) -> str:
    d = rep["activation_cdf"]
    h = d["headline"]
    ours = (
        f"{_pct(h['W4A3']['fraction'])} of W4A3 activation codes fit in "
        f"{3 - h['W4A3']['fewer_bits']} bit(s), {_pct(h['W8A8']['fraction'])} of W8A8 codes in "
        f"{8 - h['W8A8']['fewer_bits']} bits; zeros: {_pct(d['W4A3']['total']['zero_fraction'])}"
        f" (W4A3), {_pct(d['W8A8']['total']['zero_fraction'])} (W8A8)."
    )
    why = (
        f"{_net(rep)} over {d['W4A3']['samples']} test samples with the global scheme's shared "
        "ranges; Bao et al.'s LeNet-5 on MNIST has sparser activations (mostly black "
        "background) and per-network clip ranges."
    )
    rows = [["layer", "fan-in", "W4A3: code ≤ 1", "W8A8: code < 16"]]
    for l4, l8 in zip(d["W4A3"]["layers"], d["W8A8"]["layers"], strict=True):
        rows.append(
            [
                l4["name"],
                str(l4["fan_in"]),
                _pct(l4["fraction_fewer_bits"]["2"]),
                _pct(l8["fraction_fewer_bits"]["4"]),
            ]
        )
    rows.append(
        [
            "all",
            "",
            _pct(d["W4A3"]["total"]["fraction_fewer_bits"]["2"]),
            _pct(d["W8A8"]["total"]["fraction_fewer_bits"]["4"]),
        ]
    )
    rows.append(["published", "", "> 99 %", "> 97 %"])
    return _block("fig4_activation_cdf.png", _pub("activation_cdf"), ours, why, rows)


def _at(d: dict[str, Any], key: str, rows: int) -> float | None:
    return d[key][d["rows"].index(rows)] if rows in d["rows"] else None


def _adc(rep: Report) -> str:
    d = rep["adc_energy_vs_rows"]
    if "skipped" in d:
        return f"Skipped: {d['skipped']}.\n"
    ref = REFERENCES["adc_energy_vs_rows"]
    ours = (
        f"ADC energy with the sense-row skip at 128 rows: "
        f"{_pct(_at(d['W4A3'], 'normalized_adc_energy', 128))} (W4A3) and "
        f"{_pct(_at(d['W8A8'], 'normalized_adc_energy', 128))} (W8A8) of the same chip without "
        f"skipping; at 512 rows {_pct(_at(d['W4A3'], 'normalized_adc_energy', 512))} and "
        f"{_pct(_at(d['W8A8'], 'normalized_adc_energy', 512))}. With digital partial sums at "
        f"128 rows: {_pct(d['W4A3']['digital_partial_sums_at_128']['normalized_adc_energy'])} "
        f"and {_pct(d['W8A8']['digital_partial_sums_at_128']['normalized_adc_energy'])}."
    )
    why = (
        "we used analog partial sums: the paper's MAC unit converts each output once, while "
        "cosim's default digital partial sums convert every row tile's signed sum at the "
        "card's full 8 bits around half scale, where no MSB can be skipped (the skip never "
        "acts on them). Our ADC energies are the card's SPICE-fitted SAR ADC; the sense "
        "thresholds keep the card's INL and op-amp-offset margins (they grow with the sense "
        "line's Norton conductance, i.e. with the rows), and a conversion accumulates the "
        "layer's whole fan-in, so the right panel (per layer versus fan-in) is the closest "
        f"analogue of the paper's rows axis. Above all, {_net(rep)} activations are denser: "
        "the sense-line bound (the inputs summed through the sense devices, plus the tile's "
        "largest bias voltage) is rarely low enough to skip an MSB in the hidden layers, "
        "whose inputs are the previous layer's dense activations (docs/report.md, "
        "experiment 5, checks this with no offset margin at all)."
    )
    rows = [["rows", *map(str, d["W4A3"]["rows"])]]
    for prec in ("W4A3", "W8A8"):
        rows.append(
            [
                f"{prec} ADC energy (skip/no skip)",
                *[_pct(v) for v in d[prec]["normalized_adc_energy"]],
            ]
        )
        rows.append(
            [f"{prec} skipped SAR cycles", *[_pct(v) for v in d[prec]["skipped_cycle_fraction"]]]
        )
    rows.append(
        [
            "published",
            "",
            "",
            f"{ref['normalized_adc_energy_at_128']['W4A3'] * 100:.0f} % / "
            f"{ref['normalized_adc_energy_at_128']['W8A8'] * 100:.0f} %",
            "",
            "no saving / ≤ 82 %",
        ]
    )
    return _block("fig5a_adc_energy_vs_rows.png", _pub("adc_energy_vs_rows"), ours, why, rows)


def _mac(rep: Report) -> str:
    d = rep["mac_efficiency"]
    if "skipped" in d:
        return ""
    share = _at(d["W8A8"], "adc_share_of_baseline", 128)
    share4 = _at(d["W4A3"], "adc_share_of_baseline", 128)
    ours = (
        f"MAC-unit efficiency improvement at 128 x 128: "
        f"{_at(d['W8A8'], 'improvement', 128):.3f}x (W8A8), "
        f"{_at(d['W4A3'], 'improvement', 128):.3f}x (W4A3); the ADC is {_pct(share)} (W8A8) and "
        f"{_pct(share4)} (W4A3) of the baseline MAC energy."
    )
    why = (
        "on this card the column TIAs and subtractors (op-amps drawing their quiescent power "
        "for every read) dominate the MAC energy and the SPICE-fitted SAR ADC is a small "
        "share, so even a large ADC saving moves the MAC energy little and the sense row's "
        "own TIA and comparators can outweigh it; Bao et al.'s MAC unit is ADC-dominated "
        "(converter figures from the ADC survey)."
    )
    rows = [["rows", *map(str, d["W4A3"]["rows"])]]
    for prec in ("W4A3", "W8A8"):
        rows.append([f"{prec} improvement", *[f"{v:.3f}x" for v in d[prec]["improvement"]]])
    rows.append(["published W8A8", "4.98x", "", "2.98x", "", "1.18x"])
    rows.append(["published W4A3", "1.20x", "", "1.15x", "", ""])
    return _block("fig5b_mac_efficiency.png", _pub("mac_efficiency"), ours, why, rows)


def _periphery(rep: Report) -> str:
    d = rep["periphery_savings"]
    ours = (
        "; ".join(
            f"{f} ({v['dataset']}, unipolar {v['unipolar_fraction']:g}): "
            f"{_pct(v['area_fraction_saved'])} area and {_pct(v['energy_fraction_saved'])} energy "
            f"saved (shared periphery alone: {_pct(v['area_fraction_saved_shared_only'])} / "
            f"{_pct(v['energy_fraction_saved_shared_only'])})"
            for f, v in d.items()
        )
        + "."
    )
    why = (
        "traditional = per-layer STE W4A3 model on dedicated per-layer periphery with "
        "differential columns and subtractors; proposed = global W4A3 with unipolar filters "
        "on one shared periphery bank; areas and energies come from the card's component "
        "figures and the engine's counts (shared periphery saves area, not energy per "
        "operation); the paper used HAR and CIFAR-10 networks and custom 55 nm converters."
    )
    rows = [
        [
            "model",
            "area saved",
            "energy saved",
            "accuracy trad. / proposed (integer)",
            "on the chip (engine)",
            "published",
        ]
    ]
    for f, v in d.items():
        rows.append(
            [
                f"{f} ({v['dataset']})",
                _pct(v["area_fraction_saved"]),
                _pct(v["energy_fraction_saved"]),
                f"{_pct(v['accuracy']['traditional'])} / {_pct(v['accuracy']['proposed'])}",
                f"{_pct(v['engine_accuracy']['traditional'])} / "
                f"{_pct(v['engine_accuracy']['proposed'])}",
                "up to 80 % / 45 % area / energy (v2: 67 % / 40 %)",
            ]
        )
    return _block("fig6_periphery_savings.png", _pub("periphery_savings"), ours, why, rows)


def _unipolar(rep: Report) -> str:
    d = rep["unipolar_tradeoff"]
    fr = d["fractions"]
    a0 = d["accuracy"][0]
    near = min(range(len(fr)), key=lambda i: abs(fr[i] - 0.4))
    ours = (
        f"at {fr[near]:g} unipolar: {_pct(d['accuracy'][near], 2)} vs {_pct(a0, 2)} all-bipolar "
        f"({(d['accuracy'][near] - a0) * 100:+.2f} points), area {_pct(d['area_relative'][near])}"
        f" and energy {_pct(d['energy_relative'][near])} of all-bipolar; all unipolar: "
        f"{_pct(d['accuracy'][-1], 2)}."
    )
    why = (
        f"{_net(rep)} ({d['hidden_filters']} hidden filters, {d['epochs']} epochs) instead of the "
        "six-conv CNN on CIFAR-10; filters chosen by cosim's measured-sensitivity search; "
        "accuracy on the chip, area and energy from one evaluation on the engine's default "
        "chip (shared periphery, every non-ideality on); with every filter unipolar the "
        "chip loses more to programming noise and IR drop, which no differential pair "
        "cancels."
    )
    rows = [["unipolar fraction", *[f"{f:g}" for f in fr]]]
    rows.append(["accuracy", *[_pct(a, 2) for a in d["accuracy"]]])
    rows.append(["engine accuracy", *[_pct(a, 2) for a in d["engine_accuracy"]]])
    rows.append(["area (rel.)", *[_pct(a) for a in d["area_relative"]]])
    rows.append(["energy (rel.)", *[_pct(a) for a in d["energy_relative"]]])
    return _block("fig7_unipolar_tradeoff.png", _pub("unipolar_tradeoff"), ours, why, rows)


SECTIONS = (
    ("1. Accuracy over weight and activation precision", "accuracy_grid", _grid),
    ("2. Accuracy versus the activation clip bound", "clip_bound", _clip),
    ("3a. Robustness to weight variation (nvw)", "robustness", _nvw),
    ("3b. Robustness to converter variation (nva)", "robustness", _nva),
    ("4. Distributions of the activation codes", "activation_cdf", _cdf),
    ("5a. Sparsity-aware ADC: energy versus array rows", "adc_energy_vs_rows", _adc),
    ("5b. Sparsity-aware ADC: MAC-unit energy efficiency", "mac_efficiency", _mac),
    ("6. Shared periphery and unipolar weights", "periphery_savings", _periphery),
    ("7. Accuracy versus the fraction of unipolar filters", "unipolar_tradeoff", _unipolar),
)


def _headlines(rep: Report) -> list[list[str]]:
    rows = [["quantity", "ours", "published"]]
    g, d = rep["accuracy_grid"], rep["accuracy_grid_details"]
    rows.append(
        [
            f"W4A3 vs float ({_net(rep)})",
            f"{_pct(g['W4A3'], 2)} vs {_pct(d['float_accuracy'], 2)}",
            "98.82 % vs 99.08 % (LeNet-5, MNIST)",
        ]
    )
    a = rep.get("adc_energy_vs_rows", {})
    if "W4A3" in a:
        rows.append(
            [
                "ADC energy with sense skip at 128 rows, W4A3 / W8A8",
                f"{_pct(_at(a['W4A3'], 'normalized_adc_energy', 128))} / "
                f"{_pct(_at(a['W8A8'], 'normalized_adc_energy', 128))}",
                "47 % / 21 %",
            ]
        )
        m = rep["mac_efficiency"]
        rows.append(
            [
                "MAC efficiency improvement at 128 x 128, W8A8 / W4A3",
                f"{_at(m['W8A8'], 'improvement', 128):.3f}x / "
                f"{_at(m['W4A3'], 'improvement', 128):.3f}x",
                "2.98x / 1.15x",
            ]
        )
    for f, v in rep["periphery_savings"].items():
        rows.append(
            [
                f"area / energy saved, shared periphery + unipolar ({f})",
                f"{_pct(v['area_fraction_saved'])} / {_pct(v['energy_fraction_saved'])}",
                "up to 80 % / 45 %",
            ]
        )
    c = rep["activation_cdf"]["headline"]
    rows.append(
        [
            "activations in 2 fewer bits (W4A3) / 4 fewer bits (W8A8)",
            f"{_pct(c['W4A3']['fraction'])} / {_pct(c['W8A8']['fraction'])}",
            "> 99 % / > 97 %",
        ]
    )
    rows.append(["best activation clip bound", f"{rep['clip_bound']['best_hi']:g}", "2"])
    return rows


def _compute(t: dict[str, Any]) -> str:
    """The tasks' summed compute time (reports without it: nothing)."""
    if not t.get("task_compute_s"):
        return ""
    return (
        f"; the tasks' own compute time, summed over this run and any earlier run whose "
        f"results came from the cache, is {t['task_compute_s'] / 3600:.1f} worker-hours"
    )


def render(rep: Report, figures: list[str]) -> str:
    """The whole ``report.md`` text."""
    p, lib = rep["plan"], rep["library"]
    t = rep["timing"]
    head = [
        "# cosim design-space study",
        "",
        f"Card **{rep['card']['card']['name']}** (physics hash `{rep['card_hash'][:12]}`), "
        f"surrogate library `{lib['path']}` ({'quick' if lib.get('quick') else 'full'} "
        f"characterization, crossbar validated at {lib['validated_array']}). Main "
        f"experiments: {_net(rep)}; MLP experiments: the MLP on {p['mlp_dataset']}. "
        f"{'Quick' if p['quick'] else 'Full'} study, generated by `{rep['command']}` in "
        f"{t['total_s'] / 60:.1f} min ({t['tasks_run']} tasks run, {t['tasks_cached']} from "
        f"the cache, {t['experiments_cached']} of {t['experiments']} experiments from the "
        f"cache){_compute(t)}. Method notes and every difference from the papers: "
        "docs/report.md in the cosim repository. All numbers are in `report.json`.",
        "",
        "## Headline numbers",
        "",
    ]
    rows = _headlines(rep)
    head.append("| " + " | ".join(rows[0]) + " |")
    head.append("|---|---|---|")
    head += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    head.append("")
    body = []
    for title, section, fn in SECTIONS:
        if section not in rep:
            continue
        text = fn(rep)
        if text:
            body += [f"## {title}", "", text]
    missing = [f for f in figures if f"]({f})" not in "\n".join(body)]
    if missing:  # pragma: no cover - every drawn figure has a section
        raise AssertionError(f"figures without a section: {missing}")
    return "\n".join(head + body) + "\n"
