"""The flash ADC's parameters: resistor ladder, comparators, timing, energy elements, their
checks, and the one sampler of an instance's mismatch (see :mod:`netlists.flash_adc`; the
timing fractions and the checks are the SAR's, in :mod:`netlists.adc_common`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from netlists.adc_common import AdcParamsBase, check_bits, check_gain, check_pos
from netlists.mismatch import check_sigmas, pelgrom_errors

MIN_BITS = 1
#: The most bits a flash converter is built for: ``2**4 - 1 = 15`` comparators (at 1-4 bit
#: activations a converter can be a few comparators; beyond that use the SAR).
MAX_BITS = 4

_OWNER = "FlashAdcParams"


def ladder_units(bits: int) -> np.ndarray:
    """Unit resistors in each of the ``2**bits`` ladder resistors, bottom (ground) first, in
    the order of the mismatch draws: ``1/2``, ``2**bits - 2`` ones, ``3/2`` (``2**bits``
    units in all).

    The half unit at the bottom puts tap ``k`` at ``(k - 1/2) LSB``: the ideal transfer
    ``clip(floor(v / LSB + 1/2), 0, 2**bits - 1)`` of :mod:`cosim.quant`.

    Examples
    --------
    >>> ladder_units(2).tolist()
    [0.5, 1.0, 1.0, 1.5]
    """
    n = int(bits)
    return np.array([0.5] + [1.0] * (2**n - 2) + [1.5])


@dataclass(frozen=True)
class FlashMismatch:
    """One flash instance's random deviations from its nominal design.

    Parameters
    ----------
    r_rel_err
        Relative error of each ladder resistor, ``(2**bits,)``, in the order of
        :func:`ladder_units` (read-only).
    offset_delta_v
        Offset added to each comparator's nominal offset, ``(2**bits - 1,)`` (V; comparator
        ``k = 1 ..`` at index ``k - 1``; read-only).
    """

    r_rel_err: np.ndarray
    offset_delta_v: np.ndarray

    @property
    def bits(self) -> int:
        """Resolution the draw was made for."""
        return int(self.r_rel_err.size).bit_length() - 1


def draw_flash_mismatch(
    rng: np.random.Generator, bits: int, r_sigma_rel: float, offset_sigma_v: float
) -> FlashMismatch:
    """Draw one flash instance's ladder errors and comparator offsets.

    Draw order (fixed: changing it changes every seeded Monte-Carlo instance):
    ``2**bits`` standard normals, one per ladder resistor in the order of
    :func:`ladder_units` (a resistor of ``m`` units gets ``z * r_sigma_rel / sqrt(m)``,
    Pelgrom: independent units in series), then ``2**bits - 1`` standard normals, one per
    comparator from the bottom, times ``offset_sigma_v``.

    Parameters
    ----------
    rng
        Source of the draws; advanced by exactly ``2**(bits + 1) - 1`` standard normals.
    bits
        Resolution of the instance.
    r_sigma_rel
        Relative sigma of one unit resistor (``adc.ladder_mismatch_sigma_rel``).
    offset_sigma_v
        Instance-to-instance comparator offset sigma (V; ``adc.comparator_offset_sigma_v``).

    Examples
    --------
    >>> d = draw_flash_mismatch(np.random.default_rng(0), 2, 0.01, 1e-3)
    >>> d.r_rel_err.shape, d.offset_delta_v.shape, d.bits
    ((4,), (3,), 2)
    """
    check_sigmas(r_sigma_rel=r_sigma_rel, offset_sigma_v=offset_sigma_v)
    err = pelgrom_errors(rng, ladder_units(bits), r_sigma_rel)
    d_os = rng.standard_normal(2 ** int(bits) - 1) * float(offset_sigma_v)
    err.setflags(write=False)
    d_os.setflags(write=False)
    return FlashMismatch(err, d_os)


@dataclass(frozen=True)
class FlashAdcParams(AdcParamsBase):
    """One flash ADC instance: design values from the card plus its ladder/offset draws.

    Parameters
    ----------
    bits
        Resolution N, 1..4 (:data:`MAX_BITS`).
    v_ref_v
        Reference voltage = full scale; the top of the ladder (V).
    v_dd_v
        Logic/comparator supply (V).
    clock_hz
        Clock (Hz); a conversion takes 2 periods (:attr:`cycles_per_conversion`).
    r_ladder_total_ohm
        Nominal resistance of the whole ladder, ``2**bits`` units (ohm).
    comparator_gain_v_per_v
        Small-signal gain of every comparator (V/V).
    c_comparator_f
        Capacitance each enabled comparator switches per conversion (F).
    c_logic_f
        Capacitance the registers and encoder switch per conversion (F).
    r_ladder_ohm
        Realized ladder resistors, bottom first, ``2**bits`` values in the order of
        :func:`ladder_units` (ohm).
    comparator_offsets_v
        Realized offset of comparator ``k = 1 .. 2**bits - 1`` at index ``k - 1`` (V): it
        reads 1 when ``v(vin) - v(tap_k) > offset``.
    """

    bits: int
    v_ref_v: float
    v_dd_v: float
    clock_hz: float
    r_ladder_total_ohm: float
    comparator_gain_v_per_v: float
    c_comparator_f: float
    c_logic_f: float
    r_ladder_ohm: tuple[float, ...]
    comparator_offsets_v: tuple[float, ...]

    def __post_init__(self) -> None:
        n = check_bits(_OWNER, self.bits, MIN_BITS, MAX_BITS)
        object.__setattr__(self, "bits", n)
        for name in ("v_ref_v", "v_dd_v", "clock_hz", "r_ladder_total_ohm"):
            object.__setattr__(self, name, check_pos(_OWNER, name, getattr(self, name)))
        for name in ("c_comparator_f", "c_logic_f"):
            object.__setattr__(
                self, name, check_pos(_OWNER, name, getattr(self, name), lo_open=False)
            )
        g = check_gain(_OWNER, self.comparator_gain_v_per_v)
        object.__setattr__(self, "comparator_gain_v_per_v", g)
        rs = tuple(float(r) for r in np.asarray(self.r_ladder_ohm, dtype=float).reshape(-1))
        if len(rs) != 2**n:
            raise ValueError(
                f"FlashAdcParams.r_ladder_ohm has {len(rs)} values; bits = {n} needs "
                f"{2**n} (bottom first)"
            )
        for i, r in enumerate(rs):
            check_pos(_OWNER, f"r_ladder_ohm[{i}]", r)
        object.__setattr__(self, "r_ladder_ohm", rs)
        os_ = tuple(
            float(x) for x in np.asarray(self.comparator_offsets_v, dtype=float).reshape(-1)
        )
        if len(os_) != 2**n - 1:
            raise ValueError(
                f"FlashAdcParams.comparator_offsets_v has {len(os_)} values; bits = {n} "
                f"needs {2**n - 1}"
            )
        for i, x in enumerate(os_):
            if not math.isfinite(x) or abs(x) > self.v_ref_v:
                raise ValueError(
                    f"FlashAdcParams.comparator_offsets_v[{i}] = {x!r} must be finite and "
                    f"within +-v_ref_v = {self.v_ref_v:g} V"
                )
        object.__setattr__(self, "comparator_offsets_v", os_)

    # -- constructors -------------------------------------------------------------------
    @classmethod
    def nominal(
        cls,
        bits: int,
        *,
        v_ref_v: float,
        v_dd_v: float,
        clock_hz: float,
        r_ladder_total_ohm: float,
        comparator_gain_v_per_v: float,
        c_comparator_f: float,
        c_logic_f: float,
        comparator_offset_v: float,
    ) -> FlashAdcParams:
        """The design without mismatch: ladder resistors of ``r_ladder_total_ohm / 2**bits``
        units (:func:`ladder_units`), every comparator with ``comparator_offset_v`` (V).
        :func:`cosim.circuits.flash_adc_params` gives the card's.

        Examples
        --------
        >>> p = FlashAdcParams.nominal(
        ...     2, v_ref_v=1.0, v_dd_v=1.0, clock_hz=1e8, r_ladder_total_ohm=8e3,
        ...     comparator_gain_v_per_v=1e4, c_comparator_f=0.0, c_logic_f=0.0,
        ...     comparator_offset_v=0.0)
        >>> p.r_ladder_ohm, p.tap_voltages_v().tolist()
        ((1000.0, 2000.0, 2000.0, 3000.0), [0.125, 0.375, 0.625])
        """
        unit = r_ladder_total_ohm / 2 ** int(bits)
        return cls(
            bits=bits,
            v_ref_v=v_ref_v,
            v_dd_v=v_dd_v,
            clock_hz=clock_hz,
            r_ladder_total_ohm=r_ladder_total_ohm,
            comparator_gain_v_per_v=comparator_gain_v_per_v,
            c_comparator_f=c_comparator_f,
            c_logic_f=c_logic_f,
            r_ladder_ohm=tuple(float(u * unit) for u in ladder_units(bits)),
            comparator_offsets_v=(float(comparator_offset_v),) * (2 ** int(bits) - 1),
        )

    def with_mismatch(self, draw: FlashMismatch) -> FlashAdcParams:
        """This design's nominal ladder with the relative errors of ``draw`` and its
        comparator offsets plus ``draw.offset_delta_v``.

        Raises
        ------
        ValueError
            ``draw`` is for another resolution, or makes a resistor non-positive.
        """
        units = ladder_units(self.bits)
        if draw.r_rel_err.shape != units.shape or draw.offset_delta_v.shape != (units.size - 1,):
            raise ValueError(
                f"a mismatch draw for {draw.bits} bits cannot apply to a {self.bits}-bit ADC"
            )
        unit = self.r_ladder_total_ohm / 2**self.bits
        rs = units * unit * (1.0 + draw.r_rel_err)
        if np.any(rs <= 0):  # only for absurd sigmas; keep the error explicit
            raise ValueError(
                "adc.ladder_mismatch_sigma_rel is so large that a sampled resistor is <= 0"
            )
        return replace(
            self,
            r_ladder_ohm=tuple(float(r) for r in rs),
            comparator_offsets_v=tuple(
                float(a + b)
                for a, b in zip(self.comparator_offsets_v, draw.offset_delta_v, strict=True)
            ),
        )

    def with_bits(self, bits: int) -> FlashAdcParams:
        """The same design at another resolution: the nominal ladder of the same total
        resistance (mismatch draws do not carry over) and the first comparator's offset on
        every comparator."""
        return FlashAdcParams.nominal(
            bits,
            v_ref_v=self.v_ref_v,
            v_dd_v=self.v_dd_v,
            clock_hz=self.clock_hz,
            r_ladder_total_ohm=self.r_ladder_total_ohm,
            comparator_gain_v_per_v=self.comparator_gain_v_per_v,
            c_comparator_f=self.c_comparator_f,
            c_logic_f=self.c_logic_f,
            comparator_offset_v=self.comparator_offsets_v[0],
        )

    # -- derived quantities -------------------------------------------------------------
    @property
    def n_comparators(self) -> int:
        """``2**bits - 1``."""
        return 2**self.bits - 1

    @property
    def cycles_per_conversion(self) -> int:
        """Clock cycles of one conversion: compare (cycle 0), then the result (done)."""
        return 2

    @property
    def conversion_time_s(self) -> float:
        """Duration of one conversion (s): the ladder's static current flows this long."""
        return self.cycles_per_conversion * self.period_s

    def tap_voltages_v(self) -> np.ndarray:
        """Tap voltages implied by the resistor values (V), comparator ``k`` at index
        ``k - 1`` (the characterization measures them in SPICE)."""
        r = np.asarray(self.r_ladder_ohm)
        return self.v_ref_v * np.cumsum(r)[:-1] / float(np.sum(r))

    def thresholds_v(self) -> np.ndarray:
        """Each comparator's trip input voltage implied by the parameters: tap plus offset
        (V)."""
        return self.tap_voltages_v() + np.asarray(self.comparator_offsets_v)

    def ladder_power_w(self) -> float:
        """Static power the ladder draws from the reference, ``v_ref**2 / R`` (W)."""
        return self.v_ref_v**2 / float(np.sum(self.r_ladder_ohm))
