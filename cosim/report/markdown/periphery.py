"""The shared-periphery sections of ``report.md``: savings of unipolar filters (6) and the
accuracy they cost (7)."""

from __future__ import annotations

from cosim.report.markdown.common import Report, block, net, pct, pub
from cosim.report.references import REFERENCES


def _published(v: dict) -> str:
    """The published figures a network of experiment 6 is set beside."""
    ref = REFERENCES["periphery_savings"]
    text = (
        f"up to {pct(ref['area_fraction_saved'], 0)} / {pct(ref['energy_fraction_saved'], 0)}"
        " (v2: 67 % / 40 %)"
    )
    if v.get("stand_in"):
        har = ref["har"]
        text += (
            f"; HAR 2-bit unipolar {pct(har['accuracy'], 2)} vs float "
            f"{pct(har['float_accuracy'], 0)}, energy up to "
            f"{pct(har['energy_fraction_saved_blog'], 0)} (blog)"
        )
    elif v.get("unipolar_scope") == "conv":
        text += f"; CIFAR-10 at {ref['cnn_unipolar_fraction']:g} of the convolution filters"
    return text


def _filters(v: dict) -> str:
    if v.get("unipolar_scope") == "conv":
        return (
            f"{v['unipolar_conv_filters']} of {v['conv_filters']} conv ({v['unipolar_fraction']:g})"
        )
    return f"{v['unipolar_filters']} of {v['hidden_filters']} hidden ({v['unipolar_fraction']:g})"


def periphery(rep: Report) -> str:
    d = rep["periphery_savings"]
    parts = []
    for f, v in d.items():
        text = (
            f"{f} ({v['dataset']}, {v.get('precision', 'W4A3')}, unipolar {_filters(v)}): "
            f"{pct(v['area_fraction_saved'])} area and {pct(v['energy_fraction_saved'])} energy "
            f"saved (shared periphery alone: {pct(v['area_fraction_saved_shared_only'])} / "
            f"{pct(v['energy_fraction_saved_shared_only'])}"
        )
        if "layer_tuning" in v:
            text += (
                f"; without the per-layer tuning's cost {pct(v['area_fraction_saved_untuned'])}"
                f" / {pct(v['energy_fraction_saved_untuned'])})"
            )
        else:
            text += ")"
        if "hidden_scope" in v:
            h = v["hidden_scope"]
            text += (
                f"; the same fraction over every hidden filter chose "
                f"{h['unipolar_conv_filters']} of the {v['conv_filters']} convolution filters "
                f"({h['unipolar_filters']} filters in all) and saves "
                f"{pct(h['area_fraction_saved'])} / {pct(h['energy_fraction_saved'])}"
            )
        if v.get("float_accuracy") is not None:
            text += (
                f"; all-unipolar {pct(v['accuracy']['proposed'], 2)} vs float "
                f"{pct(v['float_accuracy'], 2)}"
            )
        parts.append(text)
    ours = "; ".join(parts) + "."
    tuned = {f: v["layer_tuning"] for f, v in d.items() if "layer_tuning" in v}
    tuning = ""
    if tuned:
        tuning = (
            " The traditional design's per-layer tuned periphery is costed from the card "
            "(tia.tuning_*: per hidden layer beyond the first, reference buffers at the "
            "op-amp's quiescent power for the whole inference, and trim DACs; a card figure, "
            "not simulated): "
            + "; ".join(
                f"{f} {t['buffers']} buffers and {t['dacs']} DACs, "
                + pct(t["energy_per_inference_j"] / d[f]["energy_per_inference_j"]["traditional"])
                + " of its energy"
                for f, t in tuned.items()
            )
            + "."
        )
    why = (
        "traditional = per-layer STE model on dedicated per-layer periphery with "
        "differential columns and subtractors; proposed = global model with unipolar filters "
        "on one shared periphery bank; areas and energies come from the card's component "
        "figures and the engine's counts (shared periphery saves area and the per-layer "
        "references' energy, not energy per operation); the paper used HAR and CIFAR-10 "
        "networks and custom 55 nm converters; "
        "our unipolar filters are chosen by a measured-sensitivity search and are "
        "all-positive, the paper's by NAS and all-positive or all-negative; the 2-bit "
        "all-unipolar MLP stands in for the HAR network (no HAR data)"
        + "".join(
            f"; {f}'s unipolar fraction counts its convolution filters as the paper's does, "
            f"but they are {v['conv_filters']} of its {v['hidden_filters']} hidden filters "
            "(the paper's CNN is all convolutions)"
            for f, v in d.items()
            if v.get("unipolar_scope") == "conv"
        )
        + "."
        + tuning
    )
    rows = [
        [
            "model",
            "unipolar filters",
            "area saved",
            "energy saved",
            "energy saved, tuning not costed",
            "accuracy trad. / proposed (integer)",
            "on the chip (engine)",
            "published",
        ]
    ]
    for f, v in d.items():
        rows.append(
            [
                f"{f} ({v['dataset']})" + (" (HAR stand-in)" if v.get("stand_in") else ""),
                _filters(v),
                pct(v["area_fraction_saved"]),
                pct(v["energy_fraction_saved"]),
                pct(v.get("energy_fraction_saved_untuned")),
                f"{pct(v['accuracy']['traditional'])} / {pct(v['accuracy']['proposed'])}",
                f"{pct(v['engine_accuracy']['traditional'])} / "
                f"{pct(v['engine_accuracy']['proposed'])}",
                _published(v),
            ]
        )
    seeded = [(f, v["seeded"]) for f, v in d.items() if v.get("seeded")]
    if seeded:
        from cosim.report.stats import fmt

        n = len(seeded[0][1]["seeds"])
        ours += (
            f" Accuracy over {n} seeds (mean ± 95 % interval, paired by seed): "
            + "; ".join(
                f"{f}: global − per-layer {fmt(sd['shared_minus_traditional'])} points, "
                f"proposed − shared {fmt(sd['proposed_minus_shared'])} points"
                for f, sd in seeded
            )
            + "."
        )
        rows.append(["**over seeds**", "", "", "", "", "", "", ""])
        for f, sd in seeded:
            a, e = sd["accuracy"], sd["engine_accuracy"]
            rows.append(
                [
                    f"{f}, {n} seeds",
                    "",
                    "",
                    "",
                    "",
                    f"{fmt(a['traditional'], unit=' %')} / {fmt(a['proposed'], unit=' %')}",
                    f"{fmt(e['traditional'], unit=' %')} / {fmt(e['proposed'], unit=' %')}",
                    "",
                ]
            )
    return block("fig6_periphery_savings.png", pub("periphery_savings"), ours, why, rows)


def unipolar(rep: Report) -> str:
    d = rep["unipolar_tradeoff"]
    fr = d["fractions"]
    a0 = d["accuracy"][0]
    near = min(range(len(fr)), key=lambda i: abs(fr[i] - 0.4))
    ours = (
        f"at {fr[near]:g} unipolar: {pct(d['accuracy'][near], 2)} vs {pct(a0, 2)} all-bipolar "
        f"({(d['accuracy'][near] - a0) * 100:+.2f} points), area {pct(d['area_relative'][near])}"
        f" and energy {pct(d['energy_relative'][near])} of all-bipolar; all unipolar: "
        f"{pct(d['accuracy'][-1], 2)}."
    )
    counted = (
        f"fraction of its {d['conv_filters']} convolution filters, as the paper counts it"
        if d.get("unipolar_scope") == "conv"
        else f"fraction of its {d['hidden_filters']} hidden filters"
    )
    why = (
        f"{net(rep)} ({counted}, {d['epochs']} epochs) instead of the "
        "six-conv CNN on CIFAR-10; filters chosen by cosim's measured-sensitivity search; "
        "accuracy on the chip, area and energy from one evaluation on the engine's default "
        "chip (shared periphery, every non-ideality on); with every filter unipolar the "
        "chip loses more to programming noise and IR drop, which no differential pair "
        "cancels."
    )
    rows = [["unipolar fraction", *[f"{f:g}" for f in fr]]]
    if "unipolar_conv_filters" in d:
        rows.append(["unipolar conv filters", *[str(n) for n in d["unipolar_conv_filters"]]])
    rows.append(["accuracy", *[pct(a, 2) for a in d["accuracy"]]])
    rows.append(["engine accuracy", *[pct(a, 2) for a in d["engine_accuracy"]]])
    rows.append(["area (rel.)", *[pct(a) for a in d["area_relative"]]])
    rows.append(["energy (rel.)", *[pct(a) for a in d["energy_relative"]]])
    sd = d.get("seeded")
    if sd:
        from cosim.report.stats import fmt

        n = len(sd["seeds"])
        acc = dict(zip(sd["fractions"], sd["accuracy"], strict=True))
        dif = dict(zip(sd["fractions"], sd["minus_bipolar"], strict=True))
        rows.append(
            [f"accuracy, {n} seeds", *[fmt(acc[f], unit=" %") if f in acc else "" for f in fr]]
        )
        rows.append(
            [
                "− all-bipolar (points)",
                *[fmt(dif[f]) if f in dif and dif[f] and f != 0.0 else "" for f in fr],
            ]
        )
        ours += (
            f" Over {n} seeds (paired): "
            + ", ".join(f"{f:g} unipolar {fmt(dif[f])} points" for f in sd["fractions"] if f != 0.0)
            + " against all-bipolar."
        )
    return block("fig7_unipolar_tradeoff.png", pub("unipolar_tradeoff"), ours, why, rows)
