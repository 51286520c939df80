"""Whether each experiment reproduces the paper: a verdict decided by a stated rule.

Every verdict is a pure function of the ``report.json`` sections and the published values in
:mod:`cosim.report.references`, so a reader can recompute it. The words:

* **reproduced** — every published quantity the section compares passes its rule;
* **partly reproduced** — some pass, or the direction holds but not the size, or the
  difference that would decide it is smaller than the run's own spread (not established);
* **not reproduced** — none passes;
* **no published number** — the paper states a trend or a design argument but no number to
  compare with (experiment 8).

The rules (docs/report.md, "Verdicts", states them in words):

* a published **value** passes when ours lies within :data:`VALUE_TOL` (relative) of it;
* a published **change** (a gap, a saving, an improvement) passes when ours has its sign and
  lies within a factor :data:`TREND_FACTOR` of its size (the sign alone does not pass);
* a published **direction** with no size (the robustness figures) passes when ours moves
  the same way by at least :data:`DIRECTION_MIN` between the upper and the lower half of
  the precisions (the Monte-Carlo sweeps are noisy below that);
* an accuracy difference below :data:`SEED_FLOOR` on one training seed is not established.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from cosim.report.references import REFERENCES

__all__ = [
    "DIRECTION_MIN",
    "NOT",
    "NO_NUMBER",
    "ONE_BIT_FALL",
    "PARTLY",
    "REPRODUCED",
    "SEED_FLOOR",
    "TREND_FACTOR",
    "VALUE_TOL",
    "accumulation",
    "combine",
    "half_change",
    "headline",
    "judge",
    "robustness_nvw_by_a",
    "trend_verdict",
    "value_verdict",
]

REPRODUCED = "reproduced"
PARTLY = "partly reproduced"
NOT = "not reproduced"
NO_NUMBER = "no published number"

VALUE_TOL = 0.10
TREND_FACTOR = 2.0
DIRECTION_MIN = 0.10
SEED_FLOOR = 0.005  # half an accuracy point: below it, one seed decides nothing

Section = dict[str, Any]
Verdict = dict[str, Any]

_VALUE_RULE = f"published value within {VALUE_TOL * 100:.0f} % (relative)"
_TREND_RULE = f"published change: same sign and size within a factor {TREND_FACTOR:g}"


def _v(verdict: str, rule: str, reason: str, **extra: Any) -> Verdict:
    return {"verdict": verdict, "rule": rule, "reason": reason, **extra}


def value_verdict(ours: float, published: float, tol: float = VALUE_TOL) -> str:
    """Reproduced when ``ours`` lies within ``tol`` (relative) of ``published``."""
    return REPRODUCED if abs(ours - published) <= tol * abs(published) else NOT


def trend_verdict(ours: float, published: float, factor: float = TREND_FACTOR) -> str:
    """A published change (gap, saving, improvement - 1): reproduced when ours has its sign
    and lies within ``factor`` of its size; else not reproduced."""
    if published == 0 or ours == 0 or (ours > 0) != (published > 0):
        return NOT
    ratio = abs(ours / published)
    return REPRODUCED if 1.0 / factor <= ratio <= factor else NOT


def combine(verdicts: list[str]) -> str:
    """All reproduced: reproduced; none passing even partly: not reproduced; else partly."""
    if not verdicts:
        return NO_NUMBER
    if all(v == REPRODUCED for v in verdicts):
        return REPRODUCED
    if all(v == NOT for v in verdicts):
        return NOT
    return PARTLY


def half_change(x: Sequence[int], y: Sequence[float | None]) -> float | None:
    """The mean of ``y`` over the upper half of the precisions ``x`` against the lower
    half's, as a relative change (None: fewer than two points or a zero lower half)."""
    pts = sorted((a, b) for a, b in zip(x, y, strict=True) if b is not None and b == b)
    if len(pts) < 2:
        return None
    half = len(pts) // 2
    lo = sum(b for _, b in pts[:half]) / half
    hi = sum(b for _, b in pts[-half:]) / half
    return None if lo == 0 else hi / lo - 1.0


def _direction(change: float | None) -> str:
    """A published fall with precision (no size given): same way by DIRECTION_MIN."""
    if change is None:
        return NOT
    return REPRODUCED if change <= -DIRECTION_MIN else NOT


def _at(d: Section, key: str, rows: int) -> float | None:
    return d[key][d["rows"].index(rows)] if rows in d.get("rows", []) else None


def _points(x: float) -> str:
    return f"{x * 100:+.2f} points"


# --- one function per experiment ------------------------------------------------------------


ONE_BIT_FALL = 0.05  # "falls steeply at 1 bit": W1A1 at least 5 points below W4A3


def accuracy_grid(grid: Section, details: Section) -> Verdict:
    ref = REFERENCES["accuracy_grid"]
    pub_gap = ref["W4A3"] - ref["float"]
    gap = details["design_point_minus_float"]
    parts = [trend_verdict(gap, pub_gap)]
    named = {"w4a3_minus_float": parts[0]}
    ratio = f"{abs(gap / pub_gap):.1f}x" if pub_gap else "n/a"
    reason = f"W4A3 − float is {_points(gap)}, {ratio} the published {_points(pub_gap)}"
    if "W1A1" in grid and "W4A3" in grid:
        fall = grid["W4A3"] - grid["W1A1"]
        parts.append(REPRODUCED if fall >= ONE_BIT_FALL else NOT)
        named["one_bit_fall"] = parts[-1]
        reason += f"; W1A1 is {fall * 100:.2f} points below W4A3 (published: a steep fall)"
    return _v(
        combine(parts),
        f"the W4A3 − float gap as a {_TREND_RULE}, and W1A1 at least "
        f"{ONE_BIT_FALL * 100:g} points below W4A3; absolute accuracies are on another "
        "dataset and are not compared",
        reason,
        parts=named,
    )


def headline(d: Section) -> Verdict:
    """The converged W4A3 − float gap (paired by seed) against the published -0.26 points:
    reproduced when the published gap lies inside our 95 % interval or our mean passes the
    change rule; partly when our gap has the published sign with an interval that excludes
    zero but another size; else not."""
    from cosim.report.stats import fmt, supported

    ref = REFERENCES["accuracy_grid"]
    pub = ref["W4A3"] - ref["float"]
    iv = d["W4A3"]["minus_float"]
    inside = iv.get("low") is not None and iv["low"] <= pub <= iv["high"]
    narrow = iv.get("half_width") is not None and iv["half_width"] <= SEED_FLOOR
    if inside or trend_verdict(iv["mean"], pub) == REPRODUCED:
        verdict = REPRODUCED if narrow else PARTLY  # a wide interval contains anything
    elif supported(iv) == (1 if pub > 0 else -1):
        verdict = PARTLY
    else:
        verdict = NOT
    return _v(
        verdict,
        f"the W4A3 − float gap of models trained to convergence over {iv['n']} seeds: "
        "reproduced when the published gap lies inside our 95 % interval (paired by seed) or "
        f"our mean passes the {_TREND_RULE}, with an interval no wider than +-"
        f"{SEED_FLOOR * 100:g} point; partly when it is wider, or when the sign is established "
        "but not the size; absolute accuracies are on another dataset and are not compared",
        f"W4A3 − float is {fmt(iv)} points (published {_points(pub)}); float "
        f"{fmt(d['float'], unit=' %')} after {d['epochs']} epochs",
    )


def clip_bound(d: Section) -> Verdict:
    """Fig. 2A: best at hi = 2, both smaller and larger bounds lose. With seeds, each
    comparison is the interval of the per-seed differences (:func:`cosim.report.stats.paired`);
    a single-seed report falls back to :data:`SEED_FLOOR`."""
    from cosim.report.stats import fmt, supported

    best_pub = REFERENCES["clip_bound"]["best_hi"]
    his, acc = list(d["hi"]), list(d["accuracy"])
    seeded = "best_minus" in d and len(d.get("seeds", [])) > 1
    if not seeded:
        return _clip_bound_one_seed(d, best_pub, his, acc)
    rule = (
        f"reproduced when the best hi (mean over {len(d['seeds'])} seeds) is the published "
        f"{best_pub:g} and hi = {his[0]:g} and {his[-1]:g} both lose to it with 95 % intervals "
        f"of the per-seed differences above zero; not reproduced when another hi beats hi = "
        f"{best_pub:g} with an interval above zero; else partly (not established either way)"
    )
    if best_pub not in his:
        return _v(NOT, rule, f"hi = {best_pub:g} was not run")
    ib, ip = his.index(d["best_hi"]), his.index(best_pub)
    diff = d["best_minus"]  # best - each hi, paired by seed
    lose = [supported(diff[0]) > 0, supported(diff[-1]) > 0]
    extremes = (
        f"hi = {his[0]:g} and {his[-1]:g} lose {fmt(diff[0])} and {fmt(diff[-1])} points "
        "against the best"
    )
    if ib == ip:
        verdict = REPRODUCED if all(lose) else PARTLY
        return _v(verdict, rule, f"best hi = {best_pub:g}; " + extremes)
    tie = supported(diff[ip]) == 0
    verdict = PARTLY if tie else NOT
    return _v(
        verdict,
        rule,
        f"best hi = {d['best_hi']:g}, ahead of hi = {best_pub:g} by {fmt(diff[ip])} points "
        f"({'not established' if tie else 'established'}); " + extremes,
    )


def _clip_bound_one_seed(d: Section, best_pub: float, his: list, acc: list) -> Verdict:
    best = max(acc)
    rule = (
        f"reproduced when the best hi is the published {best_pub:g} by at least "
        f"{SEED_FLOOR * 100:g} point (one seed); partly when hi = {best_pub:g} is within that "
        "of the best and the smallest and largest hi both lose more than it; else not"
    )
    if best_pub not in his:
        return _v(NOT, rule, f"hi = {best_pub:g} was not run")
    at_pub = acc[his.index(best_pub)]
    others = [a for h, a in zip(his, acc, strict=True) if h != best_pub]
    lose_lo, lose_hi = best - acc[0], best - acc[-1]
    if d["best_hi"] == best_pub and others and at_pub - max(others) >= SEED_FLOOR:
        return _v(REPRODUCED, rule, f"best hi = {best_pub:g} by {_points(at_pub - max(others))}")
    hump = lose_lo > SEED_FLOOR and lose_hi > SEED_FLOOR
    if best - at_pub < SEED_FLOOR and hump:
        return _v(
            PARTLY,
            rule,
            f"best hi = {d['best_hi']:g}, ahead of hi = {best_pub:g} by "
            f"{(best - at_pub) * 100:.2f} points on one seed (not established); hi = "
            f"{his[0]:g} and {his[-1]:g} lose {lose_lo * 100:.2f} and {lose_hi * 100:.2f} "
            "points, as published",
        )
    return _v(
        NOT,
        rule,
        f"best hi = {d['best_hi']:g}; hi = {best_pub:g} is {(best - at_pub) * 100:.2f} points "
        f"below it; hi = {his[0]:g} and {his[-1]:g} lose {lose_lo * 100:.2f} and "
        f"{lose_hi * 100:.2f} points",
    )


_DIRECTION_RULE = (
    "published direction (no size given): the largest tolerated variation falls with "
    f"precision by at least {DIRECTION_MIN * 100:.0f} % (upper half of the precisions against the "
    "lower half); the size cannot be compared"
)


_SEEDED_DIRECTION_RULE = (
    "published direction (no size given): per seed, the largest tolerated variation's "
    "change between the upper and the lower half of the precisions; reproduced when its "
    f"mean over the seeds falls by at least {DIRECTION_MIN * 100:.0f} % and the 95 % interval "
    "lies below zero; partly when the mean falls that much but the interval contains zero "
    "(not established); else not"
)


def _seeded_direction(seeded: Section | None) -> tuple[str, str] | None:
    """(verdict, note) of a published fall from a series repeated over seeds, or None
    when the series was run on one seed only."""
    from cosim.report.stats import FALL, fmt, supported

    if not seeded or seeded["trend_interval"]["n"] < 2:
        return None
    iv = seeded["trend_interval"]
    if iv["mean"] <= -DIRECTION_MIN:
        verdict = REPRODUCED if supported(iv) < 0 else PARTLY
    else:
        verdict = NOT
    word = {-1: "falls", 1: "rises", 0: "no trend established"}[supported(iv)]
    return verdict, f"{fmt(iv, digits=0, bounds=FALL)} % over {iv['n']} seeds ({word})"


def robustness_nvw(d: Section) -> Verdict:
    n = d["nvw"]
    seeded = _seeded_direction(n.get("seeded"))
    if seeded is not None:
        return _v(
            seeded[0],
            _SEEDED_DIRECTION_RULE,
            f"largest nvw at A{n['a_bits']}, upper half of the weight precisions against the "
            f"lower half: {seeded[1]}",
        )
    change = half_change(n["w_bits"], n["largest"])
    what = "n/a" if change is None else f"{change * 100:+.0f} %"
    return _v(
        _direction(change),
        _DIRECTION_RULE,
        f"direction only: largest nvw at A{n['a_bits']}: upper half of the weight "
        f"precisions {what} against the lower half",
    )


def robustness_nvw_by_a(d: Section) -> Verdict:
    """Fig. 3B: no distinct tendency with activation precision, published with no size.
    With seeds: reproduced when the whole 95 % interval of the per-seed change lies within
    +-DIRECTION_MIN (the absence of a tendency established, not merely a trend not shown:
    -9 +- 189 % over 2 seeds was called reproduced); partly when no trend is supported but
    the interval reaches beyond +-DIRECTION_MIN; not when a trend is supported. One seed:
    within DIRECTION_MIN."""
    from cosim.report.stats import FALL, fmt, supported

    n = d["nvw_by_a"]
    sd = n.get("seeded")
    if sd and sd["trend_interval"]["n"] >= 2:
        iv = sd["trend_interval"]
        small = -DIRECTION_MIN < iv["low"] and iv["high"] < DIRECTION_MIN
        verdict = NOT if supported(iv) != 0 else (REPRODUCED if small else PARTLY)
        return _v(
            verdict,
            "published: no distinct tendency; reproduced when the 95 % interval of the "
            "per-seed change (upper against lower half of the activation precisions) lies "
            f"within ±{DIRECTION_MIN * 100:.0f} %; partly when it contains zero but reaches "
            "beyond (no tendency shown, none excluded); not when a trend is established",
            f"largest nvw at W{n['w_bits']}, upper half of the activation precisions against "
            f"the lower half: {fmt(iv, digits=0, bounds=FALL)} % over {iv['n']} seeds"
            + ("" if small or verdict == NOT else " (too wide to exclude a tendency)"),
        )
    change = half_change(n["a_bits"], n["largest"])
    what = "n/a" if change is None else f"{change * 100:+.0f} %"
    ok = change is not None and abs(change) < DIRECTION_MIN
    return _v(
        REPRODUCED if ok else NOT,
        f"published: no distinct tendency; ours within {DIRECTION_MIN * 100:.0f} % between "
        "the upper and the lower half of the activation precisions",
        f"largest nvw at W{n['w_bits']}: upper half of the activation precisions {what} "
        "against the lower half",
    )


def robustness_nva(d: Section) -> Verdict:
    n = d["nva"]
    notes = []
    for w in n["w_bits"]:
        change = half_change(n["a_bits"], n["largest"][f"W{w}"])
        notes.append(f"W{w} " + ("n/a" if change is None else f"{change * 100:+.0f} %"))
    seeded = _seeded_direction(n.get("seeded"))
    if seeded is not None:
        return _v(
            seeded[0],
            _SEEDED_DIRECTION_RULE + f"; judged at W{n['seeded_w_bits']}, the weight precision "
            "repeated over seeds (the others, one seed each, are shown but not judged)",
            f"largest nva, upper half of the activation precisions against the lower half: "
            f"W{n['seeded_w_bits']} {seeded[1]}; one seed: "
            + ", ".join(notes)
            + " (published: falls)",
        )
    parts = [_direction(half_change(n["a_bits"], n["largest"][f"W{w}"])) for w in n["w_bits"]]
    return _v(
        combine(parts),
        _DIRECTION_RULE + "; one verdict per weight precision, combined",
        "largest nva, upper half of the activation precisions against the lower half: "
        + ", ".join(notes)
        + " (published: falls)",
    )


def activation_cdf(d: Section) -> Verdict:
    ref = REFERENCES["activation_cdf"]
    parts, notes = [], []
    for p in ("W4A3", "W8A8"):
        if p not in d.get("headline", {}):
            continue
        ours, pub = d["headline"][p]["fraction"], ref[p]["fraction"]
        parts.append(REPRODUCED if ours >= pub * (1 - VALUE_TOL) else NOT)
        notes.append(f"{p} {ours * 100:.1f} % (published > {pub * 100:.0f} %)")
    return _v(
        combine(parts) if parts else NOT,
        f"published lower bound: ours at least {(1 - VALUE_TOL) * 100:.0f} % of it",
        "activations in fewer bits: " + ", ".join(notes),
    )


def _at_128(
    d: Section,
    key: str,
    ref: dict[str, float],
    change: Callable[[float], float],
    fmt: Callable[[float, float], str],
) -> tuple[list[str], list[str]]:
    """Per precision of ``ref``: our ``key`` at 128 rows against the published value — the
    value rule, else ``change`` of both as a published change; and one note each."""
    parts, notes = [], []
    for p, pub in ref.items():
        ours = _at(d[p], key, 128) if p in d else None
        if ours is None:
            continue
        v = value_verdict(ours, pub)
        if v == NOT:
            v = trend_verdict(change(ours), change(pub))
        parts.append(v)
        notes.append(f"{p} {fmt(ours, pub)}")
    return parts, notes


def adc_energy_vs_rows(d: Section) -> Verdict:
    parts, notes = _at_128(  # else the saving as a change
        d,
        "normalized_adc_energy",
        REFERENCES["adc_energy_vs_rows"]["normalized_adc_energy_at_128"],
        lambda x: 1.0 - x,
        lambda ours, pub: f"{ours * 100:.1f} % (published {pub * 100:.0f} %)",
    )
    return _v(
        combine(parts) if parts else NOT,
        f"ADC energy at 128 rows: {_VALUE_RULE}, else the saving as a {_TREND_RULE}",
        "ADC energy with the sense skip at 128 rows: " + ", ".join(notes),
    )


def mac_efficiency(d: Section) -> Verdict:
    parts, notes = _at_128(  # else the gain over 1x as a change
        d,
        "improvement",
        REFERENCES["mac_efficiency"]["improvement_at_128"],
        lambda x: x - 1.0,
        lambda ours, pub: f"{ours:.3f}x (published {pub:g}x)",
    )
    return _v(
        combine(parts) if parts else NOT,
        f"improvement at 128 x 128: {_VALUE_RULE}, else the gain over 1x as a {_TREND_RULE}",
        "MAC efficiency: " + ", ".join(notes),
    )


def sparser_activations(d: Section) -> Verdict:
    """Issue 10 item 4: the sparsest candidate's fraction of codes in fewer bits against the
    published lower bound (the rule of :func:`activation_cdf`), and its ADC energy and MAC
    efficiency at 128 rows against the published values (the rules of experiment 5)."""
    cdf_ref = REFERENCES["activation_cdf"]
    adc_ref = REFERENCES["adc_energy_vs_rows"]["normalized_adc_energy_at_128"]
    mac_ref = REFERENCES["mac_efficiency"]["improvement_at_128"]
    parts, notes = [], []
    for p in ("W4A3", "W8A8"):
        if p not in d:
            continue
        best = d[p]["sparsest"]
        m = d[p]["models"][best]
        frac, pub = m["fraction_fewer_bits"], cdf_ref[p]["fraction"]
        parts.append(REPRODUCED if frac >= pub * (1 - VALUE_TOL) else NOT)
        note = f"{p} sparsest {best}: {frac * 100:.1f} % in fewer bits (published > {pub:.0%})"
        if "normalized_adc_energy" in m:
            e, g = m["normalized_adc_energy"], m["mac_improvement"]
            ve = value_verdict(e, adc_ref[p])
            parts.append(ve if ve != NOT else trend_verdict(1.0 - e, 1.0 - adc_ref[p]))
            vg = value_verdict(g, mac_ref[p])
            parts.append(vg if vg != NOT else trend_verdict(g - 1.0, mac_ref[p] - 1.0))
            note += (
                f", ADC energy {e * 100:.1f} % (published {adc_ref[p]:.0%}), MAC "
                f"{g:.3f}x (published {mac_ref[p]:g}x)"
            )
        notes.append(note)
    return _v(
        combine(parts) if parts else NOT,
        "the sparsest candidate: fewer-bit fraction at least "
        f"{(1 - VALUE_TOL) * 100:.0f} % of the published bound; ADC energy and MAC efficiency "
        "at 128 rows as experiments 5a/5b",
        "; ".join(notes),
    )


def periphery_model(v: Section) -> Verdict:
    """One network of experiment 6: area and energy saved against the published 'up to'
    figures (:data:`VALUE_TOL`, relative), against a traditional design whose per-layer
    tuned periphery is costed; the HAR stand-in (``float_accuracy`` present) also its
    accuracy gap to float against the published 92.91 % vs 95 % (:data:`TREND_FACTOR`)."""
    ref = REFERENCES["periphery_savings"]
    a, e = v["area_fraction_saved"], v["energy_fraction_saved"]
    pa, pe = ref["area_fraction_saved"], ref["energy_fraction_saved"]
    parts = [value_verdict(a, pa), value_verdict(e, pe)]
    rule = f"area and energy saved: each {_VALUE_RULE} of the published 'up to' figure"
    reason = (
        f"{a * 100:.1f} % area (published up to {pa * 100:.0f} %), {e * 100:.1f} % energy "
        f"(up to {pe * 100:.0f} %)"
    )
    if "layer_tuning" in v:
        reason += (
            f", the traditional design's per-layer tuning costed "
            f"({(v.get('energy_fraction_saved_untuned') or 0.0) * 100:.1f} % energy saved "
            "without it)"
        )
    if v.get("unipolar_scope") == "conv":
        reason += (
            f", {v.get('unipolar_conv_filters', 0)} of {v.get('conv_filters', 0)} convolution "
            "filters unipolar"
        )
    sd = v.get("seeded")
    if sd and len(sd["seeds"]) > 1:
        from cosim.report.stats import fmt, supported

        g = sd["shared_minus_traditional"]
        word = {1: "global better", -1: "per-layer better", 0: "no difference established"}
        reason += (
            f"; accuracy global − per-layer {fmt(g)} points over {len(sd['seeds'])} seeds "
            f"({word[supported(g)]}), proposed − shared {fmt(sd['proposed_minus_shared'])} points"
        )
    if v.get("float_accuracy") is not None:
        har = ref["har"]
        gap = v["accuracy"]["proposed"] - v["float_accuracy"]
        pgap = har["accuracy"] - har["float_accuracy"]
        parts.append(trend_verdict(gap, pgap))
        rule += f"; accuracy gap to float: {_TREND_RULE}"
        reason += (
            f"; {v['precision']} all-unipolar {v['accuracy']['proposed'] * 100:.2f} % vs float "
            f"{v['float_accuracy'] * 100:.2f} % ({_points(gap)}; published "
            f"{har['accuracy'] * 100:.2f} % vs {har['float_accuracy'] * 100:.0f} %, "
            f"{_points(pgap)})"
        )
    return _v(combine(parts), rule, reason)


def periphery_savings(d: Section) -> Verdict:
    models = {f: periphery_model(v) for f, v in d.items()}
    return _v(
        combine([m["verdict"] for m in models.values()]),
        "each network's area and energy saved (and the HAR stand-in's accuracy gap to float) "
        "against the published figures, combined",
        "; ".join(f"{f}: {m['verdict']} ({m['reason']})" for f, m in models.items()),
        models=models,
    )


def unipolar_tradeoff(d: Section) -> Verdict:
    target = REFERENCES["unipolar_tradeoff"]["competitive_fraction"]
    fr, acc = list(d["fractions"]), list(d["accuracy"])
    rule = (
        f"at the unipolar fraction nearest {target:g}, accuracy within 1 point of all-bipolar "
        f"(competitive), and all unipolar losing more than {SEED_FLOOR * 100:g} point"
    )
    if 0.0 not in fr or len(fr) < 2:
        return _v(NOT, rule, "no all-bipolar point")
    sd = d.get("seeded")
    if sd and len(sd["seeds"]) > 1 and 0.0 in sd["fractions"] and 1.0 in sd["fractions"]:
        return _unipolar_seeded(d, sd, target)
    base = acc[fr.index(0.0)]
    i = min(range(len(fr)), key=lambda k: (abs(fr[k] - target), fr[k]))
    loss, loss_all = base - acc[i], base - acc[-1]
    parts = [REPRODUCED if loss <= 0.01 else NOT]
    parts.append(REPRODUCED if fr[-1] == 1.0 and loss_all > SEED_FLOOR else NOT)
    return _v(
        combine(parts),
        rule,
        f"at {fr[i]:g} unipolar {_points(-loss)} against all-bipolar, all unipolar "
        f"{_points(-loss_all)}; "
        + (
            "fraction counted over the convolution filters, as the paper's (a CIFAR-10 CNN)"
            if d.get("unipolar_scope") == "conv"
            else "fraction counted over all hidden filters (the paper: convolution filters "
            "of a CIFAR-10 CNN)"
        ),
    )


def _unipolar_seeded(d: Section, sd: Section, target: float) -> Verdict:
    """Fig. 8 over seeds: competitive at the fraction nearest ``target`` (mean loss against
    all-bipolar within 1 point, paired by seed) and all unipolar losing accuracy (interval
    of the loss above zero)."""
    from cosim.report.stats import fmt, supported

    fr = sd["fractions"]
    i = min(range(len(fr)), key=lambda k: (abs(fr[k] - target), fr[k]))
    at, full = sd["minus_bipolar"][i], sd["minus_bipolar"][fr.index(1.0)]
    # competitive: mean loss within 1 point; not: a loss beyond 1 point established
    if -at["mean"] <= 0.01:
        parts = [REPRODUCED]
    else:
        parts = [NOT if at["high"] is not None and at["high"] < -0.01 else PARTLY]
    # all unipolar loses: established; not: established gain; else not established
    parts.append({-1: REPRODUCED, 1: NOT, 0: PARTLY}[supported(full)])
    scope = (
        "fraction counted over the convolution filters, as the paper's (a CIFAR-10 CNN)"
        if d.get("unipolar_scope") == "conv"
        else "fraction counted over all hidden filters (the paper: convolution filters of a "
        "CIFAR-10 CNN)"
    )
    return _v(
        combine(parts),
        f"over {len(sd['seeds'])} seeds, paired by seed: at the unipolar fraction nearest "
        f"{target:g} the mean accuracy within 1 point of all-bipolar (competitive; not "
        "reproduced when a larger loss is established, partly when not established), and all "
        "unipolar losing accuracy with a 95 % interval below zero (partly when not established)",
        f"at {fr[i]:g} unipolar {fmt(at)} points against all-bipolar, all unipolar "
        f"{fmt(full)} points; {scope}",
    )


def adc_architectures(d: Section) -> Verdict:
    notes = []
    for name, a in d.get("architectures", {}).items():
        e = a["energy_per_conversion_j"]
        notes.append(
            f"{name} {e[0] * 1e15:.0f} to {e[-1] * 1e15:.0f} fJ per conversion from "
            f"A{d['bits'][0]} to A{d['bits'][-1]}"
        )
    return _v(
        NO_NUMBER,
        "the paper cites the ADC survey's trend, not a circuit: nothing to compare",
        "; ".join(notes) if notes else "no architecture run",
    )


def accumulation(d: Section) -> Verdict:
    """Bao et al.'s n = 128 points (normalized ADC energy, MAC efficiency) on the model's
    codes: value rule on both, per precision; the reason names the sparsity and ADC share
    they need (:mod:`cosim.report.experiments.accumulation`)."""
    if "skipped" in d:
        return _v(NO_NUMBER, _VALUE_RULE, d["skipped"])
    verdicts, why = [], []
    for prec in ("W4A3", "W8A8"):
        r = d[prec]
        at = r["model_at_128"]
        pub = r["published"]
        verdicts.append(value_verdict(at["normalized_adc_energy"], pub["normalized_adc_energy"]))
        verdicts.append(value_verdict(at["mac_efficiency"], pub["mac_efficiency"]))
        z = r["required"]["zero_fraction"]
        need = "unreachable at any sparsity" if z is None else f"needs {z * 100:.1f} % zeros"
        why.append(
            f"{prec}: {at['normalized_adc_energy']:.2f} / {at['mac_efficiency']:.2f}x against "
            f"{pub['normalized_adc_energy']:.2f} / {pub['mac_efficiency']:.2f}x ({need})"
        )
    return _v(combine(verdicts), _VALUE_RULE, "; ".join(why))


def judge(rep: Section) -> dict[str, Verdict]:
    """Every verdict the report's sections allow, keyed like :data:`REFERENCES`."""
    out: dict[str, Verdict] = {}
    if "headline" in rep:
        out["headline"] = headline(rep["headline"])
    if "accuracy_grid" in rep and "accuracy_grid_details" in rep:
        out["accuracy_grid"] = accuracy_grid(rep["accuracy_grid"], rep["accuracy_grid_details"])
    if "clip_bound" in rep:
        out["clip_bound"] = clip_bound(rep["clip_bound"])
    if "robustness" in rep:
        out["robustness_nvw"] = robustness_nvw(rep["robustness"])
        out["robustness_nva"] = robustness_nva(rep["robustness"])
        if "nvw_by_a" in rep["robustness"]:
            out["robustness_nvw_by_a"] = robustness_nvw_by_a(rep["robustness"])
    if "activation_cdf" in rep:
        out["activation_cdf"] = activation_cdf(rep["activation_cdf"])
    if "adc_energy_vs_rows" in rep:
        out["adc_energy_vs_rows"] = adc_energy_vs_rows(rep["adc_energy_vs_rows"])
    if "mac_efficiency" in rep:
        out["mac_efficiency"] = mac_efficiency(rep["mac_efficiency"])
    if "sparser_activations" in rep:
        out["sparser_activations"] = sparser_activations(rep["sparser_activations"])
    if "periphery_savings" in rep:
        out["periphery_savings"] = periphery_savings(rep["periphery_savings"])
    if "unipolar_tradeoff" in rep:
        out["unipolar_tradeoff"] = unipolar_tradeoff(rep["unipolar_tradeoff"])
    if "adc_architectures" in rep:
        out["adc_architectures"] = adc_architectures(rep["adc_architectures"])
    if "accumulation" in rep:
        out["accumulation"] = accumulation(rep["accumulation"])
    return out
