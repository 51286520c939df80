"""What the engine simulates: every non-ideality is a switch; "ideal" is its own mode.

``EngineConfig.ideal()`` runs the trained quantized model through the mapping (tiles,
differential columns, bias rows, unipolar columns, partial sums) with exact arithmetic and no
hardware effect at all: it must reproduce :func:`cosim.integer_forward.integer_forward`
bit for bit. ``EngineConfig.nonideal()`` switches everything on; each field can be changed
with :meth:`EngineConfig.with_`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from cosim.errors import CosimError

PARTIAL_SUMS = ("digital", "analog")

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
    batch
        Samples per engine batch (memory/speed trade-off).
    """

    ideal: bool = False
    programming_noise: bool = True
    nvw: float = 0.0
    read_noise: bool = True
    drift_t_s: float | None = None
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

    def __post_init__(self) -> None:
        if self.partial_sums not in PARTIAL_SUMS:
            raise CosimError(
                f"partial_sums = {self.partial_sums!r}; use one of {', '.join(PARTIAL_SUMS)}"
            )
        if not 0.25 <= self.psum_range <= 64:
            raise CosimError(f"psum_range = {self.psum_range} is out of range [0.25, 64]")
        if self.nvw < 0 or self.nva < 0:
            raise CosimError("nvw and nva must be >= 0")
        if self.drift_t_s is not None and self.drift_t_s <= 0:
            raise CosimError("drift time t must be > 0 s")
        if self.chips < 1:
            raise CosimError("--chips must be at least 1")
        if self.batch < 1:
            raise CosimError("batch must be at least 1")
        if self.adc_bits is not None and not 1 <= self.adc_bits <= 8:
            raise CosimError(f"adc_bits = {self.adc_bits} is out of range 1..8")

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
        return {f.name: getattr(self, f.name) for f in fields(self)}
