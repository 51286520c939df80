"""Hardware card to circuit parameters: the one adapter between :mod:`cosim.card` and the
netlist generators (:mod:`netlists`) and device models (:mod:`device_models`), the ADC
architectures' netlist parameters included (SAR and flash).

``netlists`` and ``device_models`` depend on their own frozen parameter objects and NumPy
only (an import contract checks it); every "the card's TIA", "a Monte-Carlo instance of the
card's subtractor" or "the card's device" is built here.

Examples
--------
>>> from cosim.card import load_card
>>> card = load_card()
>>> tia_params(card).r_feedback_ohm == card.tia.r_feedback_ohm
True
>>> sar_adc_params(card).bits == card.adc.bits
True
"""

from __future__ import annotations

import numpy as np

from cosim.card import Card
from cosim.errors import CardError
from device_models import IdealDevice, PcmDevice, RramDevice
from device_models.base import DeviceModel
from netlists.crossbar import CrossbarParams
from netlists.flash_adc import FlashAdcParams, draw_flash_mismatch
from netlists.mac_unit import Layout, MacAnalogParams
from netlists.mismatch import draw_sar_mismatch
from netlists.opamp import OpampParams
from netlists.sar_adc import SarAdcParams
from netlists.subtractor import SubtractorParams
from netlists.tia import TiaParams

_DEVICES: dict[str, type[DeviceModel]] = {
    "pcm": PcmDevice,
    "rram": RramDevice,
    "ideal": IdealDevice,
}


def device_model(card: Card) -> DeviceModel:
    """The device model that ``card.device`` describes (read voltage from the DAC).

    Raises
    ------
    CardError
        The card's device values are out of the model's range (a card that passed its own
        validation never is).
    """
    d = card.device
    cls = _DEVICES[d.technology]
    try:
        return cls(
            level_bits=d.level_bits,
            g_min_s=d.g_min_s,
            g_max_s=d.g_max_s,
            v_read_v=card.dac.v_read_v,
            iv_alpha_per_v=d.iv_alpha_per_v,
            prog_noise_scale=d.prog_noise_scale,
            read_noise_scale=d.read_noise_scale,
            drift_t0_s=d.drift_t0_s,
            drift_nu_mean=d.drift_nu_mean,
            drift_nu_sigma=d.drift_nu_sigma,
            stuck_on_rate=d.stuck_on_rate,
            stuck_off_rate=d.stuck_off_rate,
        )
    except ValueError as exc:
        raise CardError(str(exc)) from None


def crossbar_params(
    card: Card, rows: int | None = None, cols: int | None = None, sense: bool | None = None
) -> CrossbarParams:
    """The card's array (optionally resized to ``rows`` x ``cols``); the sense line as the
    card enables it unless ``sense`` says otherwise."""
    s = card.sense_row.enabled if sense is None else sense
    return CrossbarParams(
        rows=card.array.rows if rows is None else rows,
        cols=card.array.cols if cols is None else cols,
        r_wire_wl_ohm=card.array.r_wire_wl_ohm,
        r_wire_bl_ohm=card.array.r_wire_bl_ohm,
        r_driver_ohm=card.dac.r_out_ohm,
        sense=s,
        g_sense_s=card.sense_row.g_sense_s if s else 0.0,
    )


def opamp_params(card: Card, input_offset_v: float | None = None) -> OpampParams:
    """The card's op-amp; ``input_offset_v`` (V) overrides the characterized instance's."""
    o = card.opamp
    return OpampParams(
        dc_gain_v_per_v=o.dc_gain_v_per_v,
        gbw_hz=o.gbw_hz,
        v_out_min_v=o.v_out_min_v,
        v_out_max_v=o.v_out_max_v,
        input_offset_v=o.input_offset_v if input_offset_v is None else input_offset_v,
        r_out_ohm=o.r_out_ohm,
        i_quiescent_a=o.i_quiescent_a,
    )


def tia_params(card: Card, r_feedback_ohm: float | None = None) -> TiaParams:
    """The card's TIA; ``r_feedback_ohm`` (ohm) overrides its feedback resistance."""
    r = card.tia.r_feedback_ohm if r_feedback_ohm is None else r_feedback_ohm
    return TiaParams(r, opamp_params(card))


def subtractor_params(card: Card) -> SubtractorParams:
    """The card's subtractor: R1 = R3 = r_ohm, R2 = R4 = gain·r_ohm, no mismatch."""
    r, gn = card.subtractor.r_ohm, card.subtractor.gain_v_per_v
    return SubtractorParams(r, gn * r, r, gn * r, opamp_params(card))


def subtractor_sample(card: Card, rng: np.random.Generator) -> SubtractorParams:
    """A Monte-Carlo instance of the card's subtractor: relative resistor mismatch
    ``N(0, mismatch_sigma_rel)`` on each of the four, then the op-amp offset
    ``input_offset_v + N(0, input_offset_sigma_v)`` (V), in that order from ``rng``."""
    r, gn = card.subtractor.r_ohm, card.subtractor.gain_v_per_v
    s = card.subtractor.mismatch_sigma_rel
    vals = np.array([r, gn * r, r, gn * r]) * (1.0 + s * rng.standard_normal(4))
    off = card.opamp.input_offset_v + card.opamp.input_offset_sigma_v * rng.standard_normal()
    r1, r2, r3, r4 = vals  # NumPy float64 scalars, passed on as they are
    return SubtractorParams(r1, r2, r3, r4, opamp_params(card, input_offset_v=float(off)))


def mac_analog_params(
    card: Card, layout: Layout, rows: int | None = None, cols: int | None = None
) -> MacAnalogParams:
    """The card's MAC unit (optionally resized) with outputs ``layout``: pair TIAs of
    feedback ``R_t / gain``, unipolar TIAs of ``R_t``, the sense TIA if the card senses."""
    xb = crossbar_params(card, rows, cols)
    sense = tia_params(card, card.sense_row.r_feedback_ohm) if xb.sense else None
    r_t = card.tia.r_feedback_ohm
    pair = tia_params(card, r_t / card.subtractor.gain_v_per_v)
    return MacAnalogParams(xb, pair, sense, subtractor_params(card), layout, tia_params(card, r_t))


def sar_adc_params(card: Card, bits: int | None = None) -> SarAdcParams:
    """The card's SAR ADC without random mismatch, at ``bits`` (default ``card.adc.bits``);
    offset ``card.adc.comparator_offset_v`` (V).

    Examples
    --------
    >>> from cosim.card import load_card
    >>> p = sar_adc_params(load_card())
    >>> p.c_bits_f[-1] / p.c_unit_f, p.c_half_f / p.c_unit_f
    (128.0, 0.5)
    """
    a = card.adc
    return SarAdcParams.binary_weighted(
        bits=a.bits if bits is None else bits,
        c_unit_f=a.c_unit_f,
        v_ref_v=a.v_ref_v,
        v_dd_v=a.v_dd_v,
        clock_hz=a.clock_hz,
        r_switch_ohm=a.r_switch_ohm,
        c_parasitic_f=a.c_parasitic_f,
        comparator_gain_v_per_v=a.comparator_gain_v_per_v,
        c_comparator_f=a.c_comparator_f,
        c_logic_f=a.c_logic_f,
        comparator_offset_v=a.comparator_offset_v,
    )


def sar_adc_sample(card: Card, rng: np.random.Generator, bits: int | None = None) -> SarAdcParams:
    """A Monte-Carlo instance of the card's ADC: :func:`sar_adc_params` with one
    :func:`netlists.mismatch.draw_sar_mismatch` applied (:meth:`SarAdcParams.with_mismatch`).

    A capacitor of ``m`` unit capacitors (``m = 2**i`` for bit ``i``, 1 for the dummy, 1/2 for
    the half-LSB capacitor) gets a relative error ``N(0, s / sqrt(m))`` with
    ``s = card.adc.cap_mismatch_sigma_rel`` (independent units in parallel); the comparator
    offset is ``comparator_offset_v + N(0, comparator_offset_sigma_v)``. The surrogate's
    :func:`cosim.surrogates.adc.sample_instance` makes the same draws.

    Examples
    --------
    >>> from cosim.card import load_card
    >>> a = sar_adc_sample(load_card(), np.random.default_rng(0))
    >>> a == sar_adc_sample(load_card(), np.random.default_rng(0))
    True
    """
    nom = sar_adc_params(card, bits)
    a = card.adc
    draw = draw_sar_mismatch(rng, nom.bits, a.cap_mismatch_sigma_rel, a.comparator_offset_sigma_v)
    return nom.with_mismatch(draw)


def flash_adc_params(card: Card, bits: int | None = None) -> FlashAdcParams:
    """The card's flash ADC without random mismatch, at ``bits`` (default ``card.adc.bits``):
    a ladder of ``card.adc.ladder_r_total_ohm``, every comparator with
    ``card.adc.comparator_offset_v`` (V).

    Examples
    --------
    >>> from cosim.card import load_card
    >>> p = flash_adc_params(load_card(), 2)
    >>> p.n_comparators, sum(p.r_ladder_ohm) == load_card().adc.ladder_r_total_ohm
    (3, True)
    """
    a = card.adc
    return FlashAdcParams.nominal(
        a.bits if bits is None else bits,
        v_ref_v=a.v_ref_v,
        v_dd_v=a.v_dd_v,
        clock_hz=a.clock_hz,
        r_ladder_total_ohm=a.ladder_r_total_ohm,
        comparator_gain_v_per_v=a.comparator_gain_v_per_v,
        c_comparator_f=a.c_comparator_f,
        c_logic_f=a.c_logic_f,
        comparator_offset_v=a.comparator_offset_v,
    )


def flash_adc_sample(
    card: Card, rng: np.random.Generator, bits: int | None = None
) -> FlashAdcParams:
    """A Monte-Carlo instance of the card's flash ADC: :func:`flash_adc_params` with one
    :func:`netlists.flash_adc.draw_flash_mismatch` applied (ladder resistors with
    ``card.adc.ladder_mismatch_sigma_rel`` per unit, comparator offsets
    ``comparator_offset_v + N(0, comparator_offset_sigma_v)`` each). The surrogate's
    ``FLASH.sample_instance`` makes the same draws.

    Examples
    --------
    >>> from cosim.card import load_card
    >>> a = flash_adc_sample(load_card(), np.random.default_rng(0), 3)
    >>> a == flash_adc_sample(load_card(), np.random.default_rng(0), 3)
    True
    """
    nom = flash_adc_params(card, bits)
    a = card.adc
    draw = draw_flash_mismatch(
        rng, nom.bits, a.ladder_mismatch_sigma_rel, a.comparator_offset_sigma_v
    )
    return nom.with_mismatch(draw)
