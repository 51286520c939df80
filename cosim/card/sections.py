"""The sections of a hardware card, one frozen dataclass per TOML table.

Every field is a float or int in SI units with its unit in the name, declared with its
allowed range and documentation (:mod:`cosim.card.fields`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from cosim.card.fields import ADDED_KEYS, RegisteredAdcs, Section, choice, ranged
from cosim.converters import adc_max_bits
from cosim.errors import CardError


@dataclass(frozen=True)
class DeviceCard(Section):
    """The NVM device technology and its non-idealities."""

    SECTION: ClassVar[str] = "device"
    technology: str = choice(("pcm", "rram", "ideal"), "device model family")
    level_bits: int = ranged(1, 8, "programmable conductance levels = 2**level_bits")
    g_min_s: float = ranged(0.0, 1e-3, "lowest programmable conductance (S)")
    g_max_s: float = ranged(0.0, 1e-3, "highest programmable conductance (S)", lo_open=True)
    prog_noise_scale: float = ranged(0.0, 10.0, "multiplier on the programming-noise model")
    read_noise_scale: float = ranged(0.0, 10.0, "multiplier on the read-noise model")
    drift_t0_s: float = ranged(
        0.0, 1e9, "time after programming at which G equals its target (s)", lo_open=True
    )
    drift_nu_mean: float = ranged(
        0.0, 0.5, "mean drift exponent nu (RRAM/ideal; PCM uses its model)"
    )
    drift_nu_sigma: float = ranged(0.0, 0.5, "device-to-device sigma of nu")
    iv_alpha_per_v: float = ranged(
        0.0, 20.0, "I-V nonlinearity I = G*Vr*sinh(a V)/sinh(a Vr) (1/V)"
    )
    stuck_on_rate: float = ranged(0.0, 0.5, "fraction of devices stuck at g_max")
    stuck_off_rate: float = ranged(0.0, 0.5, "fraction of devices stuck at g_min")

    def __post_init__(self) -> None:
        if self.g_min_s >= self.g_max_s:
            raise CardError(
                f"device.g_min_s = {self.g_min_s:g} must be below device.g_max_s = {self.g_max_s:g}"
            )
        if self.stuck_on_rate + self.stuck_off_rate > 0.5:
            raise CardError("device.stuck_on_rate + device.stuck_off_rate must not exceed 0.5")


@dataclass(frozen=True)
class ArrayCard(Section):
    """Crossbar geometry and wire parasitics. Inputs drive wordlines (rows); outputs are
    bitline (column) currents into virtual-ground TIAs at the bottom of each column."""

    SECTION: ClassVar[str] = "array"
    rows: int = ranged(2, 1024, "wordlines per crossbar tile, bias rows included")
    cols: int = ranged(2, 1024, "bitlines per crossbar tile (a differential pair uses two)")
    bias_rows: int = ranged(0, 16, "rows reserved for the bias, driven at the DAC full scale")
    r_wire_wl_ohm: float = ranged(0.0, 1e3, "wordline resistance per cell segment (ohm)")
    r_wire_bl_ohm: float = ranged(0.0, 1e3, "bitline resistance per cell segment (ohm)")

    def __post_init__(self) -> None:
        if self.bias_rows >= self.rows:
            raise CardError("array.bias_rows must be smaller than array.rows")


@dataclass(frozen=True)
class DacCard(Section):
    """Input DACs driving the wordlines."""

    SECTION: ClassVar[str] = "dac"
    bits: int = ranged(1, 12, "DAC resolution (bits)")
    v_read_v: float = ranged(
        0.0, 2.0, "full-scale read voltage: code k gives k/2**bits of it (V)", lo_open=True
    )
    r_out_ohm: float = ranged(0.0, 1e5, "driver output resistance (ohm)")
    e_conv_j: float = ranged(0.0, 1e-9, "energy per DAC conversion, from the DAC design (J)")
    area_m2: float = ranged(0.0, 1e-6, "area of one DAC (m^2)")


@dataclass(frozen=True)
class OpampCard(Section):
    """Op-amp macro-model shared by the TIA, the subtractor and the sense-row TIA."""

    SECTION: ClassVar[str] = "opamp"
    dc_gain_v_per_v: float = ranged(10.0, 1e9, "open-loop DC gain (V/V)")
    gbw_hz: float = ranged(1e3, 1e12, "gain-bandwidth product (Hz)")
    v_supply_pos_v: float = ranged(0.0, 10.0, "positive rail (V)", lo_open=True)
    v_supply_neg_v: float = ranged(-10.0, 0.0, "negative rail (V)")
    swing_margin_v: float = ranged(0.0, 2.0, "output saturates this far inside the rails (V)")
    input_offset_v: float = ranged(-0.1, 0.1, "input offset of the characterized instance (V)")
    input_offset_sigma_v: float = ranged(0.0, 0.1, "instance-to-instance offset sigma (V)")
    r_out_ohm: float = ranged(0.0, 1e6, "output resistance (ohm)")
    i_quiescent_a: float = ranged(0.0, 1e-2, "quiescent supply current (A)")

    def __post_init__(self) -> None:
        span = self.v_supply_pos_v - self.v_supply_neg_v
        if 2 * self.swing_margin_v >= span:
            raise CardError("opamp.swing_margin_v leaves no output swing between the rails")

    @property
    def v_out_max_v(self) -> float:
        return self.v_supply_pos_v - self.swing_margin_v

    @property
    def v_out_min_v(self) -> float:
        return self.v_supply_neg_v + self.swing_margin_v


@dataclass(frozen=True)
class TiaCard(Section):
    """Transimpedance amplifier at the bottom of each bitline, and the per-layer tuning
    periphery of a design whose layers each have their own ranges.

    ``tuning_*``: a per-layer tuned (traditional) design gives every layer its own ADC
    reference and DAC full scale (García-Redondo et al., Fig. 5, top). Each is a reference
    level set by a trim DAC and driven by an op-amp buffer; one set serves a shared-periphery
    design too, so a design of ``L`` hidden layers adds ``L - 1`` sets. The figures are the
    card's own: a buffer is the op-amp of :class:`OpampCard` (its quiescent power, biased for
    the whole inference: a reference buffer is not powered up and settled within one read
    window) with the area of one TIA, a trim DAC has the area of one input DAC. Read only
    when an evaluation asks for it (``EngineConfig.layer_tuning``)."""

    SECTION: ClassVar[str] = "tia"
    r_feedback_ohm: float = ranged(
        1.0, 1e9, "output transimpedance R_t: unipolar TIA feedback (ohm)"
    )
    t_read_s: float = ranged(
        0.0, 1e-3, "read (settle + sample) window of one MAC (s)", lo_open=True
    )
    area_m2: float = ranged(0.0, 1e-6, "area of one TIA (m^2)")
    tuning_buffers_per_layer: int = ranged(
        0,
        16,
        "per-layer tuned periphery: reference buffers each layer adds beyond the one global "
        "set (its ADC reference and its DAC full scale), each an op-amp (opamp quiescent "
        "power, biased for the whole inference; area tia.area_m2)",
        default=ADDED_KEYS[("tia", "tuning_buffers_per_layer")],
    )
    tuning_dacs_per_layer: int = ranged(
        0,
        16,
        "per-layer tuned periphery: trim DACs that set those references (area dac.area_m2 "
        "each; static, no conversion energy)",
        default=ADDED_KEYS[("tia", "tuning_dacs_per_layer")],
    )


@dataclass(frozen=True)
class SubtractorCard(Section):
    """Four-resistor differential amplifier: V_out = gain·(V_pos − V_neg) for a differential
    pair. Part of the transimpedance sits here so that the pair's column TIAs (feedback
    ``tia.r_feedback_ohm / gain``) keep headroom for single-ended currents far larger than
    their difference."""

    SECTION: ClassVar[str] = "subtractor"
    r_ohm: float = ranged(10.0, 1e9, "input resistors R1 = R3 (ohm); R2 = R4 = gain * r_ohm")
    gain_v_per_v: float = ranged(1.0, 100.0, "differential gain; pair TIAs use r_feedback / gain")
    mismatch_sigma_rel: float = ranged(0.0, 0.1, "relative sigma of each resistor")
    area_m2: float = ranged(0.0, 1e-6, "area of one subtractor (m^2)")


@dataclass(frozen=True)
class AdcCard(Section):
    """The column ADC: its architecture (a registered plug-in, :mod:`cosim.converters`;
    ``"sar"``: charge-redistribution SAR with a binary-weighted capacitor DAC; ``"flash"``:
    resistor ladder and ``2**bits - 1`` comparators, 1-4 bits) and its design values. The
    capacitor and switch keys are the SAR's, the ladder keys the flash's; comparator, clock,
    supply and reference keys serve both."""

    SECTION: ClassVar[str] = "adc"
    architecture: str = field(
        default="sar",
        kw_only=True,
        metadata={"choices": RegisteredAdcs(), "doc": "ADC architecture (registered plug-in)"},
    )
    bits: int = ranged(1, 8, "resolution (bits)")
    v_ref_v: float = ranged(0.0, 5.0, "reference = full-scale input (V)", lo_open=True)
    v_dd_v: float = ranged(0.0, 5.0, "digital/comparator supply (V)", lo_open=True)
    clock_hz: float = ranged(
        1e3, 1e10, "ADC clock; a SAR conversion takes bits + 2 cycles, a flash one 2 (Hz)"
    )
    c_unit_f: float = ranged(1e-18, 1e-9, "unit capacitor of the DAC (F)")
    c_parasitic_f: float = ranged(0.0, 1e-9, "parasitic capacitance on the DAC top plate (F)")
    cap_mismatch_sigma_rel: float = ranged(0.0, 0.2, "relative sigma of one unit capacitor")
    comparator_offset_v: float = ranged(-0.1, 0.1, "comparator offset of the nominal instance (V)")
    comparator_offset_sigma_v: float = ranged(0.0, 0.1, "instance-to-instance offset sigma (V)")
    comparator_gain_v_per_v: float = ranged(10.0, 1e9, "comparator small-signal gain (V/V)")
    c_comparator_f: float = ranged(0.0, 1e-9, "switched capacitance per comparison (F)")
    c_logic_f: float = ranged(0.0, 1e-9, "switched logic capacitance per active SAR cycle (F)")
    r_switch_ohm: float = ranged(1e-3, 1e9, "on-resistance of the DAC switches (ohm)")
    columns_per_adc: int = ranged(1, 1024, "columns time-multiplexed onto one ADC")
    area_m2: float = ranged(0.0, 1e-6, "area of one ADC (m^2)")
    ladder_r_total_ohm: float = ranged(
        1.0,
        1e9,
        "flash: resistance of the whole reference ladder, 2**bits units (ohm)",
        default=ADDED_KEYS[("adc", "ladder_r_total_ohm")],
    )
    ladder_mismatch_sigma_rel: float = ranged(
        0.0,
        0.2,
        "flash: relative sigma of one unit ladder resistor",
        default=ADDED_KEYS[("adc", "ladder_mismatch_sigma_rel")],
    )
    e_conv_j: float = ranged(
        0.0,
        1e-9,
        "energy of one full conversion at adc.bits, replacing the SPICE-characterized "
        "energy (0 = not set: the library's simulated energy); a b-bit conversion costs "
        "e_conv_j * 2**(b - adc.bits) (constant energy per conversion step, the Walden "
        "figure of merit) and each of its b SAR cycles an equal share, so k skipped cycles "
        "save k/b of it (J)",
        default=ADDED_KEYS[("adc", "e_conv_j")],
    )

    def __post_init__(self) -> None:
        limit = adc_max_bits(self.architecture)
        if limit is not None and self.bits > limit:
            raise CardError(
                f"adc.bits = {self.bits} is above the {limit} bits an adc.architecture = "
                f"{self.architecture!r} converter is built for; lower adc.bits or use another "
                "architecture"
            )


@dataclass(frozen=True)
class SenseRowCard(Section):
    """Sparsity-sensing line: devices at a fixed conductance on every row, with its own TIA;
    its output bounds every column's output so the ADC can skip MSB cycles known to be 0."""

    SECTION: ClassVar[str] = "sense_row"
    enabled: bool = field(metadata={"doc": "build the sense row and use it"})
    g_sense_s: float = ranged(0.0, 1e-3, "conductance of every sense device (S)", lo_open=True)
    r_feedback_ohm: float = ranged(1.0, 1e10, "sense TIA feedback resistance (ohm)")
    max_skip_bits: int = ranged(0, 7, "most MSB cycles a conversion may skip")
    margin_rel: float = ranged(0.0, 0.5, "extra relative margin on the thresholds beyond SPICE's")
    offset_n_sigma: float = ranged(
        0.0, 10.0, "random op-amp offsets the thresholds allow for (sigmas)"
    )
    c_comparator_f: float = ranged(0.0, 1e-9, "switched capacitance per threshold comparison (F)")
    area_m2: float = ranged(0.0, 1e-6, "area of the sense TIA and its comparators (m^2)")


@dataclass(frozen=True)
class DigitalCard(Section):
    """Digital periphery that SPICE does not simulate (adders, buffers, control)."""

    SECTION: ClassVar[str] = "digital"
    e_add_j: float = ranged(0.0, 1e-9, "energy of one partial-sum addition (J)")
    e_activation_j: float = ranged(0.0, 1e-9, "energy to buffer/pool one activation (J)")
    area_per_column_m2: float = ranged(0.0, 1e-6, "digital area per output column (m^2)")


@dataclass(frozen=True)
class AreaCard(Section):
    """Per-component areas not attached to another section."""

    SECTION: ClassVar[str] = "area"
    device_cell_m2: float = ranged(0.0, 1e-6, "one crossbar cell (device + access) (m^2)")


SECTIONS: dict[str, type[Section]] = {
    c.SECTION: c
    for c in (
        DeviceCard,
        ArrayCard,
        DacCard,
        OpampCard,
        TiaCard,
        SubtractorCard,
        AdcCard,
        SenseRowCard,
        DigitalCard,
        AreaCard,
    )
}
