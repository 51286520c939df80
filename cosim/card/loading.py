"""Reading a hardware card: TOML text or a file (bounded, regular files only), the default."""

from __future__ import annotations

import os
import stat
import tomllib
from importlib import resources
from pathlib import Path

from cosim.card.document import Card
from cosim.card.sections import SECTIONS
from cosim.errors import CardError
from cosim.messages import error_text as _reason
from cosim.messages import show_text as _show

#: Largest card file :func:`load_card` reads (1 MiB; the default card is about 4 kB).
MAX_CARD_BYTES = 1 << 20


def parse_card(text: str, source: str = "<string>") -> Card:
    """Parse TOML text into a validated :class:`~cosim.card.document.Card`; ``source`` names
    it in errors."""
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
    for klass in SECTIONS.values():
        out.extend(klass.describe())
    return out
