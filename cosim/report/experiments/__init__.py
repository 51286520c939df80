"""The eight experiments: which tasks each needs and how their results become numbers.

Each experiment declares named tasks (:meth:`Experiment.declare`) and assembles the
results into the sections of ``report.json`` (:meth:`Experiment.assemble`). The
experiment's cache key hashes its name, its tasks' keys and the assembly settings, so an
unchanged experiment is read back whole on a rerun. docs/report.md explains each method and
how it differs from the papers.

One module per idea: :mod:`~cosim.report.experiments.base` (the :class:`Experiment`
contract), :mod:`~cosim.report.experiments.accuracy` (1-3),
:mod:`~cosim.report.experiments.sparsity` (4-5) and
:mod:`~cosim.report.experiments.periphery` (6-7), :mod:`~cosim.report.experiments.adc` (8);
:data:`EXPERIMENTS` lists them in report order.
"""

from __future__ import annotations

from cosim.report.experiments.accumulation import Accumulation
from cosim.report.experiments.accuracy import AccuracyGrid, ClipBound, Headline, Robustness
from cosim.report.experiments.adc import AdcArchitectures
from cosim.report.experiments.base import Experiment, Results
from cosim.report.experiments.periphery import (
    ACCURACY_CONFIG,
    ENERGY_CONFIG,
    PeripherySavings,
    UnipolarTradeoff,
)
from cosim.report.experiments.sparser import SparserActivations
from cosim.report.experiments.sparsity import MAC_COMPONENTS, ActivationCdf, SparsityAdc

__all__ = [
    "ACCURACY_CONFIG",
    "ENERGY_CONFIG",
    "EXPERIMENTS",
    "MAC_COMPONENTS",
    "Accumulation",
    "AccuracyGrid",
    "ActivationCdf",
    "AdcArchitectures",
    "ClipBound",
    "Experiment",
    "Headline",
    "PeripherySavings",
    "Results",
    "Robustness",
    "SparserActivations",
    "SparsityAdc",
    "UnipolarTradeoff",
]


EXPERIMENTS: tuple[Experiment, ...] = (
    Headline(),
    AccuracyGrid(),
    ClipBound(),
    Robustness(),
    ActivationCdf(),
    SparsityAdc(),
    Accumulation(),
    SparserActivations(),
    PeripherySavings(),
    UnipolarTradeoff(),
    AdcArchitectures(),
)
