"""BLAS thread control for the many small products of the engine and the nodal solver.

``threadpoolctl.threadpool_limits`` looks up the loaded BLAS libraries on every call (about
1 ms); :func:`single_thread` keeps one controller, made on first use, when NumPy's and
SciPy's BLAS are both loaded.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

_controller = None
_depth = 0  # contexts open: inside one, another changes nothing (and costs nothing)


@contextmanager
def single_thread() -> Iterator[None]:
    """A context in which every BLAS library runs one thread (many small products: threads
    only contend, the more so on a shared machine). Nested contexts, in this thread or in
    threads started inside it, are free: setting the limit costs about 0.5 ms."""
    global _controller, _depth
    if _depth > 0:
        yield
        return
    if _controller is None:
        import scipy.linalg  # noqa: F401  (its BLAS, loaded now, is limited too)
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()
    with _controller.limit(limits=1):
        _depth += 1
        try:
            yield
        finally:
            _depth -= 1
