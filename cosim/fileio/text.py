"""Text for one-line messages: user text escaped, an exception in a few words.

Every error cosim raises about a file is one line that names the path: a path (or any other
user text) is shown with its control characters escaped (:func:`show_path`,
:func:`show_text`), and an exception in a few words on one line (:func:`error_text`). A path
that no file can have is recognised before the system is asked (:func:`path_problem`), so
that it is an error of the caller's class like any other, never a ``ValueError`` or
``OSError``.
"""

from __future__ import annotations

from cosim.messages import error_text, path_problem, show_path, show_text

__all__ = ["_named", "error_text", "path_problem", "show_path", "show_text"]


def _named(names: list[str], more: bool) -> str:
    shown = ", ".join(show_text(n) for n in sorted(names)[:4])
    return shown + (", ..." if more or len(names) > 4 else "")
