"""``cosim train``: quantization-aware training of networks for NVM crossbars, in NumPy.

Modules: :mod:`~cosim.train.layers` (layers with STE, a package), :mod:`~cosim.train.network`
(architectures), :mod:`~cosim.train.scheme` (float / per-layer / global quantization),
:mod:`~cosim.train.unipolar` (unipolar filters: search and loss), :mod:`~cosim.train.optim`,
:mod:`~cosim.train.config` (a run's options), :mod:`~cosim.train.trainer` (the loop),
:mod:`~cosim.train.checkpoint`, :mod:`~cosim.train.export` (evaluation, export to a model
file, final metrics), :mod:`cosim.model`
(the deployed format and ``load_model``), :mod:`~cosim.train.command` (the CLI).
Importing this package imports nothing heavy.
"""
