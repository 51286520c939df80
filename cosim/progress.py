"""Progress bars for long work (tqdm), quiet when not attached to a terminal unless asked."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def progress_enabled() -> bool:
    """Progress bars show on a terminal, or always with ``COSIM_PROGRESS=1``; never with ``=0``."""
    env = os.environ.get("COSIM_PROGRESS")
    if env is not None:
        return env not in ("0", "", "false", "no")
    return sys.stderr.isatty()


def progress(iterable: Iterable[T], *, total: int | None = None, desc: str = "") -> Iterator[T]:
    """Wrap ``iterable`` in a tqdm bar on stderr when progress bars are enabled."""
    if not progress_enabled():
        yield from iterable
        return
    from tqdm import tqdm

    yield from tqdm(iterable, total=total, desc=desc, leave=False, dynamic_ncols=True)


class Bar:
    """A manually advanced progress bar (``update(n)``, ``set_postfix(...)``), or a no-op."""

    def __init__(self, total: int | None, desc: str = "") -> None:
        self._bar = None
        if progress_enabled():
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True)

    def update(self, n: int = 1) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def set_postfix(self, **kw: object) -> None:
        if self._bar is not None:
            self._bar.set_postfix(**kw)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def __enter__(self) -> Bar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
