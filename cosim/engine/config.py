"""What the engine simulates: every non-ideality is a switch; "ideal" is its own mode.

``EngineConfig.ideal()`` runs the trained quantized model through the mapping (tiles,
differential columns, bias rows, unipolar columns, partial sums) with exact arithmetic and no
hardware effect at all: it must reproduce :func:`cosim.model.forward.integer_forward`
bit for bit. ``EngineConfig.nonideal()`` switches everything on; each field can be changed
with :meth:`EngineConfig.with_`.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, fields, replace
from typing import Any

from cosim.errors import CosimError

PARTIAL_SUMS = ("digital", "analog")
#: ``drift_compensation`` settings (:mod:`cosim.engine.compensation`): none, one digital
#: scale per layer, one per output column
DRIFT_COMPENSATION = ("none", "global", "column")

#: Documented ranges of the numeric settings, shared by the CLI flags, ``--sweep`` and
#: :class:`EngineConfig` itself: (low, high, low end excluded). ``nvw``/``nva`` of 1 is a
#: sigma of the whole conductance range / reference voltage (Bao et al. sweep to 0.3);
#: drift times run up to 10 years.
LIMITS: dict[str, tuple[float, float, bool]] = {
    "nvw": (0.0, 1.0, False),
    "nva": (0.0, 1.0, False),
    "drift_t_s": (0.0, 3.2e8, True),
    "adc_bits": (1, 8, False),
    "psum_range": (0.25, 64.0, False),
    "chips": (1, 10_000, False),
    "batch": (1, 1_000_000, False),
}


def check_limit(name: str, value: float, flag: str | None = None) -> None:
    """Raise :class:`CosimError` unless ``value`` is finite and inside ``LIMITS[name]``.

    Examples
    --------
    >>> check_limit("nvw", 0.1)
    >>> check_limit("nvw", float("nan"))
    Traceback (most recent call last):
    ...
    cosim.errors.CosimError: nvw = nan must be a finite number in [0, 1]
    """
    lo, hi, lo_open = LIMITS[name]
    rng = f"{'(' if lo_open else '['}{lo:g}, {hi:g}]"
    ok = (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and (lo < value if lo_open else lo <= value)
        and value <= hi
    )
    if not ok:
        raise CosimError(f"{flag or name} = {value} must be a finite number in {rng}")


#: Every hardware switch off: the analog path with ideal devices, wires, periphery and
#: converters (Bao et al. vary one effect at a time from here). Not the ideal mode: the
#: voltages are still computed and converted.
EFFECTS_OFF: dict[str, bool] = {
    "programming_noise": False,
    "read_noise": False,
    "stuck_faults": False,
    "ir_drop": False,
    "nonlinearity": False,
    "periphery": False,
    "adc": False,
    "sense_skip": False,
}

#: The effects ``cosim evaluate`` switches off one by one (``--no-FLAG``): flag, the
#: :class:`EngineConfig` field, what it models.
EFFECT_SWITCHES = (
    ("programming-noise", "programming_noise", "device programming variation"),
    ("read-noise", "read_noise", "per-read conductance noise"),
    ("stuck-faults", "stuck_faults", "stuck-at-on/off devices"),
    ("ir-drop", "ir_drop", "wire resistance (crossbar surrogate)"),
    ("nonlinearity", "nonlinearity", "device I-V nonlinearity"),
    ("periphery", "periphery", "TIA/subtractor gain error, offsets, saturation"),
    ("adc-mismatch", "adc", "ADC capacitor mismatch and comparator offset"),
    ("sense-skip", "sense_skip", "sparsity-aware MSB skipping"),
)


@dataclass(frozen=True)
class EngineConfig:
    """Switches and parameters of one evaluation.

    Parameters
    ----------
    ideal
        Exact arithmetic through the mapping, no hardware effect (all other switches are
        ignored). Bit-exact with the trained quantized model.
    programming_noise
        Device programming variation of the card's technology model (per device and chip).
    nvw
        Extra normalized Gaussian weight variation (Bao et al.): sigma = nvw·(g_max − g_min),
        per device and chip instance; 0 adds none.
    read_noise
        Per-read conductance noise of the device model.
    drift_t_s
        Time since programming (s) for conductance drift; ``None``: no drift.
    drift_compensation
        ``"none"`` (default); ``"global"``: after drift, a calibration read of known inputs
        gives one digital scale per layer, applied to the codes after conversion;
        ``"column"``: one scale per output column (:mod:`cosim.engine.compensation`).
        Does nothing without drift (``drift_t_s`` ``None``) or in ideal mode.
    stuck_faults
        Stuck-at-on/off devices at the card's rates.
    ir_drop
        Wire resistance through the fitted crossbar surrogate (off: ideal ΣG·s(V)).
    nonlinearity
        Device I–V nonlinearity (off: ohmic devices).
    periphery
        TIA and subtractor surrogates with gain error, per-instance offsets and saturation
        (off: ideal transimpedance and exact subtraction).
    adc
        Fitted SAR ADC surrogate with per-instance mismatch and comparator offset (off: ideal
        quantizer).
    nva
        Bao et al.'s comparison-level variation of the ADC: each comparison level of each
        ADC instance's SAR search moves by N(0, nva·V_ref); 0 adds none. Used instead of
        the physical ADC instances when > 0.
    sense_skip
        Sparsity-aware conversion: the sense row's thresholds decide how many MSB cycles
        each conversion skips.
    adc_bits
        Convert at this resolution instead of the output grid's (the codes are then
        re-expressed on the output grid); ``None``: the output grid's bits.
    partial_sums
        ``"digital"``: each row tile of a layer is converted on its own (signed, offset-binary
        around half scale) and the codes are added digitally, then re-quantized to the Y
        grid; ``"analog"``: the row tiles' bitline currents meet at one TIA per column and
        are converted once.
    psum_range
        Digital partial sums: each row tile's conversion spans ``±psum_range·hi`` (the
        transimpedance is ``R_t / (2·psum_range)`` around half scale).
    chips
        Monte-Carlo chip instances (each with its own variation draws).
    seed
        Seed of every random draw.
    layer_tuning
        Count the per-layer tuned periphery of a dedicated-periphery (per-layer quantized)
        model: the reference buffers and trim DACs of the card's ``tia.tuning_*`` for every
        hidden layer beyond the first (:func:`cosim.engine.costs.layer_tuning`), in the area
        (``layer_tuning`` of the breakdown, and ``total_dedicated_m2``) and in the energy
        (the ``layer_tuning`` component). Refused for global models (one shared bank).
    batch
        Samples per engine batch: memory against speed only, never the result (read noise
        and products are keyed to fixed blocks of samples; the batch is rounded to whole
        blocks, and a batch far below a block pads and runs slower).
    """

    ideal: bool = False
    programming_noise: bool = True
    nvw: float = 0.0
    read_noise: bool = True
    drift_t_s: float | None = None
    drift_compensation: str = "none"
    stuck_faults: bool = True
    ir_drop: bool = True
    nonlinearity: bool = True
    periphery: bool = True
    adc: bool = True
    nva: float = 0.0
    sense_skip: bool = True
    adc_bits: int | None = None
    partial_sums: str = "digital"
    psum_range: float = 2.0
    chips: int = 1
    seed: int = 0
    batch: int = 1000
    layer_tuning: bool = False

    def __post_init__(self) -> None:
        if self.partial_sums not in PARTIAL_SUMS:
            raise CosimError(
                f"partial_sums = {self.partial_sums!r}; use one of {', '.join(PARTIAL_SUMS)}"
            )
        if self.drift_compensation not in DRIFT_COMPENSATION:
            raise CosimError(
                f"drift_compensation = {self.drift_compensation!r}; "
                f"use one of {', '.join(DRIFT_COMPENSATION)}"
            )
        for name in ("psum_range", "nvw", "nva", "chips", "batch"):
            check_limit(name, getattr(self, name))
        if self.drift_t_s is not None:
            check_limit("drift_t_s", self.drift_t_s, "drift time t (s)")
        if self.adc_bits is not None:
            check_limit("adc_bits", self.adc_bits)
        if isinstance(self.seed, bool) or not isinstance(self.seed, numbers.Integral):
            raise CosimError(f"seed = {self.seed!r} must be an integer in 0..2**32-1")
        if not 0 <= self.seed < 2**32:
            raise CosimError(f"seed = {self.seed} must be an integer in 0..2**32-1")

    @classmethod
    def ideal_mode(cls, **kw: Any) -> EngineConfig:
        """The explicit ideal mode."""
        return cls(ideal=True, **kw)

    @classmethod
    def nonideal(cls, **kw: Any) -> EngineConfig:
        """Every non-ideality on (the default)."""
        return cls(**kw)

    def with_(self, **kw: Any) -> EngineConfig:
        """A copy with some fields changed (unknown names are an error)."""
        known = {f.name for f in fields(self)}
        bad = sorted(set(kw) - known)
        if bad:
            raise CosimError(
                f"unknown engine setting '{bad[0]}'; known: {', '.join(sorted(known))}"
            )
        return replace(self, **kw)

    def describe(self) -> dict[str, Any]:
        """Every setting by name; ``layer_tuning`` only when on (it came later: the settings,
        and the cache keys made from them, of evaluations without it stay as they were)."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        if not self.layer_tuning:
            del d["layer_tuning"]
        return d
