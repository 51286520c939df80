"""Monte-Carlo SAR instances around the SPICE-fitted nominal.

:func:`sample_instance` draws an instance's capacitor mismatch and comparator offset with
:func:`netlists.mismatch.draw_sar_mismatch` (the sampler the netlist's
:func:`~cosim.circuits.sar_adc_sample` uses, so equal generator states give the
same instance in SPICE and in the surrogate) and applies them to the fitted nominal with
:func:`with_mismatch`.

Examples
--------
>>> from cosim.surrogates.adc.sar import SarAdcModel
>>> m = with_mismatch(SarAdcModel.ideal(2, 1.0), np.zeros(4), 1e-3)
>>> m.comparator_offset_v
0.001
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np

from cosim.surrogates.adc.checks import check_bits
from cosim.surrogates.adc.sar import SarAdcModel
from cosim.surrogates.adc.storage import pick_nominal
from netlists.mismatch import SarMismatch, draw_sar_mismatch, sar_mismatch_units


def mismatch_units(bits: int) -> np.ndarray:
    """Unit capacitors in each DAC capacitor, in the order of the mismatch draws: the bit
    capacitors (LSB first, ``2**i``), the dummy (1) and the half-LSB capacitor (1/2)
    (:func:`netlists.mismatch.sar_mismatch_units`, after checking ``bits``)."""
    return sar_mismatch_units(check_bits(bits, "bits"))


def with_mismatch(
    nominal: SarAdcModel, cap_rel_err: Any, offset_delta_v: float = 0.0
) -> SarAdcModel:
    """The nominal instance with capacitor errors and an extra comparator offset.

    The fitted nominal determines every capacitor as a fraction of its total top-plate
    capacitance ``C_tot`` (:meth:`netlists.sar_adc.SarAdcParams.analytic_weights`)::

        C_i / C_tot = w_i / V_ref      C_h / C_tot = -shift / V_ref
        C_d / C_tot = gain - sum_i C_i / C_tot      C_p / C_tot = 1 - gain - C_h / C_tot

    Each of the bit, dummy and half-LSB capacitors is scaled by ``1 + cap_rel_err[j]``;
    the parasitic stays; the weights, shift and gain are recomputed with the new total.
    Energy tables and the conversion time are the nominal's.

    Parameters
    ----------
    nominal
        A fitted nominal model (weights, shift and gain of a capacitor array).
    cap_rel_err
        Relative error of each capacitor, shape ``(bits + 2,)`` in the order of
        :func:`mismatch_units`.
    offset_delta_v
        Added to the nominal comparator offset (V).

    Raises
    ------
    ValueError
        A model whose implied dummy or half-LSB capacitor is not positive, or errors that
        make a capacitor non-positive.
    """
    n = nominal.bits
    e = np.asarray(cap_rel_err, dtype=float).reshape(-1)
    if e.shape != (n + 2,) or not np.all(np.isfinite(e)):
        raise ValueError(f"cap_rel_err must hold {n + 2} finite values (bits, dummy, half)")
    v = nominal.v_ref_v
    x = nominal.bit_weights_v / v
    h = -nominal.shift_v / v
    d = nominal.input_gain - float(np.sum(x))
    p = 1.0 - nominal.input_gain - h
    if d <= 0 or h <= 0:
        raise ValueError(
            "the nominal model does not describe a capacitor array (implied dummy "
            f"{d:.3g} and half-LSB {h:.3g} fractions of C_tot must be > 0)"
        )
    xm = x * (1.0 + e[:n])
    dm = d * (1.0 + e[n])
    hm = h * (1.0 + e[n + 1])
    if np.any(xm <= 0) or dm <= 0 or hm <= 0:
        raise ValueError("a capacitor error <= -100 % makes a capacitor non-positive")
    ct = float(np.sum(xm)) + dm + hm + p
    return replace(
        nominal,
        bit_weights_v=v * xm / ct,
        shift_v=-v * hm / ct,
        input_gain=(float(np.sum(xm)) + dm) / ct,
        comparator_offset_v=nominal.comparator_offset_v + float(offset_delta_v),
    )


def sample_instance(
    nominal: SarAdcModel | Mapping[int, SarAdcModel],
    card: Any,
    rng: np.random.Generator,
    bits: int | None = None,
) -> SarAdcModel:
    """A Monte-Carlo ADC instance around the SPICE-fitted nominal at one resolution.

    The draws are :func:`netlists.mismatch.draw_sar_mismatch`'s, which
    :func:`cosim.circuits.sar_adc_sample` makes too (so the same generator state
    gives the same instance as the netlist's; :func:`sample_instance_draw` returns the
    draw as well, to build both from one call): a capacitor of
    ``m`` unit capacitors (:func:`mismatch_units`) gets a relative error
    ``N(0, card.adc.cap_mismatch_sigma_rel / sqrt(m))``; the comparator offset is the
    nominal's fitted offset ``+ N(0, card.adc.comparator_offset_sigma_v)``. They are applied
    to the fitted nominal by :func:`with_mismatch`, so the instance keeps the nominal's
    SPICE-measured input gain and parasitic attenuation and its energy tables.

    Why this is faithful: the top plate of the charge-redistribution DAC is a capacitive
    divider, linear in the capacitors, so an instance differs from the nominal only through
    the capacitor ratios, which mismatch scales, and the comparator offset. The SPICE fits
    of weights, shift and gain agree with the capacitor ratios
    (``SarAdcParams.analytic_weights``) to a few 1e-6 relative (switch leakage; 1.8e-6 at
    most over the nominal at every resolution and the Monte-Carlo instances of the default
    card's quick characterization), and everything the ratios do not capture (the parasitic
    attenuation, the measured offset and energies) is taken from the fitted nominal.
    :func:`~cosim.characterize.adc.characterize_adc` checks both each run:
    ``analytic_weights_max_rel_error``, and each SPICE Monte-Carlo instance rebuilt by
    :func:`with_mismatch` from the fitted nominal and that instance's draws, against its
    SPICE fit (``sample_instance_weights_max_rel_error``, 1.1e-6) and its held-out SPICE
    codes (``sample_instance_code_agreement``, 1.0).

    Parameters
    ----------
    nominal
        The fitted nominal model at the wanted resolution, or the table of
        :func:`models_by_bits` (then ``bits`` picks one; default ``card.adc.bits``).
    card
        The hardware card (``card.adc`` gives the mismatch and offset sigmas).
    rng
        Source of the draws (one instance per call).
    bits
        Resolution; with a single model it must be that model's (default).

    Examples
    --------
    >>> from cosim.card import load_card
    >>> nom = SarAdcModel.ideal(3, 1.0)
    >>> a = sample_instance(nom, load_card(), np.random.default_rng(1))
    >>> b = sample_instance(nom, load_card(), np.random.default_rng(1))
    >>> bool(np.all(a.bit_weights_v == b.bit_weights_v)), a.bits
    (True, 3)
    """
    return sample_instance_draw(nominal, card, rng, bits)[0]


def sample_instance_draw(
    nominal: SarAdcModel | Mapping[int, SarAdcModel],
    card: Any,
    rng: np.random.Generator,
    bits: int | None = None,
) -> tuple[SarAdcModel, SarMismatch]:
    """:func:`sample_instance` and the draw it applied (for the netlist's instance:
    ``cosim.circuits.sar_adc_params(card, model.bits).with_mismatch(draw)``)."""
    nominal = pick_nominal(
        nominal,
        card,
        bits,
        noun="model",
        hint=" (models_by_bits(extra)[bits])",
        check_bits=check_bits,
    )
    a = card.adc
    draw = draw_sar_mismatch(
        rng, nominal.bits, a.cap_mismatch_sigma_rel, a.comparator_offset_sigma_v
    )
    return with_mismatch(nominal, draw.cap_rel_err, draw.offset_delta_v), draw
