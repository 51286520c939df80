"""The hardware card: one TOML file describing a crossbar chip, validated into frozen dataclasses.

Every field is a float or int in SI units with its unit in the name (``g_max_s``,
``r_wire_wl_ohm``, ``t_read_s``). An unknown key, a wrong type or an out-of-range value is a
:class:`~cosim.errors.CardError` that names the key (``adc.bits``) and the allowed range.

The default card (``cosim/data/default_card.toml``) is meant to be realistic, not kind: a
PCM-like device with 16 levels up to 25 µS read at 0.2 V, 1 Ω per wire segment, an op-amp
with 80 dB gain and real rails, and an 8-bit SAR ADC with comparator offset and capacitor
mismatch.

Examples
--------
>>> card = load_card()                      # the default card
>>> card.adc.bits, card.array.rows
(8, 64)
>>> card.with_updates({"array": {"r_wire_wl_ohm": 2.5}}).array.r_wire_wl_ohm
2.5

One idea a module: :mod:`~cosim.card.fields` (how a field is declared and checked),
:mod:`~cosim.card.sections` (one frozen dataclass per TOML table),
:mod:`~cosim.card.document` (the :class:`Card` as a whole: construction, updates, hashes,
TOML text) and :mod:`~cosim.card.loading` (TOML text or a file into a card). Every public
name is re-exported here: import from ``cosim.card``. Nothing here imports NumPy.
"""

from __future__ import annotations

from cosim.card.document import CARD_SCHEMA, Card
from cosim.card.loading import (
    MAX_CARD_BYTES,
    default_card_text,
    describe_fields,
    load_card,
    parse_card,
)
from cosim.card.sections import (
    AdcCard,
    AreaCard,
    ArrayCard,
    DacCard,
    DeviceCard,
    DigitalCard,
    OpampCard,
    SenseRowCard,
    SubtractorCard,
    TiaCard,
)

__all__ = [
    "CARD_SCHEMA",
    "MAX_CARD_BYTES",
    "AdcCard",
    "AreaCard",
    "ArrayCard",
    "Card",
    "DacCard",
    "DeviceCard",
    "DigitalCard",
    "OpampCard",
    "SenseRowCard",
    "SubtractorCard",
    "TiaCard",
    "default_card_text",
    "describe_fields",
    "load_card",
    "parse_card",
]
