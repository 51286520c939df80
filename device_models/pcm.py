"""Phase-change memory: the statistical model of Joshi et al., Nat. Commun. 11, 2473 (2020).

The published fits are in µS for devices with g_max = 25 µS. Here they are applied to the
conductance normalized by the card's ``g_max_s`` and scaled back, so a card with another
g_max keeps the same relative behaviour:

* programming noise  σ_prog = max(−1.1731 g_T² + 1.9650 g_T + 0.2635, 0) µS·(g_max/25 µS),
  g_T = target / g_max;
* drift exponent     μ_ν = clip(−0.0155 ln G + 0.0244, 0.049, 0.1),
                     σ_ν = clip(−0.0125 ln G − 0.0059, 0.008, 0.045), G in µS·(25 µS/g_max);
* 1/f read noise     σ_nG = G·Q_s·sqrt(ln((t + t_read)/(2 t_read))), Q_s = min(0.0088/G^0.65, 0.2).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from device_models.base import DeviceModel

_G_REF_S = 25e-6  # g_max of the devices the fits were measured on


@dataclass(frozen=True)
class PcmDevice(DeviceModel):
    """PCM with state-dependent programming noise, 1/f read noise and drift."""

    technology = "pcm"

    def _g_us(self, g: np.ndarray) -> np.ndarray:
        """Conductance in the fits' µS scale (normalized to a 25 µS g_max)."""
        return np.asarray(g, dtype=float) / self.g_max_s * _G_REF_S * 1e6

    def prog_sigma(self, g_target: np.ndarray) -> np.ndarray:
        gt = np.clip(np.asarray(g_target, dtype=float) / self.g_max_s, 0.0, None)
        sig_us = np.maximum(-1.1731 * gt**2 + 1.9650 * gt + 0.2635, 0.0)
        return self.prog_noise_scale * sig_us * 1e-6 * (self.g_max_s / _G_REF_S)

    def nu_stats(self, g_target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        g = np.maximum(self._g_us(g_target), 1e-3)
        mu = np.clip(-0.0155 * np.log(g) + 0.0244, 0.049, 0.1)
        sig = np.clip(-0.0125 * np.log(g) - 0.0059, 0.008, 0.045)
        return mu, sig

    def read_sigma(self, g: np.ndarray, t_s: float, t_read_s: float) -> np.ndarray:
        g = np.asarray(g, dtype=float)
        g_us = np.maximum(self._g_us(g), 1e-6)
        q_s = np.minimum(0.0088 / g_us**0.65, 0.2)
        t = max(t_s, t_read_s)
        return self.read_noise_scale * g * q_s * np.sqrt(np.log((t + t_read_s) / (2 * t_read_s)))
