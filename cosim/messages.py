"""Text for one-line messages: user text escaped, an exception in a few words.

Every error cosim raises is one line: a path, a key or any other user text is shown with
its control characters escaped (:func:`show_text`, :func:`show_path`), and an exception in
a few words on one line (:func:`error_text`). A path that no file can have is recognised
before the system is asked (:func:`path_problem`). Standard library only, so the card and
the CLI can use it without importing NumPy.
"""

from __future__ import annotations

import os
from typing import Any


def show_text(text: Any, limit: int | None = None) -> str:
    """``text`` for a one-line message: every character that is not printable (a newline,
    a tab, NUL, U+2028, the surrogate standing for an undecodable byte) escaped as Python
    writes it in a string literal; printable text is kept as it is; cut to ``limit``
    characters if given. Bytes and path objects are decoded as file names.

    Examples
    --------
    >>> print(show_text("new\\nline"), show_text("a\\x00b"), show_text("plain path"))
    new\\nline a\\x00b plain path
    >>> show_text("abcdefgh", limit=6)
    'abc...'
    """
    text = os.fsdecode(text) if isinstance(text, (bytes, os.PathLike)) else str(text)
    if not text.isprintable():
        text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if limit is None or len(text) <= limit else text[: limit - 3] + "..."


def show_path(path: str | bytes | os.PathLike[str]) -> str:
    """A path (str, bytes or path object) for a one-line message (:func:`show_text`)."""
    return show_text(os.fsdecode(path))


def error_text(exc: BaseException, limit: int = 160) -> str:
    """An exception in a few words on one line, for a message that names the file itself.

    An OSError gives its ``strerror`` (``File name too long``), without the path; anything
    else its text with whitespace runs collapsed and other control characters escaped, cut
    to ``limit`` characters; an exception without text gives its class name.
    """
    reason = getattr(exc, "strerror", None)
    if not (isinstance(reason, str) and reason):
        reason = " ".join(str(exc).split())
    return show_text(reason, limit) or type(exc).__name__


def path_problem(path: str | bytes | os.PathLike[str]) -> str | None:
    """What keeps ``path`` from naming any file before the system is asked, or None.

    A NUL byte ends a C string, so no file name holds one (Python raises ``ValueError:
    embedded null byte`` for it rather than an OSError).

    Examples
    --------
    >>> path_problem("a\\x00b")
    'holds a NUL byte, which no file name can'
    >>> path_problem("a/b") is None
    True
    """
    text = os.fsdecode(path)
    if "\x00" in text:
        return "holds a NUL byte, which no file name can"
    return None
