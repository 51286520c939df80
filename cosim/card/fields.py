"""How a card field is declared and checked: ranges, choices, the strict section mixin.

Every field of a section is declared with :func:`ranged` (a number in a documented range)
or :func:`choice` (one of a few words); :class:`Section` builds a frozen section from a TOML
table, naming an unknown key, a wrong type or an out-of-range value in one line.
"""

from __future__ import annotations

import dataclasses
import math
import unicodedata
from dataclasses import field, fields
from typing import Any, ClassVar

from cosim.converters import adc_architecture_names
from cosim.errors import CardError
from cosim.messages import show_text as _show


def ranged(lo: float, hi: float, doc: str, *, lo_open: bool = False, default: Any = None) -> Any:
    """A card field with an allowed range ``[lo, hi]`` (``(lo, hi]`` with ``lo_open``)."""
    meta = {"range": (lo, hi), "lo_open": lo_open, "doc": doc}
    if default is None:
        return field(metadata=meta)
    return field(default=default, metadata=meta)


def choice(options: tuple[str, ...], doc: str) -> Any:
    return field(metadata={"choices": options, "doc": doc})


class RegisteredAdcs:
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
#: :meth:`~cosim.card.document.Card.hash` and :meth:`~cosim.card.document.Card.physics_hash`:
#: cards, libraries and reports made before the key existed keep their hashes and stay valid.
ADDED_KEYS: dict[tuple[str, str], Any] = {
    ("adc", "architecture"): "sar",
    # the flash ADC's ladder (read only by adc.architecture = "flash")
    ("adc", "ladder_r_total_ohm"): 200e3,
    ("adc", "ladder_mismatch_sigma_rel"): 0.01,
    # an energy-only override of the characterized ADC energy (0: not set)
    ("adc", "e_conv_j"): 0.0,
    # per-layer tuned periphery of a dedicated (traditional) design: read only when an
    # evaluation sets EngineConfig.layer_tuning (cosim.engine.costs.layer_tuning)
    ("tia", "tuning_buffers_per_layer"): 2,
    ("tia", "tuning_dacs_per_layer"): 2,
}

#: Keys earlier cards had that nothing read (``array.c_wire_f``: documented "for read
#: energy", never used by the energy). A card file that sets one is refused like any unknown
#: key; a card *stored* by an earlier cosim (in a library) is read without it by
#: :meth:`~cosim.card.document.Card.from_stored`, its stored hash checked with the key.
REMOVED_KEYS: frozenset[tuple[str, str]] = frozenset({("array", "c_wire_f")})


class Section:
    """Mixin: build a frozen section from a TOML table with strict key/type/range checks."""

    SECTION: ClassVar[str] = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Section:
        if not isinstance(data, dict):
            raise CardError(f"[{cls.SECTION}] must be a table, got {type(data).__name__}")
        # a mixin: every class that uses it is a dataclass, which mypy cannot see here
        known = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - set(known), key=str)
        if unknown:
            raise CardError(
                f"unknown key {cls.SECTION}.{_show(unknown[0], 100)} in hardware card; "
                f"known keys of [{cls.SECTION}]: {', '.join(sorted(known))}"
            )
        optional = {k for k in known if (cls.SECTION, k) in ADDED_KEYS}
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
        return dataclasses.asdict(self)  # type: ignore[call-overload]  # a dataclass (mixin)

    @classmethod
    def describe(cls) -> list[tuple[str, str]]:
        """(key, documentation with allowed range) for every field, for help texts."""
        out = []
        for f in fields(cls):  # type: ignore[arg-type]  # a dataclass (mixin)
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


def check_name(name: str) -> None:
    """A card name is one line of Unicode text: it is shown in log lines, messages, plot
    titles and reports, and written to TOML and JSON files. A control character (a newline,
    a tab, NUL), a line or paragraph separator or a lone surrogate (JSON, as a library
    stores its card, can spell ``"\\ud800"``; no UTF-8 file can hold it) is a CardError."""
    for c in name:
        cat = unicodedata.category(c)
        if cat == "Cs":
            raise CardError(
                f"card.name = {short(name)} holds a lone surrogate ({c!r}), which is not "
                "Unicode text"
            )
        if cat in ("Cc", "Zl", "Zp"):
            what = "the control character" if cat == "Cc" else "the line separator"
            raise CardError(
                f"card.name = {short(name)} holds {what} {c!r}; a card name is one line of text"
            )


def short(value: Any, limit: int = 60) -> str:
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
            raise CardError(f"{key} = {short(value)} is not allowed; use one of {meta['choices']}")
        return value
    want_int = f.type in ("int", int)
    want_bool = f.type in ("bool", bool)
    if want_bool:
        if not isinstance(value, bool):
            raise CardError(f"{key} must be true or false, got {short(value)}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CardError(f"{key} must be a number, got {short(value)}")
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
            raise CardError(f"{key} must be finite, got {short(value)}")
    lo, hi = meta["range"]
    bad = value < lo or value > hi or (meta.get("lo_open") and value == lo)
    if bad:
        lb = "(" if meta.get("lo_open") else "["
        raise CardError(
            f"{key} = {short(value)} is out of range {lb}{lo:g}, {hi:g}] ({meta['doc']})"
        )
    return value
