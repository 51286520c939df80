"""The NVM device model shared by the SPICE netlists and the NumPy engine.

One object holds the device physics: its conductance levels, its I–V curve, programming
variation, read noise, drift and stuck-at faults. :meth:`DeviceModel.spice_element` writes the
same I–V curve into a netlist that :meth:`DeviceModel.current` evaluates in NumPy, so SPICE
and the engine never disagree about what a device is.

I–V curve
---------
A programmed conductance ``g`` is the *chord conductance at the read voltage* ``v_read``
(what a write-verify loop measures). With nonlinearity ``a`` (1/V)::

    I(V) = g * v_read * sinh(a V) / sinh(a v_read)        (a > 0)
    I(V) = g * V                                         (a = 0, ohmic)

so ``I(v_read) = g * v_read`` exactly and the curve is odd and monotonic
(:mod:`device_models.iv` evaluates it).

Invalid parameters raise ``ValueError`` naming the field: this package depends on NumPy
only; :func:`cosim.circuits.device_model` turns a card into a device and reports a bad one
as a ``CardError``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from device_models.iv import sinh_current, sinh_slope


@dataclass(frozen=True)
class DeviceModel:
    """Common physics of a two-terminal NVM device; subclasses set the noise models.

    Parameters
    ----------
    level_bits
        The device holds ``2**level_bits`` programmable conductance levels.
    g_min_s, g_max_s
        Lowest and highest level (S); levels are uniformly spaced between them.
    v_read_v
        Read voltage at which ``g`` is defined (V).
    iv_alpha_per_v
        sinh nonlinearity of the I–V curve (1/V); 0 is ohmic.
    prog_noise_scale, read_noise_scale
        Multipliers on the technology's programming and read noise (0 switches them off).
    drift_t0_s, drift_nu_mean, drift_nu_sigma
        Drift G(t) = G0 (t / t0)^-nu with device-to-device nu (technologies may override).
    stuck_on_rate, stuck_off_rate
        Fractions of devices stuck at g_max / g_min regardless of programming.
    """

    level_bits: int
    g_min_s: float
    g_max_s: float
    v_read_v: float
    iv_alpha_per_v: float = 0.0
    prog_noise_scale: float = 1.0
    read_noise_scale: float = 1.0
    drift_t0_s: float = 20.0
    drift_nu_mean: float = 0.0
    drift_nu_sigma: float = 0.0
    stuck_on_rate: float = 0.0
    stuck_off_rate: float = 0.0

    technology = "generic"

    def __post_init__(self) -> None:
        if not 1 <= self.level_bits <= 8:
            raise ValueError(f"device.level_bits = {self.level_bits} out of range [1, 8]")
        if not 0 <= self.g_min_s < self.g_max_s:
            raise ValueError("device conductances must satisfy 0 <= g_min_s < g_max_s")
        if self.v_read_v <= 0:
            raise ValueError("the read voltage must be positive")
        if self.iv_alpha_per_v < 0:
            raise ValueError("device.iv_alpha_per_v must be >= 0")

    # -- levels -------------------------------------------------------------------------
    @property
    def n_levels(self) -> int:
        return 2**self.level_bits

    @property
    def g_step_s(self) -> float:
        """Conductance between adjacent levels (S)."""
        return (self.g_max_s - self.g_min_s) / (self.n_levels - 1)

    def levels(self) -> np.ndarray:
        """All programmable conductances, ascending (S), shape ``(2**level_bits,)``.

        Examples
        --------
        >>> DeviceModel(2, 0.0, 3e-6, 0.2).levels()
        array([0.e+00, 1.e-06, 2.e-06, 3.e-06])
        """
        return self.g_min_s + self.g_step_s * np.arange(self.n_levels)

    def level_conductance(self, level: np.ndarray | int) -> np.ndarray:
        """Target conductance (S) of integer level(s) ``0 .. 2**level_bits - 1``."""
        lv = np.asarray(level)
        if lv.size and (lv.min() < 0 or lv.max() >= self.n_levels):
            raise ValueError(
                f"device level out of range 0..{self.n_levels - 1}: got {lv.min()}..{lv.max()}"
            )
        return self.g_min_s + self.g_step_s * lv

    # -- I-V ----------------------------------------------------------------------------
    def current(self, g: np.ndarray | float, v: np.ndarray | float) -> np.ndarray:
        """Device current (A) for conductance ``g`` (S) and voltage ``v`` (V), broadcast."""
        return sinh_current(g, v, self.v_read_v, self.iv_alpha_per_v)

    def iv_shape(self, v: np.ndarray | float) -> np.ndarray:
        """``current(g, v) / g``: the voltage-dependent factor of the I–V curve (V)."""
        return self.current(1.0, v)

    def small_signal(self, g: np.ndarray | float, v: np.ndarray | float) -> np.ndarray:
        """dI/dV (S) at voltage ``v``."""
        return sinh_slope(g, v, self.v_read_v, self.iv_alpha_per_v)

    @property
    def is_ohmic(self) -> bool:
        """True for a linear I–V curve (``iv_alpha_per_v == 0``)."""
        return self.iv_alpha_per_v == 0.0

    def as_ohmic(self) -> DeviceModel:
        """The same device (levels, noise, drift, faults) with a linear I–V curve."""
        return replace(self, iv_alpha_per_v=0.0)

    def spice_element(self, name: str, n_plus: str, n_minus: str, g_s: float) -> str:
        """One netlist line for a device of conductance ``g_s`` between two nodes.

        Ohmic devices are resistors; nonlinear ones are B-sources with the same I–V curve
        as :meth:`current`.
        """
        if g_s <= 0:
            return f"R{name} {n_plus} {n_minus} 1e15"
        a = self.iv_alpha_per_v
        if a == 0.0:
            return f"R{name} {n_plus} {n_minus} {1.0 / g_s:.12e}"
        k = g_s * self.v_read_v / math.sinh(a * self.v_read_v)
        return f"B{name} {n_plus} {n_minus} I={k:.12e}*sinh({a:.12e}*v({n_plus},{n_minus}))"

    # -- variation and noise (overridden per technology) ---------------------------------
    def prog_sigma(self, g_target: np.ndarray) -> np.ndarray:
        """Programming-noise standard deviation (S) at each target conductance."""
        return np.zeros_like(np.asarray(g_target, dtype=float))

    def read_sigma(self, g: np.ndarray, t_s: float, t_read_s: float) -> np.ndarray:
        """Read-noise standard deviation (S) of one read at time ``t_s`` after programming."""
        return np.zeros_like(np.asarray(g, dtype=float))

    def nu_stats(self, g_target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(mean, sigma) of the drift exponent for each target conductance."""
        g = np.asarray(g_target, dtype=float)
        return np.full_like(g, self.drift_nu_mean), np.full_like(g, self.drift_nu_sigma)

    def program(self, g_target: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Conductances (S) actually programmed for the targets, with programming noise.

        Results are clipped to ``[0, 1.5 g_max]``: a device cannot have negative conductance.
        """
        g = np.asarray(g_target, dtype=float)
        sig = self.prog_sigma(g)
        out = g + sig * rng.standard_normal(g.shape)
        return np.clip(out, 0.0, 1.5 * self.g_max_s)

    def gaussian_variation(self, g: np.ndarray, nvw: float, rng: np.random.Generator) -> np.ndarray:
        """Normalized weight variation (Bao et al. 2022): add N(0, nvw·(g_max − g_min)).

        ``nvw`` is the standard deviation relative to the conductance range; it is the
        same as the normalized variation of the weights mapped onto the range.
        """
        if nvw < 0:
            raise ValueError("nvw must be >= 0")
        g = np.asarray(g, dtype=float)
        noise = nvw * (self.g_max_s - self.g_min_s) * rng.standard_normal(g.shape)
        return np.clip(g + noise, 0.0, None)

    def sample_nu(self, g_target: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One drift exponent per device (device-to-device variation), >= 0."""
        mu, sig = self.nu_stats(g_target)
        return np.clip(mu + sig * rng.standard_normal(mu.shape), 0.0, None)

    def drift(self, g_prog: np.ndarray, nu: np.ndarray, t_s: float) -> np.ndarray:
        """Conductance (S) at ``t_s`` seconds after programming: G0 (t/t0)^-nu."""
        if t_s <= 0:
            raise ValueError("the time after programming must be > 0 s")
        ratio = max(t_s, self.drift_t0_s) / self.drift_t0_s
        return np.asarray(g_prog, dtype=float) * ratio ** (-np.asarray(nu, dtype=float))

    def read(
        self, g: np.ndarray, t_s: float, t_read_s: float, rng: np.random.Generator
    ) -> np.ndarray:
        """One noisy read of conductances ``g`` (S)."""
        g = np.asarray(g, dtype=float)
        sig = self.read_sigma(g, t_s, t_read_s)
        return np.clip(g + sig * rng.standard_normal(g.shape), 0.0, None)

    def stuck_mask(self, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        """Integer mask: 0 healthy, +1 stuck at g_max, -1 stuck at g_min."""
        u = rng.random(shape)
        mask = np.zeros(shape, dtype=np.int8)
        mask[u < self.stuck_on_rate] = 1
        mask[(u >= self.stuck_on_rate) & (u < self.stuck_on_rate + self.stuck_off_rate)] = -1
        return mask

    def apply_stuck(self, g: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Replace stuck devices by g_max (mask +1) or g_min (mask -1)."""
        out = np.array(g, dtype=float, copy=True)
        out[mask == 1] = self.g_max_s
        out[mask == -1] = self.g_min_s
        return out

    def to_dict(self) -> dict:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["technology"] = self.technology
        return d
