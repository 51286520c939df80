"""The validated hardware card as a whole: construction, updates, hashes, TOML text."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from cosim.card.fields import ADDED_KEYS, REMOVED_KEYS, check_name, short
from cosim.card.sections import (
    SECTIONS,
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
from cosim.errors import CardError
from cosim.messages import show_text as _show

CARD_SCHEMA = 1


@dataclass(frozen=True)
class Card:
    """A validated hardware card. Build with :func:`~cosim.card.loading.load_card` or
    :meth:`Card.from_dict`."""

    name: str
    device: DeviceCard
    array: ArrayCard
    dac: DacCard
    opamp: OpampCard
    tia: TiaCard
    subtractor: SubtractorCard
    adc: AdcCard
    sense_row: SenseRowCard
    digital: DigitalCard
    area: AreaCard

    def __post_init__(self) -> None:
        if self.adc.v_ref_v > self.opamp.v_out_max_v:
            raise CardError(
                f"adc.v_ref_v = {self.adc.v_ref_v:g} V exceeds the op-amp's output swing "
                f"(opamp.v_supply_pos_v - opamp.swing_margin_v = {self.opamp.v_out_max_v:g} V);"
                " the ADC full scale could never be reached"
            )
        if self.tia.t_read_s * self.opamp.gbw_hz < 1.0:
            # the engine does not simulate settling, so a shorter window would only lower the
            # op-amps' energy (i_quiescent * supply * t_read) and no accuracy: refuse it
            raise CardError(
                f"tia.t_read_s = {self.tia.t_read_s:g} s is shorter than one period of the "
                f"op-amp's gain-bandwidth (1 / opamp.gbw_hz = {1.0 / self.opamp.gbw_hz:g} s): "
                "no TIA settles that fast, and cosim does not simulate settling, so the read "
                "energy would be silently optimistic; use a longer read window or a faster "
                "op-amp"
            )
        if self.sense_row.max_skip_bits >= self.adc.bits:
            raise CardError(
                f"sense_row.max_skip_bits = {self.sense_row.max_skip_bits} must be below "
                f"adc.bits = {self.adc.bits}"
            )

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Card:
        """Validate a parsed TOML document (``{"card": {...}, "device": {...}, ...}``)."""
        if not isinstance(data, dict):
            raise CardError("a hardware card must be a TOML document of tables")
        top_known = {"card", *SECTIONS}
        unknown = sorted(set(data) - top_known, key=str)
        if unknown:
            raise CardError(
                f"unknown table [{_show(unknown[0], 100)}] in hardware card; known tables: "
                + ", ".join(sorted(top_known))
            )
        meta = data.get("card", {})
        if not isinstance(meta, dict):
            raise CardError("[card] must be a table with keys name, schema")
        extra = sorted(set(meta) - {"name", "schema"}, key=str)
        if extra:
            raise CardError(
                f"unknown key card.{_show(extra[0], 100)}; [card] has keys name, schema"
            )
        schema = meta.get("schema", CARD_SCHEMA)
        if schema != CARD_SCHEMA:
            raise CardError(
                f"card.schema = {short(schema)} but this cosim reads schema {CARD_SCHEMA}; "
                "update the card to the current format (see the default card)"
            )
        name = meta.get("name", "unnamed")
        if not isinstance(name, str) or not name:
            raise CardError("card.name must be a non-empty string")
        check_name(name)
        sections = {}
        for sec, klass in SECTIONS.items():
            if sec not in data:
                raise CardError(f"missing table [{sec}] in hardware card")
            sections[sec] = klass.from_dict(data[sec])
        # each section's class comes from SECTIONS, keyed like the fields
        return cls(name=name, **sections)  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict that :meth:`from_dict` turns back into an equal card."""
        out: dict[str, Any] = {"card": {"name": self.name, "schema": CARD_SCHEMA}}
        for sec in SECTIONS:
            out[sec] = getattr(self, sec).to_dict()
        return out

    def with_updates(self, updates: dict[str, dict[str, Any]], name: str | None = None) -> Card:
        """A new validated card with some fields replaced, e.g. ``{"array": {"rows": 128}}``."""
        data = self.to_dict()
        for sec, vals in updates.items():
            if sec not in data or sec == "card":
                raise CardError(f"unknown table [{_show(sec, 100)}] in card update")
            for k, v in vals.items():
                if k not in data[sec]:
                    raise CardError(f"unknown key {sec}.{_show(k, 100)} in card update")
                data[sec][k] = v
        if name is not None:
            data["card"]["name"] = name
        return Card.from_dict(data)

    def _hashed_dict(self) -> dict[str, Any]:
        """:meth:`to_dict` less every key of :data:`~cosim.card.fields.ADDED_KEYS` that holds
        the value cards meant before it existed (so their hashes do not change)."""
        d = self.to_dict()
        for (sec, key), value in ADDED_KEYS.items():
            if d[sec][key] == value:
                del d[sec][key]
        return d

    def canonical_json(self) -> str:
        """The card as compact JSON with sorted keys, as hashed by :meth:`hash`."""
        return json.dumps(self._hashed_dict(), sort_keys=True, separators=(",", ":"))

    def hash(self) -> str:
        """SHA-256 of the canonical card content (the name is part of it)."""
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()

    def physics_hash(self) -> str:
        """SHA-256 of everything except the name: two cards describing the same chip match.

        A key added after schema 1 counts only when it differs from what earlier cards
        meant (:data:`~cosim.card.fields.ADDED_KEYS`: ``adc.architecture = "sar"``), so libraries
        characterized before it existed still match their card.
        """
        return self._physics_hash({})

    def _physics_hash(self, removed: dict[tuple[str, str], Any]) -> str:
        """:meth:`physics_hash` of this card with ``removed`` keys put back, as a card
        stored before their removal (:data:`~cosim.card.fields.REMOVED_KEYS`) hashed."""
        d = self._hashed_dict()
        for (sec, key), value in removed.items():
            d[sec][key] = value
        d["card"] = {"schema": CARD_SCHEMA}
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()

    @classmethod
    def from_stored(cls, data: dict[str, Any]) -> tuple[Card, str]:
        """A card stored by this or an earlier cosim (a library's ``card``), and the
        :meth:`physics_hash` of the content as it was stored.

        Keys of :data:`~cosim.card.fields.REMOVED_KEYS` are dropped before validation
        (nothing reads them) and put back for the hash, so a library characterized before
        their removal still matches the hash it stored; the card returned hashes without
        them, like a card file of today. A card *file* that sets one is refused
        (:meth:`from_dict`: unknown key).

        Examples
        --------
        >>> from cosim.card import load_card
        >>> card = load_card()
        >>> old = card.to_dict()
        >>> old["array"]["c_wire_f"] = 2e-16
        >>> back, stored = Card.from_stored(old)
        >>> back == card, stored == card.physics_hash()
        (True, False)
        """
        removed: dict[tuple[str, str], Any] = {}
        trimmed = dict(data) if isinstance(data, dict) else data
        for sec, key in sorted(REMOVED_KEYS):
            table = trimmed.get(sec) if isinstance(trimmed, dict) else None
            if isinstance(table, dict) and key in table:
                removed[(sec, key)] = table[key]
                trimmed[sec] = {k: v for k, v in table.items() if k != key}
        card = cls.from_dict(trimmed)
        return card, card._physics_hash(removed)

    def to_toml(self) -> str:
        """The card as TOML text (round-trips through :func:`~cosim.card.loading.parse_card`)."""
        lines = [f"[card]\nname = {_toml_string(self.name)}\nschema = {CARD_SCHEMA}\n"]
        for sec in SECTIONS:
            lines.append(f"[{sec}]")
            for k, v in getattr(self, sec).to_dict().items():
                if isinstance(v, bool):
                    lines.append(f"{k} = {'true' if v else 'false'}")
                elif isinstance(v, str):
                    lines.append(f"{k} = {_toml_string(v)}")
                elif isinstance(v, int):
                    lines.append(f"{k} = {v}")
                else:
                    lines.append(f"{k} = {v!r}")
            lines.append("")
        return "\n".join(lines)

    # -- derived quantities used across cosim --------------------------------------------
    @property
    def adc_lsb_v(self) -> float:
        """One ADC LSB at the ADC input (V)."""
        return self.adc.v_ref_v / 2**self.adc.bits

    @property
    def i_full_scale_a(self) -> float:
        """Column (or differential) current that drives the ADC to full scale (A)."""
        return self.adc.v_ref_v / self.tia.r_feedback_ohm

    @property
    def i_lsb_a(self) -> float:
        """One ADC LSB expressed as column current through the TIA (A)."""
        return self.i_full_scale_a / 2**self.adc.bits

    @property
    def data_rows(self) -> int:
        """Rows available for inputs (rows minus bias rows)."""
        return self.array.rows - self.array.bias_rows


def _toml_string(text: str) -> str:
    """``text`` as a TOML basic string: ``"``, ``\\`` and the control characters TOML does
    not allow raw escaped, everything else (accents, emoji) written as it is, so that
    :func:`~cosim.card.loading.parse_card` reads back exactly ``text`` (``json.dumps`` would
    write a character outside the Basic Multilingual Plane as a surrogate pair, which TOML
    refuses)."""
    out = []
    for c in text:
        if c in _TOML_ESCAPES:
            out.append(_TOML_ESCAPES[c])
        elif c < " " or c == "\x7f":
            out.append(f"\\u{ord(c):04x}")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


_TOML_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}
