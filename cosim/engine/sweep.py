"""Accuracy-versus-parameter sweeps (``--sweep nvw=0:0.3:0.02``) with JSON and PNG output."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cosim.engine.config import EngineConfig, check_limit
from cosim.engine.evaluate import evaluate_many
from cosim.errors import CosimError
from cosim.library import SurrogateLibrary
from cosim.model import Model

# sweepable parameter -> (EngineConfig field, unit for labels)
SWEEPABLE = {
    "nvw": ("nvw", "normalized weight variation σ/(G_max − G_min)"),
    "nva": ("nva", "normalized ADC comparison-level variation σ/V_ref"),
    "t": ("drift_t_s", "time since programming (s)"),
    "adc_bits": ("adc_bits", "ADC resolution (bits)"),
}
#: Most points a sweep may have (each is a whole evaluation of every chip).
MAX_POINTS = 200


@dataclass(frozen=True)
class SweepSpec:
    """``name=start:stop:step`` (stop included when the steps land on it)."""

    name: str
    values: tuple[float, ...]

    @classmethod
    def parse(cls, text: str) -> SweepSpec:
        """Parse and check ``NAME=start:stop:step`` or ``NAME=value`` before any work runs.

        Every number must be finite and inside the parameter's documented range
        (:data:`cosim.engine.config.LIMITS`), and the sweep at most :data:`MAX_POINTS` points.

        Examples
        --------
        >>> SweepSpec.parse("nvw=0:0.1:0.05").values
        (0.0, 0.05, 0.1)
        """
        if "=" not in text:
            raise CosimError(f"--sweep '{text}': write NAME=start:stop:step, e.g. nvw=0:0.3:0.02")
        name, rng = text.split("=", 1)
        name = name.strip().replace("-", "_")
        if name not in SWEEPABLE:
            raise CosimError(
                f"--sweep: unknown parameter '{name}'; sweepable: " + ", ".join(SWEEPABLE)
            )
        parts = rng.split(":")
        try:
            nums = [float(p) for p in parts]
        except ValueError:
            raise CosimError(f"--sweep '{text}': start:stop:step must be numbers") from None
        if not all(math.isfinite(v) for v in nums):
            raise CosimError(f"--sweep '{text}': start, stop and step must be finite numbers")
        if len(nums) == 1:
            vals = nums
        elif len(nums) == 3:
            start, stop, step = nums
            if step <= 0 or stop < start:
                raise CosimError(f"--sweep '{text}': need step > 0 and stop >= start")
            span = (stop - start) / step + 1e-9  # may overflow to inf: then too many points
            count = math.floor(span) + 1 if span < MAX_POINTS else math.inf
            if count > MAX_POINTS:
                raise CosimError(
                    f"--sweep '{text}' has {span + 1:.3g} points; at most {MAX_POINTS} are "
                    "allowed (each point is a whole evaluation): use a larger step"
                )
            vals = [start + i * step for i in range(int(count))]  # finite: checked above
        else:
            raise CosimError(f"--sweep '{text}': write NAME=start:stop:step or NAME=value")
        if name == "adc_bits" and any(v != round(v) for v in vals):
            raise CosimError(
                f"--sweep '{text}': adc_bits takes whole numbers of bits (start and step "
                "must be integers)"
            )
        field = SWEEPABLE[name][0]
        for v in (vals[0], vals[-1]):
            try:
                check_limit(field, v, name)
            except CosimError as exc:
                raise CosimError(f"--sweep '{text}': {exc}") from None
        return cls(name, tuple(vals))


def run_sweep(
    model: Model,
    library: SurrogateLibrary,
    x: np.ndarray,
    y: np.ndarray,
    base: EngineConfig,
    spec: SweepSpec,
    margin: float = 0.01,
    card=None,
    threads: int = 1,
    cluster: Any = None,
) -> dict[str, Any]:
    """Accuracy (mean ± std over chips) at each value; the largest value within ``margin``.

    The reference is the noiseless accuracy: the same configuration with the swept
    parameter at its neutral value (0 variation, no drift, the model's own ADC bits).
    ``threads``: as :func:`cosim.engine.evaluate.evaluate` (the result does not depend on it).
    ``cluster``: a :class:`cosim.cluster.Cluster`; every chip of every point is then one
    task there, all submitted at once (the result is the same).
    """
    field, label = SWEEPABLE[spec.name]
    neutral = {"nvw": 0.0, "nva": 0.0, "drift_t_s": None, "adc_bits": None}[field]
    configs = [base.with_(**{field: neutral})]
    descs = ["reference"]
    for v in spec.values:
        val: Any = int(v) if field == "adc_bits" else v
        configs.append(base.with_(**{field: val}))
        descs.append(f"{spec.name}={v:g}")
    ref, *points = evaluate_many(
        model, library, x, y, configs, descs, card=card, threads=threads, cluster=cluster
    )
    means = [r.accuracy_mean for r in points]
    stds = [r.accuracy_std for r in points]
    ok = [v for v, m in zip(spec.values, means, strict=True) if m >= ref.accuracy_mean - margin]
    return {
        "parameter": spec.name,
        "label": label,
        "values": list(spec.values),
        "accuracy_mean": means,
        "accuracy_std": stds,
        "reference_accuracy": ref.accuracy_mean,
        "margin": margin,
        "largest_value_within_margin": max(ok)
        if (ok and spec.name in ("nvw", "nva", "t"))
        else None,
        "chips": base.chips,
    }


def plot_sweep(result: dict[str, Any], path: str | Path, title: str = "") -> Path:
    """Accuracy versus the swept parameter, with the margin band, as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cosim.fileio import atomic_path, png_metadata
    from cosim.messages import show_text

    v = np.asarray(result["values"])
    m = np.asarray(result["accuracy_mean"]) * 100
    s = np.asarray(result["accuracy_std"]) * 100
    fig, ax = plt.subplots(figsize=(5.5, 3.6), dpi=120)
    ax.errorbar(v, m, yerr=s, marker="o", ms=3, capsize=2, label="engine (mean ± std over chips)")
    ref = result["reference_accuracy"] * 100
    ax.axhline(ref, color="gray", lw=0.8, ls="--", label="noiseless")
    ax.axhspan(
        ref - result["margin"] * 100,
        ref,
        color="gray",
        alpha=0.12,
        label=f"within {result['margin'] * 100:g} points",
    )
    lv = result.get("largest_value_within_margin")
    if lv is not None:
        ax.axvline(lv, color="C3", lw=0.8, ls=":", label=f"largest within margin: {lv:g}")
    if result["parameter"] == "t":
        ax.set_xscale("log")
    ax.set_xlabel(result["label"])
    ax.set_ylabel("accuracy (%)")
    ax.set_title(show_text(title), fontsize=9)  # a file name may hold undecodable bytes
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", metadata=png_metadata())
    plt.close(fig)
    return path
