"""cosim: SPICE-grounded co-simulation of neural networks on analog NVM crossbars.

``import cosim`` is deliberately light: it imports neither PySpice nor matplotlib
nor Jupyter. Sub-packages load what they need when they are used.
"""

from cosim.errors import (
    CardError,
    CosimError,
    DataError,
    LibraryError,
    ModelFileError,
    SimulationError,
)

__version__ = "0.1.0"

__all__ = [
    "CardError",
    "CosimError",
    "DataError",
    "LibraryError",
    "ModelFileError",
    "SimulationError",
    "__version__",
]
