"""Checking and decoding the blocks of ``library.json``.

A block is ``{"kind", "surrogate", "netlist_hashes", "extra"}``; arrays were moved to
``arrays.npz`` and are referenced as ``{"$array": key}``. A library is the output of a
characterization: every number of a block (its surrogate and its ``extra``) is finite, and a
NaN or infinity there means the file is corrupt. Each failure is a one-line
:class:`~cosim.errors.LibraryError` naming the block and the field.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from cosim.card import Card
from cosim.converters import adc_architecture, adc_architecture_for_kind
from cosim.errors import CosimError, LibraryError
from cosim.library.common import FLOAT_MAX, detail, field_path, short, show

__all__ = [
    "check_adc_models",
    "expected_kinds",
    "join_arrays",
    "kind_mismatch",
    "load_block",
    "surrogate_decoder",
]


def join_arrays(obj: Any, arrays: dict[str, np.ndarray], where: tuple[Any, ...]) -> Any:
    """``obj`` (a block's ``surrogate`` or ``extra`` from ``library.json``, found at the key
    path ``where``) with every ``{"$array": key}`` replaced by its array from
    ``arrays.npz``, after checking that every number in it is finite and every array holds
    real numbers (booleans, integers or finite floats).

    Raises
    ------
    LibraryError
        An array is missing, complex, of strings or objects, or holds NaN/inf; a number is
        NaN, infinite or an integer beyond any float. The message names the field.
    """
    if isinstance(obj, dict):
        if set(obj) == {"$array"}:
            key = obj["$array"]
            if not isinstance(key, str) or key not in arrays:
                raise LibraryError(
                    f"the surrogate library's arrays.npz lacks {short(key)} "
                    f"({field_path(where)}); the library is incomplete — re-run cosim characterize"
                )
            arr = arrays[key]
            if arr.dtype.kind not in "biuf":
                what = "complex numbers" if arr.dtype.kind == "c" else f"dtype {arr.dtype}"
                raise LibraryError(
                    f"array {short(key)} ({field_path(where)}) in the surrogate library holds "
                    f"{what}, not real numbers; the library is corrupt — re-run cosim "
                    "characterize"
                )
            if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
                raise LibraryError(
                    f"array {short(key)} ({field_path(where)}) in the surrogate library holds "
                    "NaN or inf; the library is corrupt — re-run cosim characterize"
                )
            return arr
        return {k: join_arrays(v, arrays, (*where, k)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [join_arrays(v, arrays, (*where, i)) for i, v in enumerate(obj)]
    if isinstance(obj, float) and not math.isfinite(obj):
        raise LibraryError(
            f"{field_path(where)} = {obj!r} is not a finite number; "
            "the library is corrupt — re-run cosim characterize"
        )
    if isinstance(obj, int) and not isinstance(obj, bool) and abs(obj) > FLOAT_MAX:
        raise LibraryError(
            f"{field_path(where)} = {short(obj)} is beyond any float; "
            "the library is corrupt — re-run cosim characterize"
        )
    return obj


def surrogate_decoder(kind: str) -> Any:
    """The ``from_dict`` of the surrogate ``kind`` (an ADC's through its architecture)."""
    if kind == "crossbar":
        from cosim.surrogates.crossbar import CrossbarModel

        return CrossbarModel.from_dict
    if kind == "tia":
        from cosim.surrogates.periphery import TiaModel

        return TiaModel.from_dict
    if kind == "subtractor":
        from cosim.surrogates.periphery import SubtractorModel

        return SubtractorModel.from_dict
    if kind == "sense_row":
        from cosim.surrogates.sense_row import SenseRowModel

        return SenseRowModel.from_dict
    arch = adc_architecture_for_kind(kind) if isinstance(kind, str) else None
    if arch is not None:  # an ADC: decoded by its architecture (cosim.converters)
        return arch.from_dict
    raise LibraryError(f"unknown surrogate kind {short(kind)} in the library")


def expected_kinds(card: Card) -> dict[str, str]:
    """The surrogate kind of every block of ``card``'s chip, by block name."""
    kinds = {b: b for b in ("crossbar", "tia", "subtractor", "sense_row")}
    try:
        arch = adc_architecture(card.adc.architecture)
    except CosimError:
        return kinds  # an architecture that does not load: named when the ADC is used
    kinds[arch.block] = arch.kind
    return kinds


def load_block(
    name: str, b: dict[str, Any], arrays: dict[str, np.ndarray], card: Card, where: str
) -> tuple[Any, dict[str, Any]]:
    """The surrogate and the ``extra`` of block ``name`` (``b``, from ``library.json``)."""
    block = f"block '{show(name, 60)}' of {where}"
    kind = b.get("kind", name)
    if not isinstance(kind, str):
        raise LibraryError(f"{block}: unknown surrogate kind {short(kind)}; corrupt file")
    try:
        decode = surrogate_decoder(kind)
    except LibraryError as exc:
        raise LibraryError(f"{block}: {show(exc)}") from None
    want = expected_kinds(card).get(name)
    if want is not None and kind != want:
        raise LibraryError(
            f"{block}: its surrogate kind is {short(kind)}, but the block '{name}' holds a "
            f"'{want}' surrogate; the library is corrupt — re-run cosim characterize"
        )
    for key, default in (("surrogate", None), ("extra", {}), ("netlist_hashes", {})):
        value = b.get(key, default)
        if not isinstance(value, dict):
            got = "it is missing" if key not in b else f"not {short(value, 30)}"
            raise LibraryError(
                f"{block}: '{key}' must be a table (a JSON object), {got}; the library is "
                "corrupt — re-run cosim characterize"
            )
    try:
        sd = join_arrays(b["surrogate"], arrays, ("blocks", name, "surrogate"))
        extra = join_arrays(b.get("extra", {}), arrays, ("blocks", name, "extra"))
    except RecursionError:
        raise LibraryError(f"{block} is nested too deeply; the library is corrupt") from None
    except LibraryError as exc:  # it names the field: blocks.NAME.extra...
        raise LibraryError(f"{where}: {show(exc)}") from None
    try:
        return decode(sd), extra
    except RecursionError:
        raise LibraryError(f"{block} is nested too deeply; the library is corrupt") from None
    except Exception as exc:  # whatever the decoder raises, a malformed block is corrupt
        raise LibraryError(
            f"{block} cannot be decoded ({detail(exc)}); the library is corrupt or from "
            "another cosim"
        ) from None


def kind_mismatch(value: Any, template: Any) -> str | None:
    """What ``value`` is instead of the kind of ``template`` (a number, an array, a table),
    or None where they agree (or ``template`` is of another kind)."""
    if isinstance(template, (int, float, np.number)) and not isinstance(template, bool):
        ok = isinstance(value, (int, float, np.number)) and not isinstance(value, bool)
        want = "a number"
    elif isinstance(template, (np.ndarray, list)):
        ok, want = isinstance(value, (np.ndarray, list)), "an array"
    elif isinstance(template, Mapping):
        ok, want = isinstance(value, Mapping), "a table"
    else:
        return None
    if ok:
        return None
    got = "an array" if isinstance(value, (np.ndarray, list)) else type(value).__name__
    return f"must be {want}, not {'null' if value is None else got}"


def check_adc_models(
    card: Card, surrogates: dict[str, Any], extras: dict[str, Any], where: str
) -> None:
    """Decode the ADC's model at every resolution its block stores (``extra.by_bits``), as
    :meth:`SurrogateLibrary.adc_models_by_bits` and the engine do, so that a malformed one
    is a :class:`LibraryError` now, naming the block and the field, not a crash later.

    Each ``by_bits`` entry is first compared field by field with the nominal surrogate's
    :meth:`to_dict` (a number where it has a number, an array where it has an array)."""
    try:
        arch = adc_architecture(card.adc.architecture)
    except CosimError:
        return  # named when the ADC is used
    name = arch.block
    if name not in surrogates or "by_bits" not in extras.get(name, {}):
        return
    block = f"block '{name}' of {where}"
    table = extras[name]["by_bits"]
    if isinstance(table, Mapping):
        template = surrogates[name].to_dict()
        for bits, entry in table.items():
            if not isinstance(entry, Mapping):
                continue  # models_by_bits names it
            for key, value in entry.items():
                problem = kind_mismatch(value, template.get(key))
                if problem is not None:
                    field_ = field_path(("extra", "by_bits", str(bits), key))
                    raise LibraryError(
                        f"{block}: {field_} {problem} (the ADC model at that resolution); "
                        "the library is corrupt — re-run cosim characterize"
                    )
    try:
        arch.models_by_bits(extras[name])
    except RecursionError:
        raise LibraryError(f"{block}: extra.by_bits is nested too deeply; corrupt file") from None
    except Exception as exc:  # whatever the decoder raises, a malformed model is corrupt
        raise LibraryError(
            f"{block}: extra.by_bits cannot be decoded ({detail(exc)}); the library is "
            "corrupt — re-run cosim characterize"
        ) from None
