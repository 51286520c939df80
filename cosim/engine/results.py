"""Typed results of an evaluation: frozen records with ``to_dict()`` for JSON.

:class:`EvalResult` is what :func:`cosim.engine.evaluate.evaluate` returns: accuracy over
chips, one :class:`LayerResult` per hidden layer, energy per inference by component
(:class:`EnergyBreakdown`), area (:class:`AreaReport`) and how the periphery was set up
(:class:`PeripheryReport`). Every record is immutable, so a missing or misspelt field is an
error where it is read, not a silent default; :meth:`to_dict` gives the JSON that
``cosim evaluate --json`` writes and the report caches (same keys, values and order as the
dicts these records replaced) and :meth:`from_dict` reads it back.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any

import numpy as np

#: The energy components of the engine, in the order they are reported.
COMPONENTS = (
    "crossbar_read",
    "dac",
    "tia",
    "subtractor",
    "adc",
    "sense_row",
    "digital",
    "layer_tuning",
)
#: components added after results were first stored: a stored result without one read 0 J
ADDED_COMPONENTS = frozenset({"layer_tuning"})

#: Where each energy component's figure comes from: ``spice`` (the characterized circuit's
#: simulated supply current, through its fitted surrogate), ``engine`` (computed by the
#: engine from the programmed devices and the applied voltages) or ``card`` (a design
#: figure of the hardware card, not simulated), with the figures it uses.
ENERGY_SOURCES: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        "crossbar_read": ("engine", "V·I of every read device over tia.t_read_s"),
        "dac": ("card", "dac.e_conv_j per conversion"),
        "tia": ("card", "opamp supply span × opamp.i_quiescent_a × tia.t_read_s"),
        "subtractor": ("card", "opamp supply span × opamp.i_quiescent_a × tia.t_read_s"),
        "adc": ("spice", "the library's characterized converter, per skip count and code"),
        "sense_row": (
            "card",
            "its TIA's op-amp power × tia.t_read_s and the comparators' C·V²",
        ),
        "digital": ("card", "digital.e_add_j and digital.e_activation_j per operation"),
        "layer_tuning": (
            "card",
            "per-layer tuned periphery (EngineConfig.layer_tuning): tia.tuning_buffers_per_layer"
            " op-amp buffers per layer beyond the first × opamp supply span × "
            "opamp.i_quiescent_a × the inference's read time",
        ),
    }
)
assert tuple(ENERGY_SOURCES) == COMPONENTS


def energy_sources_for(card: Any = None) -> dict[str, tuple[str, str]]:
    """:data:`ENERGY_SOURCES` for an evaluation on ``card`` (a :class:`~cosim.card.Card`):
    where the card sets ``adc.e_conv_j`` the ADC energy is the card's figure, not SPICE's.

    Examples
    --------
    >>> from cosim.card import load_card
    >>> card = load_card()
    >>> energy_sources_for(card)["adc"][0]
    'spice'
    >>> energy_sources_for(card.with_updates({"adc": {"e_conv_j": 1e-12}}))["adc"][0]
    'card'
    """
    out = dict(ENERGY_SOURCES)
    if card is not None and card.adc.e_conv_j > 0:
        out["adc"] = (
            "card",
            f"adc.e_conv_j = {card.adc.e_conv_j:.4g} J per full {card.adc.bits}-bit "
            "conversion, times 2**(bits - adc.bits), less the skipped cycles' share",
        )
    return out


def energy_sources_by_kind(
    sources: Mapping[str, tuple[str, str]] | None = None,
) -> dict[str, list[str]]:
    """The energy components grouped by where their figures come from (``spice``,
    ``engine``, ``card``), in component order: of ``sources`` (an evaluation's
    :attr:`EvalResult.sources`, e.g. :func:`energy_sources_for` its card), by default
    :data:`ENERGY_SOURCES`."""
    by: dict[str, list[str]] = {}
    for k, (kind, _) in (ENERGY_SOURCES if sources is None else sources).items():
        by.setdefault(kind, []).append(k)
    return by


__all__ = [
    "COMPONENTS",
    "ENERGY_SOURCES",
    "AreaReport",
    "EnergyBreakdown",
    "EvalResult",
    "LayerResult",
    "PeripheryReport",
    "energy_sources_by_kind",
    "energy_sources_for",
]


def _take(d: Mapping[str, Any], key: str, what: str) -> Any:
    """``d[key]``, or a ValueError naming ``what`` and the key."""
    if not isinstance(d, Mapping):
        raise ValueError(f"{what} must be an object, not {type(d).__name__}")
    if key not in d:
        raise ValueError(f"{what} lacks '{key}'")
    return d[key]


def _number(value: Any, key: str) -> float:
    """``value``, checked to be a real number; returned as it is, so that the JSON written
    again is the same text (an integer stays an integer)."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise ValueError(f"{key} must be a number, not {value!r:.40}")
    return value  # type: ignore[return-value]  # a numbers.Real, kept as it is (see above)


def _count(value: Any, key: str) -> int:
    """``value``, checked to be an integer."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise ValueError(f"{key} must be an integer, not {value!r:.40}")
    return value  # type: ignore[return-value]  # a numbers.Integral, kept as it is


@dataclass(frozen=True, eq=False)
class EnergyBreakdown(Mapping[str, float]):
    """Energy by component (J; per inference where a result reports it so).

    Also a read-only mapping from the component names (:data:`COMPONENTS`, in that order)
    to joules, so ``e["adc"]``, ``e.items()`` and ``sum(e.values())`` read it as the dict
    it replaces; equal to any mapping with the same items.
    """

    crossbar_read: float = 0.0  # data and bias rows' read energy in the crossbar
    dac: float = 0.0  # input DAC conversions
    tia: float = 0.0  # column TIAs (quiescent power over the read time)
    subtractor: float = 0.0  # differential-pair subtractors
    adc: float = 0.0  # ADC conversions (skipped MSB cycles saved)
    sense_row: float = 0.0  # sense TIA and comparators
    digital: float = 0.0  # digital periphery
    layer_tuning: float = 0.0  # per-layer tuned periphery's reference buffers (card figure)

    def __getitem__(self, key: str) -> float:
        if key not in COMPONENTS:
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(COMPONENTS)

    def __len__(self) -> int:
        return len(COMPONENTS)

    @property
    def total_j(self) -> float:
        """The sum over components (J)."""
        return float(sum(self.values()))

    def to_dict(self) -> dict[str, float]:
        """``{component: joules}`` in :data:`COMPONENTS` order."""
        return {k: getattr(self, k) for k in COMPONENTS}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> EnergyBreakdown:
        """The breakdown of ``{component: joules}``: every component, nothing else (one of
        :data:`ADDED_COMPONENTS` may be missing: a result stored before it existed, 0 J).

        Raises
        ------
        ValueError
            A component is missing, unknown or not a number.
        """
        unknown = sorted(set(d) - set(COMPONENTS)) if isinstance(d, Mapping) else []
        if unknown:
            raise ValueError(f"energy has an unknown component {unknown[0]!r}")
        return cls(
            **{
                k: _number(_take(d, k, "energy"), k)
                for k in COMPONENTS
                if k not in ADDED_COMPONENTS or (isinstance(d, Mapping) and k in d)
            }
        )


assert tuple(f.name for f in fields(EnergyBreakdown)) == COMPONENTS  # one list of parts


@dataclass(frozen=True)
class LayerResult:
    """Statistics of one hidden layer over every sample and chip of an evaluation."""

    layer: str  # "index:kind", e.g. "1:dense"
    adc_clipping_rate: float  # fraction of final output codes at the top code
    tia_saturation_rate: float  # fraction of column TIA reads within 20 mV of a rail
    skipped_cycle_fraction: float  # fraction of SAR cycles skipped by the sense row
    bound_violations: int  # skipped conversions whose full code needed the skipped MSBs
    psum_clipping_rate: float  # fraction of offset-binary conversions (partial sums and
    # a residual Add's signed operand) at either end of their range
    conversions_per_inference: float  # ADC conversions per sample (partial sums included)
    energy_per_inference_j: EnergyBreakdown  # J per sample, by component

    def to_dict(self) -> dict[str, Any]:
        """The layer's entry of ``layers`` in ``cosim evaluate --json``."""
        out: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        out["energy_per_inference_j"] = self.energy_per_inference_j.to_dict()
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LayerResult:
        """The record of :meth:`to_dict`'s output.

        Raises
        ------
        ValueError
            A field is missing or of the wrong type (named).
        """
        layer = _take(d, "layer", "a layer result")
        if not isinstance(layer, str):
            raise ValueError(f"layer must be a string, not {layer!r:.40}")
        rates = {
            k: _number(_take(d, k, "a layer result"), k)
            for k in (
                "adc_clipping_rate",
                "tia_saturation_rate",
                "skipped_cycle_fraction",
                "psum_clipping_rate",
                "conversions_per_inference",
            )
        }
        return cls(
            layer=layer,
            bound_violations=_count(
                _take(d, "bound_violations", "a layer result"), "bound_violations"
            ),
            energy_per_inference_j=EnergyBreakdown.from_dict(
                _take(d, "energy_per_inference_j", "a layer result")
            ),
            **rates,
        )


@dataclass(frozen=True)
class AreaReport:
    """The chip's area (m²) for the model's periphery organisation
    (:func:`cosim.engine.costs.area_breakdown`)."""

    periphery: str  # "shared" (one set of periphery for every layer) or "dedicated"
    breakdown_m2: Mapping[str, float]  # area by component in this organisation (m²)
    total_m2: float  # sum of ``breakdown_m2`` (m²)
    counts: Mapping[str, int]  # instances per component, crossbar cells, tiles
    total_dedicated_m2: float  # total with every layer's own periphery (m²)
    total_shared_m2: float  # total with one shared periphery (m²)

    def __post_init__(self) -> None:
        # read-only copies: a result does not change under its reader
        object.__setattr__(self, "breakdown_m2", MappingProxyType(dict(self.breakdown_m2)))
        object.__setattr__(self, "counts", MappingProxyType(dict(self.counts)))

    def to_dict(self) -> dict[str, Any]:
        """The ``area_m2`` entry of ``cosim evaluate --json``."""
        return {
            "periphery": self.periphery,
            "breakdown_m2": dict(self.breakdown_m2),
            "total_m2": self.total_m2,
            "counts": dict(self.counts),
            "total_dedicated_m2": self.total_dedicated_m2,
            "total_shared_m2": self.total_shared_m2,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> AreaReport:
        """The record of an ``area_m2`` dict (:func:`cosim.engine.costs.area_breakdown`).

        Raises
        ------
        ValueError
            A field is missing or of the wrong type (named).
        """
        what = "area_m2"
        periphery = _take(d, "periphery", what)
        if periphery not in ("shared", "dedicated"):
            raise ValueError(f"periphery must be 'shared' or 'dedicated', not {periphery!r:.40}")
        breakdown, counts = _take(d, "breakdown_m2", what), _take(d, "counts", what)
        if not isinstance(breakdown, Mapping) or not isinstance(counts, Mapping):
            raise ValueError("breakdown_m2 and counts must be objects")
        return cls(
            periphery=periphery,
            breakdown_m2={k: _number(v, f"breakdown_m2.{k}") for k, v in breakdown.items()},
            total_m2=_number(_take(d, "total_m2", what), "total_m2"),
            counts={k: _count(v, f"counts.{k}") for k, v in counts.items()},
            total_dedicated_m2=_number(_take(d, "total_dedicated_m2", what), "total_dedicated_m2"),
            total_shared_m2=_number(_take(d, "total_shared_m2", what), "total_shared_m2"),
        )


@dataclass(frozen=True)
class PeripheryReport:
    """How the periphery was set up: one entry per hidden layer in the tuples."""

    shared: bool  # one periphery setting for every hidden layer (global quantization)
    transimpedance_ohm: tuple[float, ...]  # R_t of the column TIAs, per layer (ohm)
    card_r_feedback_ohm: float  # the card's TIA feedback resistance (ohm)
    card: str  # name of the card in use (a what-if card's, if given)
    validated_array: str  # "ROWSxCOLS" of the library's card (what SPICE validated)
    array: str  # "ROWSxCOLS" of the card in use
    adc_bits: tuple[int, ...]  # conversion resolution per layer
    tiles: tuple[int, ...]  # crossbar tiles per layer
    row_tiles: tuple[int, ...]  # row tiles per layer (fan-in split)

    def to_dict(self) -> dict[str, Any]:
        """The ``periphery`` entry of ``cosim evaluate --json`` (tuples as lists)."""
        return {
            f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v
            for f in fields(self)
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PeripheryReport:
        """The record of :meth:`to_dict`'s output.

        Raises
        ------
        ValueError
            A field is missing or of the wrong type (named).
        """
        what = "periphery"
        shared = _take(d, "shared", what)
        if not isinstance(shared, bool):
            raise ValueError(f"shared must be true or false, not {shared!r:.40}")
        texts = {k: _take(d, k, what) for k in ("card", "validated_array", "array")}
        for k, v in texts.items():
            if not isinstance(v, str):
                raise ValueError(f"{k} must be a string, not {v!r:.40}")

        def seq(key: str, conv) -> tuple:
            v = _take(d, key, what)
            if not isinstance(v, (list, tuple)):
                raise ValueError(f"{key} must be a list, not {v!r:.40}")
            return tuple(conv(x, key) for x in v)

        return cls(
            shared=shared,
            transimpedance_ohm=seq("transimpedance_ohm", _number),
            card_r_feedback_ohm=_number(
                _take(d, "card_r_feedback_ohm", what), "card_r_feedback_ohm"
            ),
            adc_bits=seq("adc_bits", _count),
            tiles=seq("tiles", _count),
            row_tiles=seq("row_tiles", _count),
            **texts,
        )


@dataclass(frozen=True, eq=False)
class EvalResult:
    """Accuracy over chips, per-layer statistics, energy and area per inference.

    Compared by identity (two evaluations are equal when their ``to_dict()`` are); the
    prediction arrays are read-only."""

    accuracy_per_chip: tuple[float, ...]  # fraction correct (0..1) of each chip instance
    predictions: tuple[np.ndarray, ...]  # predicted class per sample, per chip (not in JSON)
    layers: tuple[LayerResult, ...]  # one per hidden layer, in network order
    energy_per_inference_j: EnergyBreakdown  # J per sample, summed over layers
    area_m2: AreaReport
    n_samples: int  # samples evaluated per chip
    wall_s: float  # wall-clock time of the evaluation (s)
    config: Mapping[str, Any]  # the engine configuration (EngineConfig.describe())
    periphery: PeripheryReport
    # per energy component: (source, the figures it uses), ENERGY_SOURCES for the card used
    sources: Mapping[str, tuple[str, str]] = field(default_factory=lambda: dict(ENERGY_SOURCES))

    def __post_init__(self) -> None:
        object.__setattr__(self, "config", MappingProxyType(dict(self.config)))
        object.__setattr__(self, "sources", MappingProxyType(dict(self.sources)))
        for p in self.predictions:
            p.setflags(write=False)

    @property
    def accuracy_mean(self) -> float:
        """Mean accuracy over chips (fraction, 0..1)."""
        return float(np.mean(self.accuracy_per_chip))

    @property
    def accuracy_std(self) -> float:
        """Standard deviation of the accuracy over chips (fraction)."""
        return float(np.std(self.accuracy_per_chip))

    def to_dict(self) -> dict[str, Any]:
        """The ``evaluation`` JSON of ``cosim evaluate --json`` (without the predictions)."""
        return {
            "accuracy_mean": self.accuracy_mean,
            "accuracy_std": self.accuracy_std,
            "accuracy_per_chip": list(self.accuracy_per_chip),
            "n_samples": self.n_samples,
            "layers": [lay.to_dict() for lay in self.layers],
            "energy_per_inference_j": self.energy_per_inference_j.to_dict(),
            "energy_total_per_inference_j": self.energy_per_inference_j.total_j,
            # where each component's figure comes from (spice, engine or card), and the
            # figures it uses (energy_sources_for the card of the evaluation)
            "energy_sources": {k: self.sources[k][0] for k in COMPONENTS},
            "energy_provenance": {
                k: {"source": self.sources[k][0], "figures": self.sources[k][1]} for k in COMPONENTS
            },
            "area_m2": self.area_m2.to_dict(),
            "periphery": self.periphery.to_dict(),
            "wall_s": self.wall_s,
            "config": dict(self.config),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> EvalResult:
        """The result of :meth:`to_dict`'s output; ``predictions`` is empty (the JSON does
        not hold them), and the derived means and totals are recomputed, not read.

        Raises
        ------
        ValueError
            A field is missing or of the wrong type (named).
        """
        what = "an evaluation"
        accs = _take(d, "accuracy_per_chip", what)
        layers = _take(d, "layers", what)
        if not isinstance(accs, (list, tuple)) or not isinstance(layers, (list, tuple)):
            raise ValueError("accuracy_per_chip and layers must be lists")
        config = _take(d, "config", what)
        if not isinstance(config, Mapping):
            raise ValueError("config must be an object")
        return cls(
            accuracy_per_chip=tuple(_number(a, "accuracy_per_chip") for a in accs),
            predictions=(),
            layers=tuple(LayerResult.from_dict(lay) for lay in layers),
            energy_per_inference_j=EnergyBreakdown.from_dict(
                _take(d, "energy_per_inference_j", what)
            ),
            area_m2=AreaReport.from_dict(_take(d, "area_m2", what)),
            n_samples=_count(_take(d, "n_samples", what), "n_samples"),
            wall_s=_number(_take(d, "wall_s", what), "wall_s"),
            config=config,
            periphery=PeripheryReport.from_dict(_take(d, "periphery", what)),
            sources=_sources(d.get("energy_provenance")),
        )


def _sources(prov: Any) -> Mapping[str, tuple[str, str]]:
    """The ``energy_provenance`` of an evaluation's JSON as :attr:`EvalResult.sources`
    (:data:`ENERGY_SOURCES` where a result written before it has none).

    Raises
    ------
    ValueError
        An entry lacks its source or figures, or names an unknown source.
    """
    if prov is None:
        return ENERGY_SOURCES
    if not isinstance(prov, Mapping):
        raise ValueError("energy_provenance must be an object")
    out = {}
    for k in COMPONENTS:
        e = _take(prov, k, "energy_provenance")
        src, fig = _take(e, "source", f"energy_provenance.{k}"), _take(e, "figures", k)
        if src not in ("spice", "engine", "card") or not isinstance(fig, str):
            raise ValueError(f"energy_provenance.{k} must name spice, engine or card")
        out[k] = (src, fig)
    return out
