"""The study's figures (PNG, matplotlib's Agg backend), one or two per experiment.

Each function takes the assembled ``report.json`` dictionary and a path, draws our result
with the published value marked on the same axes where the paper gives a number, and writes
the PNG atomically. :data:`FIGURES` lists them in report order with the experiment each
belongs to.

One module per family, as in :mod:`cosim.report.experiments`:
:mod:`~cosim.report.figures.accuracy` (1-3), :mod:`~cosim.report.figures.sparsity` (4-5),
:mod:`~cosim.report.figures.periphery` (6-7), :mod:`~cosim.report.figures.adc` (8), drawn
with the helpers of :mod:`~cosim.report.figures.common`. Importing this package does not
import matplotlib.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from cosim.report.figures.accumulation import accumulation
from cosim.report.figures.accuracy import (
    accuracy_grid,
    clip_bound,
    headline,
    robustness_nva,
    robustness_nvw,
    robustness_nvw_by_a,
)
from cosim.report.figures.adc import adc_architectures
from cosim.report.figures.common import PUB, Report
from cosim.report.figures.periphery import periphery_savings, unipolar_tradeoff
from cosim.report.figures.sparsity import activation_cdf, adc_energy_rows, mac_efficiency

__all__ = [
    "FIGURES",
    "PUB",
    "Report",
    "accuracy_grid",
    "activation_cdf",
    "adc_architectures",
    "adc_energy_rows",
    "clip_bound",
    "draw_all",
    "headline",
    "mac_efficiency",
    "periphery_savings",
    "robustness_nva",
    "robustness_nvw",
    "robustness_nvw_by_a",
    "unipolar_tradeoff",
]


#: (file name, experiment section it needs, drawing function), in report order.
FIGURES: tuple[tuple[str, str, Callable[[Report, Path], Path]], ...] = (
    ("fig0_headline.png", "headline", headline),
    ("fig1_accuracy_grid.png", "accuracy_grid_details", accuracy_grid),
    ("fig2_clip_bound.png", "clip_bound", clip_bound),
    ("fig3a_robustness_nvw.png", "robustness", robustness_nvw),
    ("fig3b_robustness_nva.png", "robustness", robustness_nva),
    ("fig3c_robustness_nvw_by_a.png", "robustness", robustness_nvw_by_a),
    ("fig4_activation_cdf.png", "activation_cdf", activation_cdf),
    ("fig5a_adc_energy_vs_rows.png", "adc_energy_vs_rows", adc_energy_rows),
    ("fig5b_mac_efficiency.png", "mac_efficiency", mac_efficiency),
    ("fig6_periphery_savings.png", "periphery_savings", periphery_savings),
    ("fig7_unipolar_tradeoff.png", "unipolar_tradeoff", unipolar_tradeoff),
    ("fig8_adc_architectures.png", "adc_architectures", adc_architectures),
    ("fig9_accumulation.png", "accumulation", accumulation),
)


def draw_all(rep: Report, out_dir: Path) -> list[str]:
    """Draw every figure whose section is present (and not skipped); their file names."""
    done = []
    for name, section, fn in FIGURES:
        sec = rep.get(section)
        if not sec or (isinstance(sec, dict) and "skipped" in sec):
            continue
        fn(rep, out_dir / name)
        done.append(name)
    return done
