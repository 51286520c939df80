"""The one place that owns ngspice: worker processes, timeouts, convergence aids, cache.

Importing this package does not import PySpice; only the worker processes load libngspice.
"""

from cosim.spice.runner import (
    SpiceJob,
    SpiceResult,
    SpiceRunner,
    check_cache_dir,
    default_cache_dir,
    ngspice_version,
)

__all__ = [
    "SpiceJob",
    "SpiceResult",
    "SpiceRunner",
    "check_cache_dir",
    "default_cache_dir",
    "ngspice_version",
]
