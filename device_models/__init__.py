"""NVM device models (PCM, RRAM, ideal) shared by the netlist generators and the engine.

This package depends on NumPy only; :func:`cosim.circuits.device_model` builds the device a
hardware card describes.

>>> dev = PcmDevice(level_bits=4, g_min_s=0.0, g_max_s=1e-5, v_read_v=0.2)
>>> dev.technology, dev.n_levels
('pcm', 16)
"""

from __future__ import annotations

from device_models.base import DeviceModel
from device_models.ideal import IdealDevice
from device_models.iv import sinh_current, sinh_slope
from device_models.pcm import PcmDevice
from device_models.rram import RramDevice

__all__ = [
    "DeviceModel",
    "IdealDevice",
    "PcmDevice",
    "RramDevice",
    "sinh_current",
    "sinh_slope",
]
