"""The loaded surrogate library: the card it was made for, each block's surrogate and
``extra``, and the validation records."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cosim.card import Card
from cosim.converters import AdcArchitecture, AdcSurrogate, adc_architecture
from cosim.errors import CosimError, LibraryError
from cosim.library.common import show
from cosim.library.validation import BlockValidation

__all__ = ["SurrogateLibrary"]


@dataclass
class SurrogateLibrary:
    """A loaded library: the card it was made for, each block's surrogate, validation.

    ``meta``: ``library.json`` without its card and blocks (provenance, energy figures);
    ``surrogates`` and ``extras``: each block's decoded surrogate and its ``extra`` table;
    ``validation``: each block's held-out validation record.
    """

    path: Path
    card: Card
    meta: dict[str, Any]
    surrogates: dict[str, Any]
    extras: dict[str, Any]
    validation: dict[str, BlockValidation] = field(default_factory=dict)

    def block(self, name: str) -> Any:
        """The surrogate of block ``name``; a clear error if the library lacks it."""
        if name not in self.surrogates:
            have = ", ".join(show(n, 60) for n in sorted(self.surrogates))
            raise LibraryError(
                f"the surrogate library {show(self.path)} has no '{show(name, 60)}' block "
                f"(it has: {have}); re-run cosim characterize with a card that enables it"
            )
        return self.surrogates[name]

    @property
    def adc_architecture(self) -> AdcArchitecture:
        """The ADC architecture of the library's card (``adc.architecture``)."""
        try:
            return adc_architecture(self.card.adc.architecture)
        except CosimError as exc:
            raise LibraryError(f"the surrogate library {show(self.path)}: {show(exc)}") from None

    def adc(self) -> AdcSurrogate:
        """The nominal ADC surrogate at the card's resolution (its architecture's block)."""
        return self.block(self.adc_architecture.block)

    def adc_models_by_bits(self) -> dict[int, AdcSurrogate]:
        """The nominal ADC surrogate at every resolution the library holds, ascending.

        Every resolution ``1 .. card.adc.bits`` when the block's ``extra`` stores them
        (:meth:`AdcArchitecture.models_by_bits`); a library from before per-resolution
        characterization gives the card's resolution only.
        """
        arch = self.adc_architecture
        nominal = self.adc()
        extra = self.extras.get(arch.block, {})
        out: dict[int, AdcSurrogate] = {}
        if "by_bits" in extra:
            out.update(arch.models_by_bits(extra))
        out.setdefault(int(nominal.bits), nominal)
        return dict(sorted(out.items()))
