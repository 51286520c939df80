"""The accuracy sections of ``report.md``: the precision grid (1), the clip bound (2),
robustness to weight and converter variation (3a, 3b)."""

from __future__ import annotations

from cosim.report.markdown.common import (
    Report,
    block,
    data_note,
    net,
    pct,
    pub,
    training,
)
from cosim.report.references import REFERENCES
from cosim.report.verdicts import half_change


def headline(rep: Report) -> str:
    """Section 0: float, W4A3 and W8A8 trained to convergence over the seeds."""
    from cosim.report.stats import fmt

    h, ref = rep["headline"], REFERENCES["accuracy_grid"]
    n = len(h["seeds"])
    dp = h["W4A3"]
    ours = (
        f"{net(rep)} trained for {h['epochs']} epochs, {n} seeds (mean ± 95 % interval over "
        f"the seeds): float {fmt(h['float'], unit=' %')}, W4A3 {fmt(dp['software'], unit=' %')} "
        f"(W4A3 − float {fmt(dp['minus_float'])} points, paired by seed); on the chip "
        f"({h['chips']} chips, every non-ideality on, {h['chip_samples']} test samples) W4A3 "
        f"{fmt(dp['chip'], unit=' %')}."
    )
    why = (
        f"{net(rep)} ({training(rep, h['epochs'])}, {_length(rep, h)}) instead of "
        f"LeNet-5 on MNIST trained for 300 iteration cycles; {data_note(rep, h['float']['mean'])}; "
        "global quantization shares one set of ranges across all layers. The grid of "
        "section 1 uses shorter training for the whole 8 x 8 sweep."
    )
    rows = [["", "software (integer)", "on the chip", "− float", "published (LeNet-5, MNIST)"]]
    rows.append(["float", fmt(h["float"], unit=" %"), "", "", pct(ref["float"], 2)])
    for name, published in (("W4A3", pct(ref["W4A3"], 2)), ("W8A8", "saturated")):
        if name in h:
            v = h[name]
            rows.append(
                [
                    name,
                    fmt(v["software"], unit=" %"),
                    fmt(v["chip"], unit=" %"),
                    f"{fmt(v['minus_float'])} points",
                    published,
                ]
            )
    rows.append(["W4A3 − float, published", "", "", f"{(ref['W4A3'] - ref['float']) * 100:+.2f} "
                 "points", ""])  # fmt: skip
    return block("fig0_headline.png", pub("accuracy_grid"), ours, why, rows)


def _length(rep: Report, h: dict) -> str:
    """The headline's training length against ``cosim train``'s default for the network,
    and how much the float model still gained in its last epoch (the evidence on
    convergence: the quick study shortens the training)."""
    from cosim.train.command import DEFAULTS

    default = DEFAULTS.get(h.get("arch", rep["plan"]["arch"]), (None,))[0]
    text = (
        "the trainer's default length"
        if h["epochs"] == default
        else f"shortened from the trainer's default {default} epochs"
        if default is not None
        else "not the trainer's default length"
    )
    curves = [c for c in h.get("float_epoch_accuracy", []) if len(c) >= 2]
    if curves:
        gain = sum(c[-1] - c[-2] for c in curves) / len(curves)
        text += (
            f"; the float model's test accuracy changed {gain * 100:+.2f} points in its last epoch"
        )
        text += f" (mean over {len(curves)} seeds)" if len(curves) > 1 else ""
    return text


def grid(rep: Report) -> str:
    d, ref = rep["accuracy_grid_details"], REFERENCES["accuracy_grid"]
    g = rep["accuracy_grid"]
    ours = (
        f"{net(rep)}: W4A3 {pct(g['W4A3'], 2)} vs {pct(d['float_accuracy'], 2)} float "
        f"({(d['design_point_minus_float']) * 100:+.2f} points); best cell {d['best']['name']} "
        f"{pct(d['best']['accuracy'], 2)}. Weights above the card's "
        f"{d['device_level_bits']}-bit device levels still train (this is a training "
        "experiment); the hardware experiments run them on an 8-bit-level what-if card."
    )
    cells = len(d["w_bits"]) * len(d["a_bits"])
    converged = (
        " (the converged float, W4A3 and W8A8 over seeds are in section 0)"
        if "headline" in rep
        else ""
    )
    why = (
        f"{net(rep)} ({training(rep, d['epochs'])}, one seed) instead of LeNet-5 on MNIST "
        f"trained for 300 iteration cycles; {data_note(rep, d['float_accuracy'])}; this grid "
        f"is a relative comparison of the {cells} precisions with short training, which "
        f"lowers every cell{converged}, and global quantization shares one set of ranges "
        "across all layers."
    )
    rows = [["", "ours", "published (LeNet-5, MNIST)"]]
    rows.append(["W4A3", pct(g["W4A3"], 2), pct(ref["W4A3"], 2)])
    rows.append(["float", pct(d["float_accuracy"], 2), pct(ref["float"], 2)])
    rows.append(
        [
            "W4A3 − float",
            f"{d['design_point_minus_float'] * 100:+.2f} points",
            f"{(ref['W4A3'] - ref['float']) * 100:+.2f} points",
        ]
    )
    if "W8A8" in g:
        rows.append(["W8A8", pct(g["W8A8"], 2), "saturated (≥ 6-bit weights best)"])
    if "W1A1" in g:
        rows.append(["W1A1", pct(g["W1A1"], 2), "large decline at 1 bit"])
    return block("fig1_accuracy_grid.png", pub("accuracy_grid"), ours, why, rows)


def clip(rep: Report) -> str:
    from cosim.report.stats import fmt

    d = rep["clip_bound"]
    seeded = "accuracy_interval" in d
    if not seeded:  # a report from before the clip bound ran Bao et al.'s recipe over seeds
        return _clip_one_seed(rep, d)
    n = len(d["seeds"])
    ib = d["hi"].index(d["best_hi"])
    ours = (
        f"best hi = {d['best_hi']:g} ({fmt(d['accuracy_interval'][ib], unit=' %')}, mean ± 95 % "
        f"interval over {n} seeds); against the best, paired by seed: "
        + ", ".join(
            f"hi = {h:g} {fmt(m)} points"
            for h, m in zip(d["hi"], d["best_minus"], strict=True)
            if h != d["best_hi"]
        )
        + "."
    )
    fields = d.get("recipe_fields", {})
    why = (
        "trained with Bao et al.'s fixed-range recipe (`--recipe bao`: inputs in [0, 1], hidden "
        f"activations clipped at hi, weights at ±{fields.get('w_max', 0.25):g}, SGD lr "
        f"{fields.get('lr', 0.01):g}, batch {fields.get('batch_size', 200)}), so hi is a real "
        "clipping level as in the paper (cosim's default global scheme shares the activation "
        "range with the input DAC and does not depend on hi); momentum 0.9 and a cosine "
        f"schedule, which the paper does not state; {d['epochs']} epochs instead of 300 "
        f"cycles; {net(rep)} instead of MNIST."
    )
    rows = [
        ["hi", *[f"{h:g}" for h in d["hi"]]],
        [f"accuracy ({n} seeds)", *[fmt(iv, unit=" %") for iv in d["accuracy_interval"]]],
        ["best − this hi (points)", *[fmt(m) if m["mean"] else "" for m in d["best_minus"]]],
    ]
    return block("fig2_clip_bound.png", pub("clip_bound"), ours, why, rows)


def _clip_one_seed(rep: Report, d: dict) -> str:
    ours = (
        f"best hi = {d['best_hi']:g} ({pct(d['best_accuracy'], 2)}); the accuracies over hi = "
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
        ["accuracy", *[pct(a, 2) for a in d["accuracy"]]],
    ]
    rows.append(["final w_max", *[f"{w:.3g}" for w in d["w_max"]]])
    return block("fig2_clip_bound.png", pub("clip_bound"), ours, why, rows)


def _fmt_largest(v: float, cen: bool) -> str:
    return f"≥ {v:g}" if cen else f"{v:.3g}"


def _nvw_block(
    rep: Report, n: dict, word: str, fixed: str, fig: str, key: str, published: str, tail: str
) -> str:
    """A largest-``nvw`` section over the ``word`` ("weight" or "activation") precisions of
    ``n`` at the ``fixed`` other one; ``published``: the paper's direction (:func:`_trend`);
    ``tail``: the end of the "why" line."""
    d = rep["robustness"]
    xs = n["w_bits"] if word == "weight" else n["a_bits"]
    letter = word[0].upper()
    pairs = [_fmt_largest(v, c) for v, c in zip(n["largest"], n["censored"], strict=True)]
    trend = _trend(xs, n["largest"], published=published)
    ours = (
        f"largest nvw at {fixed} by {word} bits: "
        + ", ".join(f"{letter}{x}: {s}" for x, s in zip(xs, pairs, strict=True))
        + f" ({trend})."
    )
    why = (
        f"criterion: {d['criterion']} (Bao et al.: above 90 % absolute on MNIST); "
        f"{d['samples']} test samples of {net(rep)}; σ = nvw·(G_max − G_min) on every device "
        "of the differential pair; " + tail
    )
    rows = [[f"{word} bits", *map(str, xs)], ["largest nvw", *pairs]]
    rows.append(
        ["noiseless accuracy", *[pct(c["reference_accuracy"]) for c in n["curves"].values()]]
    )
    sd = n.get("seeded")
    if sd and sd["trend_interval"]["n"] > 1:
        rows.append(_seeded_row(sd))
        ours += f" Over {len(sd['seeds'])} seeds: {_seeded_trend(sd)}."
    return block(fig, pub(key), ours, why, rows)


def _seeded_row(sd: dict) -> list[str]:
    """The largest variation's mean ± 95 % interval over the seeds, per precision."""
    from cosim.report.stats import fmt

    return [
        f"largest, {len(sd['seeds'])} seeds",
        *[fmt(iv, scale=1.0, digits=3) for iv in sd["largest_interval"]],
    ]


def _seeded_trend(sd: dict) -> str:
    from cosim.report.stats import FALL, fmt, supported

    iv = sd["trend_interval"]
    word = {-1: "falls", 1: "rises", 0: "no trend established"}[supported(iv)]
    return (
        f"upper half of the precisions {fmt(iv, digits=0, bounds=FALL)} % against the lower half "
        f"(95 % interval of the per-seed change: {word})"
    )


def nvw(rep: Report) -> str:
    n = rep["robustness"]["nvw"]
    lv = rep["robustness"]["what_if_level_bits_8_for_w_bits"]
    levels = f"W {', '.join(map(str, lv))} run on a what-if card with 8-bit device levels; "
    return _nvw_block(
        rep,
        n,
        "weight",
        f"A{n['a_bits']}",
        "fig3a_robustness_nvw.png",
        "robustness_nvw",
        "falls",
        (levels if lv else "") + "short training.",
    )


def nvw_by_a(rep: Report) -> str:
    if "nvw_by_a" not in rep["robustness"]:  # a report from before Fig. 3B was run
        return ""
    n = rep["robustness"]["nvw_by_a"]
    return _nvw_block(
        rep,
        n,
        "activation",
        f"W{n['w_bits']}",
        "fig3c_robustness_nvw_by_a.png",
        "robustness_nvw_by_a",
        "none",
        "short training.",
    )


def _trend(x: list[int], y: list[float], published: str = "falls") -> str:
    """How ``y`` follows the precision ``x``: the mean over the upper half of the
    precisions against the lower half's; within 10 % either way counts as no clear trend
    (the Monte-Carlo sweeps are noisy at that level). ``published``: the paper's direction,
    ``"falls"`` or ``"none"`` (no distinct tendency), for the comparison's words."""
    if sum(1 for b in y if b is not None and b == b) < 2:
        return "one point"
    rel = half_change(x, y)  # the verdicts' own measure of the same halves
    if rel is None:
        return "no clear trend"
    what = f"upper half of the precisions {rel * 100:+.0f} % against the lower half"
    found = "falls" if rel <= -0.1 else "rises" if rel >= 0.1 else "none"
    said = "as published" if found == published else "unlike the paper"
    if found == "none":
        return f"no clear trend ({what}), {said}"
    return f"{found[:-1]}s with precision ({what}), {said}"


def nva(rep: Report) -> str:
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
    ours = "largest nva per activation precision (seed 0) — " + "; ".join(parts) + "."
    sd = n.get("seeded")
    if sd and sd["trend_interval"]["n"] > 1:
        row = _seeded_row(sd)
        rows.append([f"W{n['seeded_w_bits']}, {row[0].split(', ')[1]}", *row[1:]])
        ours += f" W{n['seeded_w_bits']} over {len(sd['seeds'])} seeds: {_seeded_trend(sd)}."
    why = (
        "one comparison-level table per ADC instance (shared by the card's columns per ADC), "
        "Bao et al. per weight filter; σ = nva·V_ref on every comparison level of the SAR "
        "search (the code errs by about that voltage at any resolution); "
        f"{d['criterion']}; {net(rep)}."
    )
    return block("fig3b_robustness_nva.png", pub("robustness_nva"), ours, why, rows)
