"""Filamentary RRAM: level-independent plus proportional programming noise, 1/f-like read
noise proportional to G, and a small log-time drift with the card's nu statistics.

Default magnitudes (scale 1): σ_prog = 1 % of g_max + 3 % of G; σ_read = 1 % of G. These are
representative published figures for write-verify programmed multi-level RRAM; set
``prog_noise_scale`` / ``read_noise_scale`` on the card to match your own measurements.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from device_models.base import DeviceModel


@dataclass(frozen=True)
class RramDevice(DeviceModel):
    """RRAM with constant + proportional programming noise and proportional read noise."""

    technology = "rram"

    def prog_sigma(self, g_target: np.ndarray) -> np.ndarray:
        g = np.asarray(g_target, dtype=float)
        return self.prog_noise_scale * (0.01 * self.g_max_s + 0.03 * g)

    def read_sigma(self, g: np.ndarray, t_s: float, t_read_s: float) -> np.ndarray:
        return self.read_noise_scale * 0.01 * np.asarray(g, dtype=float)
