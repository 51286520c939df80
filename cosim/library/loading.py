"""Loading a surrogate library directory and checking it against a card.

:func:`load_library` reads every file bounded (:mod:`cosim.library.reading`), checks the
schema version, that every referenced array exists and holds real numbers and that every
block is well formed (:mod:`cosim.library.blocks`), reads the validation records
(:mod:`cosim.library.validation`) and — when a card is given — that the library was
characterized for that card.
"""

from __future__ import annotations

from pathlib import Path

from cosim.card import Card
from cosim.errors import CardError, LibraryError
from cosim.fileio import LIBRARY_MARKER
from cosim.library.blocks import check_adc_models, load_block
from cosim.library.common import SCHEMA_VERSION, short, show
from cosim.library.reading import read_library_arrays, read_library_json
from cosim.library.surrogates import SurrogateLibrary
from cosim.library.validation import read_validation

__all__ = ["card_differences", "load_library"]


def card_differences(a: Card, b: Card, limit: int = 5) -> list[str]:
    """Keys (``section.key``) whose values differ between two cards."""
    da, db = a.to_dict(), b.to_dict()
    diffs = []
    for sec in da:
        if sec == "card":
            continue
        for k in da[sec]:
            if da[sec][k] != db.get(sec, {}).get(k):
                diffs.append(f"{sec}.{k} ({da[sec][k]!r} vs {db[sec][k]!r})")
    return diffs[:limit]


def load_library(path: str | Path, card: Card | None = None) -> SurrogateLibrary:
    """Load and check a surrogate library directory.

    Every file is read bounded: ``library.json`` and ``validation.json`` at most
    :data:`LIBRARY_JSON_MAX_BYTES`, the arrays at most :data:`ARRAYS_MAX_BYTES`; each must
    be a regular file (not a link or device) inside the library directory.

    Every block is checked as the engine will use it: its ``kind`` names its surrogate
    (and a block of the card's chip — ``crossbar``, ``tia``, ``subtractor``, ``sense_row``
    and the ADC's — has the kind of that block), its ``surrogate`` and ``extra`` are tables,
    every number in them is finite and every array real (:func:`join_arrays`), the
    surrogate decodes through its own ``from_dict``, and so does the ADC's model at every
    resolution it stores (:meth:`SurrogateLibrary.adc_models_by_bits`). ``validation.json``
    must be a JSON object; its values are read as they are.

    Raises
    ------
    LibraryError
        Missing or corrupt files, another schema version, a block that is malformed or fails
        to decode, or (with ``card``) a library characterized for a different hardware card.
        The message is one line and names the block and the field.
    """
    path = Path(path)
    doc = read_library_json(path)
    lib_file = path / LIBRARY_MARKER
    where = show(lib_file)
    if doc["schema_version"] != SCHEMA_VERSION:
        raise LibraryError(
            f"{where} has schema version {short(doc['schema_version'])}, this cosim reads "
            f"version {SCHEMA_VERSION}; re-run cosim characterize to rebuild it"
        )
    for key in ("card", "card_hash", "blocks"):
        if key not in doc:
            raise LibraryError(f"{where} lacks '{key}'; the library is corrupt")
    if not isinstance(doc["blocks"], dict) or not all(
        isinstance(b, dict) for b in doc["blocks"].values()
    ):
        raise LibraryError(f"{where}: 'blocks' must map block names to objects; corrupt file")
    try:
        # a library of an earlier cosim may store keys since removed from the card
        lib_card, stored_hash = Card.from_stored(doc["card"])
    except CardError as exc:
        raise LibraryError(f"the card stored in {where} is invalid: {exc}") from None
    if stored_hash != doc["card_hash"]:
        raise LibraryError(f"{where}: the stored card does not match its hash; corrupt file")
    if card is not None and card.physics_hash() != lib_card.physics_hash():
        diffs = card_differences(card, lib_card)
        raise LibraryError(
            f"the surrogate library {show(path)} was characterized for card "
            f"'{show(lib_card.name, 100)}', which differs from card '{show(card.name, 100)}' "
            f"in: {', '.join(diffs)}; run `cosim characterize --card <your card> --out <new "
            "dir>` and use that library"
        )
    arrays = read_library_arrays(path, doc)
    surrogates, extras = {}, {}
    for name, b in doc["blocks"].items():
        surrogates[name], extras[name] = load_block(name, b, arrays, lib_card, where)
    check_adc_models(lib_card, surrogates, extras, where)
    # the records are a report to a reader, never an input of the engine: only their
    # shape is checked, a NaN or null metric is kept as it is
    validation = read_validation(path)
    meta = {k: v for k, v in doc.items() if k not in ("blocks", "card")}
    return SurrogateLibrary(path, lib_card, meta, surrogates, extras, validation)
