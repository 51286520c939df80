"""``cosim train``: quantization-aware training of networks for NVM crossbars, in NumPy.

Modules: :mod:`~cosim.train.layers` (layers with STE), :mod:`~cosim.train.network`
(architectures), :mod:`~cosim.train.scheme` (float / per-layer / global quantization),
:mod:`~cosim.train.unipolar` (unipolar filters: search and loss), :mod:`~cosim.train.optim`,
:mod:`~cosim.train.trainer` (loop, checkpoints, export into
:mod:`cosim.model`, the deployed format), :mod:`~cosim.train.command` (the CLI).
Importing this package imports nothing heavy.
"""
