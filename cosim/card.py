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
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import stat
import tomllib
import unicodedata
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

from cosim.converters import adc_architecture_names
from cosim.errors import CardError
from cosim.messages import error_text as _reason
from cosim.messages import show_text as _show

CARD_SCHEMA = 1

#: Largest card file :func:`load_card` reads (1 MiB; the default card is about 4 kB).
MAX_CARD_BYTES = 1 << 20


def _f(lo: float, hi: float, doc: str, *, lo_open: bool = False, default: Any = None) -> Any:
    """A card field with an allowed range ``[lo, hi]`` (``(lo, hi]`` with ``lo_open``)."""
    meta = {"range": (lo, hi), "lo_open": lo_open, "doc": doc}
    if default is None:
        return field(metadata=meta)
    return field(default=default, metadata=meta)


def _choice(options: tuple[str, ...], doc: str) -> Any:
    return field(metadata={"choices": options, "doc": doc})


class _RegisteredAdcs:
    """The names of the registered ADC architectures (:mod:`cosim.converters`), read when
    a card is validated, so that an architecture registered by a plug-in is accepted."""

    def __iter__(self):
        return iter(adc_architecture_names())

    def __contains__(self, name: object) -> bool:
        return name in adc_architecture_names()

    def __repr__(self) -> str:
        return repr(adc_architecture_names())


#: Keys added to the card after schema 1, with the value every earlier card meant. A card
#: may omit them (it gets this value), and while a key holds it, it is left out of
#: :meth:`Card.hash` and :meth:`Card.physics_hash`: cards, libraries and reports made
#: before the key existed keep their hashes and stay valid.
_ADDED_KEYS: dict[tuple[str, str], Any] = {("adc", "architecture"): "sar"}


class _Section:
    """Mixin: build a frozen section from a TOML table with strict key/type/range checks."""

    SECTION: ClassVar[str] = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> _Section:
        if not isinstance(data, dict):
            raise CardError(f"[{cls.SECTION}] must be a table, got {type(data).__name__}")
        known = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - set(known), key=str)
        if unknown:
            raise CardError(
                f"unknown key {cls.SECTION}.{_show(unknown[0], 100)} in hardware card; "
                f"known keys of [{cls.SECTION}]: {', '.join(sorted(known))}"
            )
        optional = {k for k in known if (cls.SECTION, k) in _ADDED_KEYS}
        missing = sorted(k for k in known if k not in data and k not in optional)
        if missing:
            raise CardError(f"missing key {cls.SECTION}.{missing[0]} in hardware card")
        values = {
            name: _check_value(cls.SECTION, f, data[name])
            for name, f in known.items()
            if name in data
        }
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def describe(cls) -> list[tuple[str, str]]:
        """(key, documentation with allowed range) for every field, for help texts."""
        out = []
        for f in fields(cls):  # type: ignore[arg-type]
            meta = f.metadata
            if "choices" in meta:
                rng = "one of " + ", ".join(meta["choices"])
            elif "range" not in meta:
                rng = "true or false"
            else:
                lo, hi = meta["range"]
                rng = f"{'(' if meta.get('lo_open') else '['}{lo:g}, {hi:g}]"
            out.append((f"{cls.SECTION}.{f.name}", f"{meta['doc']} — {rng}"))
        return out


def _check_name(name: str) -> None:
    """A card name is one line of Unicode text: it is shown in log lines, messages, plot
    titles and reports, and written to TOML and JSON files. A control character (a newline,
    a tab, NUL), a line or paragraph separator or a lone surrogate (JSON, as a library
    stores its card, can spell ``"\\ud800"``; no UTF-8 file can hold it) is a CardError."""
    for c in name:
        cat = unicodedata.category(c)
        if cat == "Cs":
            raise CardError(
                f"card.name = {_short(name)} holds a lone surrogate ({c!r}), which is not "
                "Unicode text"
            )
        if cat in ("Cc", "Zl", "Zp"):
            what = "the control character" if cat == "Cc" else "the line separator"
            raise CardError(
                f"card.name = {_short(name)} holds {what} {c!r}; a card name is one line of text"
            )


def _short(value: Any, limit: int = 60) -> str:
    """``repr(value)``, cut to ``limit`` characters so an error message stays one short line
    (a string's ``repr`` escapes its control characters; an integer too long to convert
    to text is described by its size)."""
    try:
        text = repr(value)
    except ValueError:  # an int of more digits than Python converts to text
        return f"<an integer of about {int(value.bit_length() * 0.30103)} digits>"
    return _show(text, limit)


def _check_value(section: str, f: dataclasses.Field, value: Any) -> Any:
    key = f"{section}.{f.name}"
    meta = f.metadata
    if "choices" in meta:
        if not isinstance(value, str) or value not in meta["choices"]:
            raise CardError(f"{key} = {_short(value)} is not allowed; use one of {meta['choices']}")
        return value
    want_int = f.type in ("int", int)
    want_bool = f.type in ("bool", bool)
    if want_bool:
        if not isinstance(value, bool):
            raise CardError(f"{key} must be true or false, got {_short(value)}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CardError(f"{key} must be a number, got {_short(value)}")
    if want_int:
        if isinstance(value, float) and not value.is_integer():
            raise CardError(f"{key} must be an integer, got {value!r}")
        value = int(value)
    else:
        try:
            value = float(value)
        except OverflowError:  # an integer literal with hundreds of digits
            value = math.inf if value > 0 else -math.inf
        if not math.isfinite(value):
            raise CardError(f"{key} must be finite, got {_short(value)}")
    lo, hi = meta["range"]
    bad = value < lo or value > hi or (meta.get("lo_open") and value == lo)
    if bad:
        lb = "(" if meta.get("lo_open") else "["
        raise CardError(
            f"{key} = {_short(value)} is out of range {lb}{lo:g}, {hi:g}] ({meta['doc']})"
        )
    return value


@dataclass(frozen=True)
class DeviceCard(_Section):
    """The NVM device technology and its non-idealities."""

    SECTION: ClassVar[str] = "device"
    technology: str = _choice(("pcm", "rram", "ideal"), "device model family")
    level_bits: int = _f(1, 8, "programmable conductance levels = 2**level_bits")
    g_min_s: float = _f(0.0, 1e-3, "lowest programmable conductance (S)")
    g_max_s: float = _f(0.0, 1e-3, "highest programmable conductance (S)", lo_open=True)
    prog_noise_scale: float = _f(0.0, 10.0, "multiplier on the programming-noise model")
    read_noise_scale: float = _f(0.0, 10.0, "multiplier on the read-noise model")
    drift_t0_s: float = _f(
        0.0, 1e9, "time after programming at which G equals its target (s)", lo_open=True
    )
    drift_nu_mean: float = _f(0.0, 0.5, "mean drift exponent nu (RRAM/ideal; PCM uses its model)")
    drift_nu_sigma: float = _f(0.0, 0.5, "device-to-device sigma of nu")
    iv_alpha_per_v: float = _f(0.0, 20.0, "I-V nonlinearity I = G*Vr*sinh(a V)/sinh(a Vr) (1/V)")
    stuck_on_rate: float = _f(0.0, 0.5, "fraction of devices stuck at g_max")
    stuck_off_rate: float = _f(0.0, 0.5, "fraction of devices stuck at g_min")

    def __post_init__(self) -> None:
        if self.g_min_s >= self.g_max_s:
            raise CardError(
                f"device.g_min_s = {self.g_min_s:g} must be below device.g_max_s = {self.g_max_s:g}"
            )
        if self.stuck_on_rate + self.stuck_off_rate > 0.5:
            raise CardError("device.stuck_on_rate + device.stuck_off_rate must not exceed 0.5")


@dataclass(frozen=True)
class ArrayCard(_Section):
    """Crossbar geometry and wire parasitics. Inputs drive wordlines (rows); outputs are
    bitline (column) currents into virtual-ground TIAs at the bottom of each column."""

    SECTION: ClassVar[str] = "array"
    rows: int = _f(2, 1024, "wordlines per crossbar tile, bias rows included")
    cols: int = _f(2, 1024, "bitlines per crossbar tile (a differential pair uses two)")
    bias_rows: int = _f(0, 16, "rows reserved for the bias, driven at the DAC full scale")
    r_wire_wl_ohm: float = _f(0.0, 1e3, "wordline resistance per cell segment (ohm)")
    r_wire_bl_ohm: float = _f(0.0, 1e3, "bitline resistance per cell segment (ohm)")
    c_wire_f: float = _f(0.0, 1e-12, "wire capacitance per cell segment (F), for read energy")

    def __post_init__(self) -> None:
        if self.bias_rows >= self.rows:
            raise CardError("array.bias_rows must be smaller than array.rows")


@dataclass(frozen=True)
class DacCard(_Section):
    """Input DACs driving the wordlines."""

    SECTION: ClassVar[str] = "dac"
    bits: int = _f(1, 12, "DAC resolution (bits)")
    v_read_v: float = _f(
        0.0, 2.0, "full-scale read voltage: code k gives k/2**bits of it (V)", lo_open=True
    )
    r_out_ohm: float = _f(0.0, 1e5, "driver output resistance (ohm)")
    e_conv_j: float = _f(0.0, 1e-9, "energy per DAC conversion, from the DAC design (J)")
    area_m2: float = _f(0.0, 1e-6, "area of one DAC (m^2)")


@dataclass(frozen=True)
class OpampCard(_Section):
    """Op-amp macro-model shared by the TIA, the subtractor and the sense-row TIA."""

    SECTION: ClassVar[str] = "opamp"
    dc_gain_v_per_v: float = _f(10.0, 1e9, "open-loop DC gain (V/V)")
    gbw_hz: float = _f(1e3, 1e12, "gain-bandwidth product (Hz)")
    v_supply_pos_v: float = _f(0.0, 10.0, "positive rail (V)", lo_open=True)
    v_supply_neg_v: float = _f(-10.0, 0.0, "negative rail (V)")
    swing_margin_v: float = _f(0.0, 2.0, "output saturates this far inside the rails (V)")
    input_offset_v: float = _f(-0.1, 0.1, "input offset of the characterized instance (V)")
    input_offset_sigma_v: float = _f(0.0, 0.1, "instance-to-instance offset sigma (V)")
    r_out_ohm: float = _f(0.0, 1e6, "output resistance (ohm)")
    i_quiescent_a: float = _f(0.0, 1e-2, "quiescent supply current (A)")

    def __post_init__(self) -> None:
        span = self.v_supply_pos_v - self.v_supply_neg_v
        if 2 * self.swing_margin_v >= span:
            raise CardError("opamp.swing_margin_v leaves no output swing between the rails")

    @property
    def v_out_max_v(self) -> float:
        return self.v_supply_pos_v - self.swing_margin_v

    @property
    def v_out_min_v(self) -> float:
        return self.v_supply_neg_v + self.swing_margin_v


@dataclass(frozen=True)
class TiaCard(_Section):
    """Transimpedance amplifier at the bottom of each bitline."""

    SECTION: ClassVar[str] = "tia"
    r_feedback_ohm: float = _f(1.0, 1e9, "output transimpedance R_t: unipolar TIA feedback (ohm)")
    t_read_s: float = _f(0.0, 1e-3, "read (settle + sample) window of one MAC (s)", lo_open=True)
    area_m2: float = _f(0.0, 1e-6, "area of one TIA (m^2)")


@dataclass(frozen=True)
class SubtractorCard(_Section):
    """Four-resistor differential amplifier: V_out = gain·(V_pos − V_neg) for a differential
    pair. Part of the transimpedance sits here so that the pair's column TIAs (feedback
    ``tia.r_feedback_ohm / gain``) keep headroom for single-ended currents far larger than
    their difference."""

    SECTION: ClassVar[str] = "subtractor"
    r_ohm: float = _f(10.0, 1e9, "input resistors R1 = R3 (ohm); R2 = R4 = gain * r_ohm")
    gain_v_per_v: float = _f(1.0, 100.0, "differential gain; pair TIAs use r_feedback / gain")
    mismatch_sigma_rel: float = _f(0.0, 0.1, "relative sigma of each resistor")
    area_m2: float = _f(0.0, 1e-6, "area of one subtractor (m^2)")


@dataclass(frozen=True)
class AdcCard(_Section):
    """The column ADC: its architecture (a registered plug-in, :mod:`cosim.converters`;
    ``"sar"``: charge-redistribution SAR with a binary-weighted capacitor DAC) and its
    design values."""

    SECTION: ClassVar[str] = "adc"
    architecture: str = field(
        default="sar",
        kw_only=True,
        metadata={"choices": _RegisteredAdcs(), "doc": "ADC architecture (registered plug-in)"},
    )
    bits: int = _f(1, 8, "resolution (bits)")
    v_ref_v: float = _f(0.0, 5.0, "reference = full-scale input (V)", lo_open=True)
    v_dd_v: float = _f(0.0, 5.0, "digital/comparator supply (V)", lo_open=True)
    clock_hz: float = _f(1e3, 1e10, "SAR clock; one conversion takes bits + 2 cycles (Hz)")
    c_unit_f: float = _f(1e-18, 1e-9, "unit capacitor of the DAC (F)")
    c_parasitic_f: float = _f(0.0, 1e-9, "parasitic capacitance on the DAC top plate (F)")
    cap_mismatch_sigma_rel: float = _f(0.0, 0.2, "relative sigma of one unit capacitor")
    comparator_offset_v: float = _f(-0.1, 0.1, "comparator offset of the nominal instance (V)")
    comparator_offset_sigma_v: float = _f(0.0, 0.1, "instance-to-instance offset sigma (V)")
    comparator_gain_v_per_v: float = _f(10.0, 1e9, "comparator small-signal gain (V/V)")
    c_comparator_f: float = _f(0.0, 1e-9, "switched capacitance per comparison (F)")
    c_logic_f: float = _f(0.0, 1e-9, "switched logic capacitance per active SAR cycle (F)")
    r_switch_ohm: float = _f(1e-3, 1e9, "on-resistance of the DAC switches (ohm)")
    columns_per_adc: int = _f(1, 1024, "columns time-multiplexed onto one ADC")
    area_m2: float = _f(0.0, 1e-6, "area of one ADC (m^2)")


@dataclass(frozen=True)
class SenseRowCard(_Section):
    """Sparsity-sensing line: devices at a fixed conductance on every row, with its own TIA;
    its output bounds every column's output so the ADC can skip MSB cycles known to be 0."""

    SECTION: ClassVar[str] = "sense_row"
    enabled: bool = field(metadata={"doc": "build the sense row and use it"})
    g_sense_s: float = _f(0.0, 1e-3, "conductance of every sense device (S)", lo_open=True)
    r_feedback_ohm: float = _f(1.0, 1e10, "sense TIA feedback resistance (ohm)")
    max_skip_bits: int = _f(0, 7, "most MSB cycles a conversion may skip")
    margin_rel: float = _f(0.0, 0.5, "extra relative margin on the thresholds beyond SPICE's")
    offset_n_sigma: float = _f(0.0, 10.0, "random op-amp offsets the thresholds allow for (sigmas)")
    c_comparator_f: float = _f(0.0, 1e-9, "switched capacitance per threshold comparison (F)")
    area_m2: float = _f(0.0, 1e-6, "area of the sense TIA and its comparators (m^2)")


@dataclass(frozen=True)
class DigitalCard(_Section):
    """Digital periphery that SPICE does not simulate (adders, buffers, control)."""

    SECTION: ClassVar[str] = "digital"
    e_add_j: float = _f(0.0, 1e-9, "energy of one partial-sum addition (J)")
    e_activation_j: float = _f(0.0, 1e-9, "energy to buffer/pool one activation (J)")
    area_per_column_m2: float = _f(0.0, 1e-6, "digital area per output column (m^2)")


@dataclass(frozen=True)
class AreaCard(_Section):
    """Per-component areas not attached to another section."""

    SECTION: ClassVar[str] = "area"
    device_cell_m2: float = _f(0.0, 1e-6, "one crossbar cell (device + access) (m^2)")


_SECTIONS: dict[str, type[_Section]] = {
    c.SECTION: c
    for c in (
        DeviceCard,
        ArrayCard,
        DacCard,
        OpampCard,
        TiaCard,
        SubtractorCard,
        AdcCard,
        SenseRowCard,
        DigitalCard,
        AreaCard,
    )
}


@dataclass(frozen=True)
class Card:
    """A validated hardware card. Build with :func:`load_card` or :meth:`Card.from_dict`."""

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
        top_known = {"card", *_SECTIONS}
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
                f"card.schema = {_short(schema)} but this cosim reads schema {CARD_SCHEMA}; "
                "update the card to the current format (see the default card)"
            )
        name = meta.get("name", "unnamed")
        if not isinstance(name, str) or not name:
            raise CardError("card.name must be a non-empty string")
        _check_name(name)
        sections = {}
        for sec, klass in _SECTIONS.items():
            if sec not in data:
                raise CardError(f"missing table [{sec}] in hardware card")
            sections[sec] = klass.from_dict(data[sec])
        return cls(name=name, **sections)  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict that :meth:`from_dict` turns back into an equal card."""
        out: dict[str, Any] = {"card": {"name": self.name, "schema": CARD_SCHEMA}}
        for sec in _SECTIONS:
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
        """:meth:`to_dict` less every key of :data:`_ADDED_KEYS` that holds the value cards
        meant before it existed (so their hashes do not change)."""
        d = self.to_dict()
        for (sec, key), value in _ADDED_KEYS.items():
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
        meant (:data:`_ADDED_KEYS`: ``adc.architecture = "sar"``), so libraries
        characterized before it existed still match their card.
        """
        d = self._hashed_dict()
        d["card"] = {"schema": CARD_SCHEMA}
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()

    def to_toml(self) -> str:
        """The card as TOML text (round-trips through :func:`parse_card`)."""
        lines = [f"[card]\nname = {_toml_string(self.name)}\nschema = {CARD_SCHEMA}\n"]
        for sec in _SECTIONS:
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
    :func:`parse_card` reads back exactly ``text`` (``json.dumps`` would write a character
    outside the Basic Multilingual Plane as a surrogate pair, which TOML refuses)."""
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


def parse_card(text: str, source: str = "<string>") -> Card:
    """Parse TOML text into a validated :class:`Card`; ``source`` names it in errors."""
    where = _show(source)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CardError(f"{where} is not valid TOML: {_show(exc, 300)}") from None
    except RecursionError:
        raise CardError(f"{where} is not a hardware card: its arrays nest too deeply") from None
    except ValueError as exc:  # an integer of more than 4300 digits
        raise CardError(
            f"{where} is not a hardware card: {_show(exc, 300)}".split(";")[0]
        ) from None
    try:
        return Card.from_dict(data)
    except CardError as exc:
        raise CardError(f"{where}: {exc}") from None


def default_card_text() -> str:
    """The TOML text of the card that ships with cosim."""
    return resources.files("cosim.data").joinpath("default_card.toml").read_text("utf-8")


def load_card(path: str | Path | None = None) -> Card:
    """Load and validate a card from ``path``; ``None`` gives the default card.

    Raises
    ------
    CardError
        If the path is missing, names no file at all (a NUL byte, a name longer than the
        file system allows) or not a regular file (a directory, a FIFO, a device), the
        file is larger than :data:`MAX_CARD_BYTES`, not UTF-8 text, not TOML, or any key is
        unknown or out of range. The message is one line: the path's control characters
        are escaped.
    """
    if path is None:
        return parse_card(default_card_text(), "default card")
    p = Path(path)
    raw = _read_card_file(p)
    try:
        text = raw.decode("utf-8-sig")  # tolerate the byte-order mark some editors write
    except UnicodeDecodeError as exc:
        raise CardError(
            f"hardware card {_show(p)} is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset "
            f"{exc.start}); save it as UTF-8"
        ) from None
    return parse_card(text, str(p))


def _read_card_file(p: Path) -> bytes:
    """The bytes of the card file ``p``, refusing anything but a regular file of at most
    :data:`MAX_CARD_BYTES` (a FIFO or a device such as ``/dev/zero`` is never read)."""
    shown = _show(p)
    if "\0" in str(p):  # no file name holds one (os.stat raises ValueError for it)
        raise CardError(f"hardware card {shown} holds a NUL byte, which no file name can")
    try:
        st = os.stat(p)
    except (FileNotFoundError, NotADirectoryError):
        raise CardError(
            f"hardware card {shown} does not exist (pass a TOML file to --card)"
        ) from None
    except (OSError, ValueError) as exc:  # a name too long, no permission, a loop of links
        raise CardError(f"cannot read hardware card {shown}: {_reason(exc)}") from None
    _check_regular(p, st.st_mode)
    try:
        # O_NONBLOCK: should a FIFO replace the file after the check, opening it does not
        # wait for a writer; fstat below then refuses it
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except (OSError, ValueError) as exc:
        raise CardError(f"cannot read hardware card {shown}: {_reason(exc)}") from None
    with os.fdopen(fd, "rb") as fh:
        _check_regular(p, os.fstat(fd).st_mode)
        raw = fh.read(MAX_CARD_BYTES + 1)
    if len(raw) > MAX_CARD_BYTES:
        raise CardError(
            f"hardware card {shown} is larger than {MAX_CARD_BYTES // 1024} KiB, far more than any "
            "card; pass the card's TOML file to --card"
        )
    return raw


def _check_regular(p: Path, mode: int) -> None:
    if stat.S_ISDIR(mode):
        raise CardError(
            f"hardware card {_show(p)} is a directory, not a card file; pass a TOML file to --card"
        )
    if not stat.S_ISREG(mode):
        raise CardError(
            f"hardware card {_show(p)} is not a regular file (a FIFO, socket or device); pass a "
            "TOML file to --card"
        )


def describe_fields() -> list[tuple[str, str]]:
    """Every card key with its documentation and range (for ``--help`` and the docs)."""
    out: list[tuple[str, str]] = []
    for klass in _SECTIONS.values():
        out.extend(klass.describe())
    return out
