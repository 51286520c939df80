"""Fitted behavioural models (surrogates) of the characterized circuit blocks.

Each surrogate is a small frozen object: ``predict``-style methods vectorized over any batch
shape, ``to_dict()``/``from_dict()`` for the library file, and nothing that needs SPICE.
Fitting lives in separate fitter classes (scikit-learn contract: ``fit(X, y)`` returns
``self``; learned attributes end in ``_``).
"""
