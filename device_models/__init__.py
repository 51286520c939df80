"""NVM device models (PCM, RRAM, ideal) shared by the netlist generators and the engine.

>>> from cosim.card import load_card
>>> dev = from_card(load_card())
>>> dev.technology, dev.n_levels
('pcm', 16)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from device_models.base import DeviceModel
from device_models.ideal import IdealDevice
from device_models.pcm import PcmDevice
from device_models.rram import RramDevice

if TYPE_CHECKING:
    from cosim.card import Card

_BY_NAME: dict[str, type[DeviceModel]] = {
    "pcm": PcmDevice,
    "rram": RramDevice,
    "ideal": IdealDevice,
}


def from_card(card: Card) -> DeviceModel:
    """Build the device model that ``card.device`` describes (read voltage from the DAC)."""
    d = card.device
    cls = _BY_NAME[d.technology]
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


__all__ = ["DeviceModel", "IdealDevice", "PcmDevice", "RramDevice", "from_card"]
