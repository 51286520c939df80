"""The flash ADC as a plug-in of :mod:`cosim.converters` (``"flash"``).

:data:`FLASH` ties together the netlist generator (:mod:`netlists.flash_adc`), its
characterization (:func:`cosim.characterize.adc.flash.characterize_flash_adc`), the fitted
surrogate (:class:`~cosim.surrogates.adc.flash.FlashAdcModel`, stored as the library block
``flash_adc`` with every resolution in ``extra["by_bits"]``) and its Monte-Carlo instances,
whose surrogate and netlist parameters come from one
:func:`netlists.flash_adc.draw_flash_mismatch`.

The card-to-parameters adapter and the characterization are imported on first use, so
registering and decoding the flash needs neither the card nor the SPICE runner.

Examples
--------
>>> import numpy as np
>>> from cosim.card import load_card
>>> card = load_card().with_updates({"adc": {"architecture": "flash", "bits": 3},
...                                  "sense_row": {"max_skip_bits": 2}})
>>> inst = FLASH.sample_instance(FLASH.ideal(3, 1.0), card, np.random.default_rng(0))
>>> inst.surrogate.bits, inst.params.bits, inst.params.n_comparators
(3, 3, 7)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from cosim.converters import AdcInstance
from cosim.surrogates.adc.flash import (
    FlashAdcModel,
    flash_models_by_bits,
    sample_flash_instance_draw,
)
from netlists import flash_adc as _net

if TYPE_CHECKING:
    from cosim.card import Card
    from cosim.characterize.context import BlockResult, CharContext
    from netlists.flash_adc import FlashAdcParams


@dataclass(frozen=True)
class FlashArchitecture:
    """The flash ADC's implementation of :class:`cosim.converters.AdcArchitecture`."""

    name: str = "flash"
    block: str = "flash_adc"
    kind: str = FlashAdcModel.kind

    # -- netlist generator ------------------------------------------------------------
    def nominal_params(self, card: Card, bits: int | None = None) -> FlashAdcParams:
        from cosim.circuits import flash_adc_params

        return flash_adc_params(card, bits)

    def subckt(self, params: FlashAdcParams, name: str | None = None) -> str:
        return _net.flash_adc_subckt(params, name)

    def subckt_name(self, params: FlashAdcParams) -> str:
        return _net.subckt_name(params)

    def subckt_pins(self, bits: int) -> list[str]:
        return _net.subckt_pins(bits)

    def testbench_netlist(self, params: FlashAdcParams, v_in: np.ndarray, skip: Any = 0) -> str:
        return _net.flash_testbench_netlist(params, v_in, skip)

    def testbench_vectors(self) -> tuple[str, ...]:
        return _net.flash_testbench_vectors()

    def decode_testbench(
        self, result: Any, params: FlashAdcParams, n: int
    ) -> dict[str, np.ndarray]:
        return _net.decode_testbench(result, params, n)

    # -- characterization ---------------------------------------------------------------
    def characterize(self, ctx: CharContext) -> BlockResult:
        from cosim.characterize.adc.flash import characterize_flash_adc

        return characterize_flash_adc(ctx)

    # -- surrogate ------------------------------------------------------------------------
    def ideal(self, bits: int, v_ref_v: float) -> FlashAdcModel:
        return FlashAdcModel.ideal(bits, v_ref_v)

    def from_dict(self, d: Mapping[str, Any]) -> FlashAdcModel:
        return FlashAdcModel.from_dict(d)

    def models_by_bits(
        self, extra: Mapping[str, Any], bits: int | None = None
    ) -> dict[int, FlashAdcModel]:
        return flash_models_by_bits(extra, bits)

    # -- Monte-Carlo instances ------------------------------------------------------------
    def sample_instance(
        self,
        nominal: FlashAdcModel | Mapping[int, FlashAdcModel],
        card: Card,
        rng: np.random.Generator,
        bits: int | None = None,
    ) -> AdcInstance:
        """One instance: the fitted nominal with one ladder/offset draw applied, and the
        netlist parameters of the same draw (what ``cosim.circuits.flash_adc_sample``
        gives from the same generator state), for SPICE to rebuild it."""
        model, draw = sample_flash_instance_draw(nominal, card, rng, bits)
        return AdcInstance(model, self.nominal_params(card, model.bits).with_mismatch(draw))


#: The registered flash architecture (``adc.architecture = "flash"``).
FLASH = FlashArchitecture()
