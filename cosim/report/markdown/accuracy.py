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
    why = (
        f"{net(rep)} ({training(rep, d['epochs'])}) instead of LeNet-5 on MNIST trained "
        f"for 300 iteration cycles; {data_note(rep, d['float_accuracy'])}; the short "
        "training lowers every cell, and global quantization shares one set of ranges "
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
    d = rep["clip_bound"]
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
    return block(fig, pub(key), ours, why, rows)


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
        "one training seed, short training.",
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
    ours = "largest nva per activation precision — " + "; ".join(parts) + "."
    why = (
        "one comparison-level table per ADC instance (shared by the card's columns per ADC), "
        "Bao et al. per weight filter; σ = nva·V_ref on every comparison level of the SAR "
        "search (the code errs by about that voltage at any resolution); "
        f"{d['criterion']}; {net(rep)}."
    )
    return block("fig3b_robustness_nva.png", pub("robustness_nva"), ours, why, rows)
