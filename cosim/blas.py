"""BLAS thread control for the many small products of the engine and the nodal solver.

``threadpoolctl.threadpool_limits`` looks up the loaded BLAS libraries on every call (about
1 ms); :func:`single_thread` keeps one controller, made on first use, when NumPy's and
SciPy's BLAS are both loaded.
"""

from __future__ import annotations

from contextlib import AbstractContextManager

_controller = None


def single_thread() -> AbstractContextManager:
    """A context in which every BLAS library runs one thread (many small products: threads
    only contend, the more so on a shared machine)."""
    global _controller
    if _controller is None:
        import scipy.linalg  # noqa: F401  (its BLAS, loaded now, is limited too)
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()
    return _controller.limit(limits=1)
