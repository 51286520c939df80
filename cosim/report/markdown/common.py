"""What every section of ``report.md`` is written with: percentages, the network's name,
the published reference, and the Published / Ours / Why block."""

from __future__ import annotations

from typing import Any

from cosim.report.references import REFERENCES

Report = dict[str, Any]


def pct(x: float | None, digits: int = 1) -> str:
    if x is None:
        return "n/a"
    text = f"{x * 100:.{digits}f}"
    if text.startswith("-") and text.strip("-0.") == "":  # a negative that rounds to 0
        text = text[1:]
    return f"{text} %"


def net(rep: Report) -> str:
    p = rep["plan"]
    names = {"lenet5": "LeNet-5", "mlp": "the MLP", "cnn6": "the six-conv CNN"}
    return f"{names.get(p['arch'], p['arch'])} on {p['dataset']}"


def training(rep: Report, epochs: int) -> str:
    p = rep["plan"]
    d = rep.get("accuracy_grid_details", {})
    n = d.get("train_samples")
    samples = f"{n} training samples, " if n else ""
    return f"{samples}{epochs} epoch{'s' if epochs != 1 else ''} of Adam (batch {p['batch_size']})"


def data_note(rep: Report, float_acc: float) -> str:
    ds = rep["plan"]["dataset"]
    if ds.startswith("fashion-mnist"):
        return f"Fashion-MNIST is harder than MNIST (float {pct(float_acc)} here vs 99.08 %)"
    if ds == "digits":
        return (
            "scikit-learn's 8x8 digits (about 1400 training images) are a small task "
            f"(float {pct(float_acc)} here vs 99.08 % on MNIST)"
        )
    return f"a different dataset (float {pct(float_acc)} here vs 99.08 % on MNIST)"


def block(fig: str, pub: str, ours: str, why: str, table: list[list[str]] | None = None) -> str:
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


def pub(key: str) -> str:
    ref = REFERENCES[key]
    return f"({ref['source']}): {ref['text']}."


def at(d: dict[str, Any], key: str, rows: int) -> float | None:
    return d[key][d["rows"].index(rows)] if rows in d["rows"] else None
