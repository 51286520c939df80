"""Fitted behavioural models (surrogates) of the characterized circuit blocks.

Each surrogate is a small frozen object: ``predict``-style methods vectorized over any batch
shape, ``to_dict()``/``from_dict()`` for the library file, and nothing that needs SPICE.
Fitting lives in separate fitter classes (scikit-learn contract: ``fit(X, y)`` returns
``self``; learned attributes end in ``_``).

Modules: :mod:`~cosim.surrogates.crossbar`, :mod:`~cosim.surrogates.periphery` (TIA,
subtractor), :mod:`~cosim.surrogates.sense_row` and the package
:mod:`~cosim.surrogates.adc` (the SAR ADC, one module per idea; the SAR is registered as an
ADC architecture of :mod:`cosim.converters`).
"""
