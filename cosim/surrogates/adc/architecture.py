"""The charge-redistribution SAR ADC as a plug-in of :mod:`cosim.converters` (``"sar"``).

:data:`SAR` ties together what the SAR is made of: the netlist generator
(:mod:`netlists.sar_adc`), its characterization
(:func:`cosim.characterize.adc.characterize_sar_adc`), the fitted surrogate
(:class:`~cosim.surrogates.adc.sar.SarAdcModel`, stored as the library block ``sar_adc``
with every resolution in ``extra["by_bits"]``) and its Monte-Carlo instances, whose
surrogate and netlist parameters come from one :func:`netlists.mismatch.draw_sar_mismatch`.

Netlist and characterization modules are imported on first use, so registering and
decoding the SAR needs neither the card nor the SPICE runner.

Examples
--------
>>> import numpy as np
>>> from cosim.card import load_card
>>> card = load_card()
>>> inst = SAR.sample_instance(SAR.ideal(3, 1.0), card, np.random.default_rng(0))
>>> inst.surrogate.bits, inst.params.bits
(3, 3)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from cosim.converters import AdcInstance
from cosim.surrogates.adc.by_bits import models_by_bits
from cosim.surrogates.adc.mismatch import sample_instance_draw
from cosim.surrogates.adc.sar import SarAdcModel

if TYPE_CHECKING:
    from cosim.card import Card
    from cosim.characterize.context import BlockResult, CharContext
    from netlists.sar_adc import SarAdcParams


@dataclass(frozen=True)
class SarArchitecture:
    """The SAR ADC's implementation of :class:`cosim.converters.AdcArchitecture`."""

    name: str = "sar"
    block: str = "sar_adc"
    kind: str = SarAdcModel.kind

    # -- netlist generator ------------------------------------------------------------
    def nominal_params(self, card: Card, bits: int | None = None) -> SarAdcParams:

        from cosim.circuits import sar_adc_params

        return sar_adc_params(card, bits)

    def subckt(self, params: SarAdcParams, name: str | None = None) -> str:
        from netlists.sar_adc import sar_adc_subckt

        return sar_adc_subckt(params, name)

    def subckt_name(self, params: SarAdcParams) -> str:
        from netlists.sar_adc import subckt_name

        return subckt_name(params)

    def subckt_pins(self, bits: int) -> list[str]:
        from netlists.sar_adc import subckt_pins

        return subckt_pins(bits)

    def testbench_netlist(self, params: SarAdcParams, v_in: np.ndarray, skip: Any = 0) -> str:
        from netlists.sar_adc import sar_testbench_netlist

        return sar_testbench_netlist(params, v_in, skip)

    def testbench_vectors(self) -> tuple[str, ...]:
        from netlists.sar_adc import sar_testbench_vectors

        return sar_testbench_vectors()

    def decode_testbench(self, result: Any, params: SarAdcParams, n: int) -> dict[str, Any]:
        from netlists.sar_adc import decode_testbench

        return decode_testbench(result, params, n)

    # -- characterization ---------------------------------------------------------------
    def characterize(self, ctx: CharContext) -> BlockResult:
        from cosim.characterize.adc import characterize_sar_adc

        return characterize_sar_adc(ctx)

    # -- surrogate ------------------------------------------------------------------------
    def ideal(self, bits: int, v_ref_v: float) -> SarAdcModel:
        return SarAdcModel.ideal(bits, v_ref_v)

    def from_dict(self, d: Mapping[str, Any]) -> SarAdcModel:
        return SarAdcModel.from_dict(d)

    def models_by_bits(
        self, extra: Mapping[str, Any], bits: int | None = None
    ) -> dict[int, SarAdcModel]:
        return models_by_bits(extra, bits)

    # -- Monte-Carlo instances ------------------------------------------------------------
    def sample_instance(
        self,
        nominal: SarAdcModel | Mapping[int, SarAdcModel],
        card: Card,
        rng: np.random.Generator,
        bits: int | None = None,
    ) -> AdcInstance:
        """One instance: :func:`~cosim.surrogates.adc.sample_instance` and the netlist
        parameters of the same draw (what ``cosim.circuits.sar_adc_sample`` gives from the same
        generator state), for SPICE to rebuild it."""
        model, draw = sample_instance_draw(nominal, card, rng, bits)
        return AdcInstance(model, self.nominal_params(card, model.bits).with_mismatch(draw))


#: The registered SAR architecture (``adc.architecture = "sar"``).
SAR = SarArchitecture()
