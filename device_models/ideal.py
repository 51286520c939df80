"""The ideal device: exact levels, ohmic, no noise, no drift, no faults.

Choosing it is an explicit statement ("ideal devices"), not a magic value in another model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from device_models.base import DeviceModel


@dataclass(frozen=True)
class IdealDevice(DeviceModel):
    """Noise-free ohmic device; programming, reading and drift return their input."""

    technology = "ideal"

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "iv_alpha_per_v", 0.0)
        object.__setattr__(self, "stuck_on_rate", 0.0)
        object.__setattr__(self, "stuck_off_rate", 0.0)

    def program(self, g_target: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return np.asarray(g_target, dtype=float).copy()

    def drift(self, g_prog: np.ndarray, nu: np.ndarray, t_s: float) -> np.ndarray:
        if t_s <= 0:
            raise ValueError("the time after programming must be > 0 s")
        return np.asarray(g_prog, dtype=float).copy()
