"""``report.md``: headline table, then each figure with the published value beside it.

Every figure is followed by four lines: **Published** (the paper's number and where it is),
**Ours** (the same quantity from this study), **Why ours differs** (dataset, card, epochs,
method) and **Verdict** (reproduced, partly or not, by the rule of
:mod:`cosim.report.verdicts`, with the measured reason), then a short table. The headline
table has a verdict column. docs/report.md has the longer method notes and the rules.

One module per family of sections, as in :mod:`cosim.report.experiments`:
:mod:`~cosim.report.markdown.accuracy` (1-3), :mod:`~cosim.report.markdown.sparsity` (4-5),
:mod:`~cosim.report.markdown.periphery` (6-7), :mod:`~cosim.report.markdown.adc` (8),
written with the helpers of :mod:`~cosim.report.markdown.common`; here the headline table
and :func:`render`.
"""

from __future__ import annotations

from typing import Any

from cosim.report.markdown.accumulation import accumulation
from cosim.report.markdown.accuracy import clip, grid, headline, nva, nvw, nvw_by_a
from cosim.report.markdown.adc import adc_architectures
from cosim.report.markdown.common import Report, at, net, pct
from cosim.report.markdown.periphery import periphery, unipolar
from cosim.report.markdown.sparser import sparser
from cosim.report.markdown.sparsity import adc, cdf, mac
from cosim.report.references import REFERENCES
from cosim.report.verdicts import judge, trend_verdict

__all__ = ["SECTIONS", "Report", "headlines", "render"]


# (title, report.json section, writer, verdict key)
SECTIONS = (
    ("0. Headline accuracy over seeds", "headline", headline, "headline"),
    (
        "1. Accuracy over weight and activation precision (short training)",
        "accuracy_grid",
        grid,
        "accuracy_grid",
    ),
    ("2. Accuracy versus the activation clip bound", "clip_bound", clip, "clip_bound"),
    ("3a. Robustness to weight variation (nvw)", "robustness", nvw, "robustness_nvw"),
    ("3b. Robustness to converter variation (nva)", "robustness", nva, "robustness_nva"),
    (
        "3c. Robustness to weight variation against activation precision",
        "robustness",
        nvw_by_a,
        "robustness_nvw_by_a",
    ),
    ("4. Distributions of the activation codes", "activation_cdf", cdf, "activation_cdf"),
    (
        "5a. Sparsity-aware ADC: energy versus array rows",
        "adc_energy_vs_rows",
        adc,
        "adc_energy_vs_rows",
    ),
    (
        "5b. Sparsity-aware ADC: MAC-unit energy efficiency",
        "mac_efficiency",
        mac,
        "mac_efficiency",
    ),
    (
        "5c. Sparsity-aware ADC on the accumulation axis",
        "accumulation",
        accumulation,
        "accumulation",
    ),
    ("5d. Sparser activations", "sparser_activations", sparser, "sparser_activations"),
    (
        "6. Shared periphery and unipolar weights",
        "periphery_savings",
        periphery,
        "periphery_savings",
    ),
    (
        "7. Accuracy versus the fraction of unipolar filters",
        "unipolar_tradeoff",
        unipolar,
        "unipolar_tradeoff",
    ),
    (
        "8. ADC architectures: SAR versus flash",
        "adc_architectures",
        adc_architectures,
        "adc_architectures",
    ),
)


def _verdicts(rep: Report) -> dict[str, Any]:
    """The report's verdicts (older report.json files without them: judged now)."""
    return rep.get("verdicts") or judge(rep)


def _word(v: dict[str, Any] | None) -> str:
    return v["verdict"] if v else "n/a"


def with_verdict(text: str, v: dict[str, Any] | None) -> str:
    """``text`` with a **Verdict** paragraph after its **Why ours differs** paragraph."""
    if not v:
        return text
    lines = text.split("\n")
    i = next(k for k, line in enumerate(lines) if line.startswith("**Why ours differs:**"))
    line = f"**Verdict:** {v['verdict']} — {v['reason']} (rule: {v['rule']})."
    return "\n".join([*lines[: i + 1], "", line, *lines[i + 1 :]])


def headlines(rep: Report) -> list[list[str]]:
    from cosim.report.stats import FALL, fmt

    rows = [["quantity", "ours", "published", "verdict"]]
    ver = _verdicts(rep)
    h = rep.get("headline")
    if h is not None:
        n = len(h["seeds"])
        rows.append(
            [
                f"W4A3 vs float ({net(rep)}, {h['epochs']} epochs, {n} seeds, 95 % intervals)",
                f"{fmt(h['W4A3']['software'], unit=' %')} vs {fmt(h['float'], unit=' %')} "
                f"(gap {fmt(h['W4A3']['minus_float'])} points)",
                "98.82 % vs 99.08 % (gap -0.26 points; LeNet-5, MNIST)",
                f"{_word(ver.get('headline'))} (the gap; other dataset)",
            ]
        )
        rows.append(
            [
                f"W4A3 on the chip ({h['chips']} chips x {n} seeds, every non-ideality)",
                f"{fmt(h['W4A3']['chip'], unit=' %')} (chip − software "
                f"{fmt(h['W4A3']['chip_minus_software'])} points)",
                "no published number",
                "n/a",
            ]
        )
    else:
        g, d = rep["accuracy_grid"], rep["accuracy_grid_details"]
        gap = ver.get("accuracy_grid", {}).get("parts", {}).get("w4a3_minus_float")
        if gap is None:
            ref = REFERENCES["accuracy_grid"]
            gap = trend_verdict(d["design_point_minus_float"], ref["W4A3"] - ref["float"])
        rows.append(
            [
                f"W4A3 vs float ({net(rep)})",
                f"{pct(g['W4A3'], 2)} vs {pct(d['float_accuracy'], 2)}",
                "98.82 % vs 99.08 % (LeNet-5, MNIST)",
                f"{gap} (the gap; other dataset)",
            ]
        )
    a = rep.get("adc_energy_vs_rows", {})
    if "W4A3" in a:
        rows.append(
            [
                "ADC energy with sense skip at 128 rows, W4A3 / W8A8",
                f"{pct(at(a['W4A3'], 'normalized_adc_energy', 128))} / "
                f"{pct(at(a['W8A8'], 'normalized_adc_energy', 128))}",
                "47 % / 21 %",
                _word(ver.get("adc_energy_vs_rows")),
            ]
        )
        m = rep["mac_efficiency"]
        rows.append(
            [
                "MAC efficiency improvement at 128 x 128, W8A8 / W4A3",
                f"{at(m['W8A8'], 'improvement', 128):.3f}x / "
                f"{at(m['W4A3'], 'improvement', 128):.3f}x",
                "2.98x / 1.15x",
                _word(ver.get("mac_efficiency")),
            ]
        )
    for f, v in rep["periphery_savings"].items():
        rows.append(
            [
                f"area / energy saved, shared periphery + unipolar ({f})",
                f"{pct(v['area_fraction_saved'])} / {pct(v['energy_fraction_saved'])}",
                "up to 80 % / 45 %",
                _word(ver.get("periphery_savings", {}).get("models", {}).get(f)),
            ]
        )
    c = rep["activation_cdf"]["headline"]
    rows.append(
        [
            "activations in 2 fewer bits (W4A3) / 4 fewer bits (W8A8)",
            f"{pct(c['W4A3']['fraction'])} / {pct(c['W8A8']['fraction'])}",
            "> 99 % / > 97 %",
            _word(ver.get("activation_cdf")),
        ]
    )
    cb = rep["clip_bound"]
    if "best_minus" in cb:
        from cosim.report.stats import supported

        ib = cb["hi"].index(cb["best_hi"])
        runner = max((j for j in range(len(cb["hi"])) if j != ib), key=lambda j: cb["accuracy"][j])
        gap = cb["best_minus"][runner]
        told = "established" if supported(gap) else "not established"
        best = (
            f"{cb['best_hi']:g} by the mean over {len(cb['seeds'])} seeds; hi = "
            f"{cb['hi'][runner]:g} {fmt(gap)} points below it ({told})"
        )
    else:
        best = f"{cb['best_hi']:g}"
    rows.append(["best activation clip bound (Bao et al.'s recipe)", best, "2",
                 _word(ver.get("clip_bound"))])  # fmt: skip
    acc = rep.get("accumulation", {})
    if "W4A3" in acc and "W8A8" in acc:
        m4, m8 = acc["W4A3"]["model_at_128"], acc["W8A8"]["model_at_128"]
        rows.append(
            [
                "ADC energy with the skip, n = 128 inputs per conversion, W4A3 / W8A8 "
                "(the model's own codes)",
                f"{pct(m4['normalized_adc_energy'])} / {pct(m8['normalized_adc_energy'])}",
                "47 % / 21 %",
                _word(ver.get("accumulation")),
            ]
        )
    ut = rep.get("unipolar_tradeoff", {})
    sd = ut.get("seeded")
    if sd and 1.0 in sd["fractions"]:
        i = min(range(len(sd["fractions"])), key=lambda k: abs(sd["fractions"][k] - 0.4))
        what = "convolution filters" if ut.get("unipolar_scope") == "conv" else "hidden filters"
        rows.append(
            [
                f"accuracy against all-bipolar, {sd['fractions'][i]:g} / all of the {what} "
                f"unipolar ({ut['arch']}, {len(sd['seeds'])} seeds)",
                f"{fmt(sd['minus_bipolar'][i])} / "
                f"{fmt(sd['minus_bipolar'][sd['fractions'].index(1.0)])} points",
                "competitive at 0.4 (CIFAR-10 CNN)",
                _word(ver.get("unipolar_tradeoff")),
            ]
        )
    rob = rep.get("robustness", {})
    for key, label, sec, pubw in (
        ("robustness_nvw", "largest nvw, high vs low weight precision", "nvw", "falls"),
        ("robustness_nva", "largest nva, high vs low activation precision", "nva", "falls"),
        ("robustness_nvw_by_a", "largest nvw, high vs low activation precision", "nvw_by_a",
         "no distinct tendency"),
    ):  # fmt: skip
        sd = rob.get(sec, {}).get("seeded")
        if sd and sd["trend_interval"]["n"] > 1:
            rows.append(
                [
                    label,
                    f"{fmt(sd['trend_interval'], digits=0, bounds=FALL)} % "
                    f"({len(sd['seeds'])} seeds)",
                    pubw,
                    _word(ver.get(key)),
                ]
            )
    return rows


def _compute(t: dict[str, Any]) -> str:
    """The tasks' summed compute time (reports without it: nothing)."""
    if not t.get("task_compute_s"):
        return ""
    return (
        f"; the tasks' own compute time, summed over this run and any earlier run whose "
        f"results came from the cache, is {t['task_compute_s'] / 3600:.1f} worker-hours"
    )


def energy_provenance() -> str:
    """Where the energies of experiments 5-8 come from (``ENERGY_SOURCES`` of the engine)."""
    from cosim.engine.results import ENERGY_SOURCES, energy_sources_by_kind

    by = {
        src: [f"{k} ({ENERGY_SOURCES[k][1]})" for k in ks]
        for src, ks in energy_sources_by_kind().items()
    }
    words = {
        "spice": "simulated in SPICE",
        "engine": "computed by the engine",
        "card": "the card's design figures, not simulated",
    }
    return (
        "**Energy provenance.** Of the energy per inference (experiments 5-8): "
        + "; ".join(f"{words[src]}: {', '.join(parts)}" for src, parts in by.items())
        + ". The op-amp terms (TIA, subtractor) dominate the MAC energy, so the periphery "
        "savings and the MAC-efficiency numbers rest on the card's op-amp figures."
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
        f"experiments: {net(rep)}; MLP experiments: the MLP on {p['mlp_dataset']}. "
        f"{'Quick' if p['quick'] else 'Full'} study, generated by `{rep['command']}` in "
        f"{t['total_s'] / 60:.1f} min ({t['tasks_run']} tasks run, {t['tasks_cached']} from "
        f"the cache, {t['experiments_cached']} of {t['experiments']} experiments from the "
        f"cache){_compute(t)}. Method notes and every difference from the papers: "
        "docs/report.md in the cosim repository. All numbers are in `report.json`.",
        "",
        "## Headline numbers",
        "",
    ]
    rows = headlines(rep)
    head.append("| " + " | ".join(rows[0]) + " |")
    head.append("|" + "---|" * len(rows[0]))
    head += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    head.append("")
    head += [energy_provenance(), ""]
    body = []
    ver = _verdicts(rep)
    for title, section, fn, key in SECTIONS:
        if section not in rep:
            continue
        text = fn(rep)
        if text:
            body += [f"## {title}", "", with_verdict(text, ver.get(key))]
    missing = [f for f in figures if f"]({f})" not in "\n".join(body)]
    if missing:  # pragma: no cover - every drawn figure has a section
        raise AssertionError(f"figures without a section: {missing}")
    return "\n".join(head + body) + "\n"
