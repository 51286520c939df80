"""What every figure is drawn with: matplotlib's Agg backend loaded on first use, the
published-value marker, the subtitle, and the atomic PNG write."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cosim.fileio import atomic_path, png_metadata

Report = dict[str, Any]
PUB = {"color": "k", "marker": "*", "ms": 11, "ls": "none", "mfc": "none"}


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_png(fig, path: Path) -> Path:
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", metadata=png_metadata())
    pyplot().close(fig)
    return path


def subtitle(rep: Report) -> str:
    p = rep["plan"]
    return f"{p['arch']} on {p['dataset']} — card '{rep['card']['card']['name']}'"
