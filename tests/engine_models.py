"""Trained models and engine probes shared by the engine tests (not a conftest: imported).

Models are trained programmatically, once per test process (``functools.cache``), so
``test_engine.py`` and ``test_engine_cli.py`` share them. They are tiny on purpose — the
engine tests need *a* quantized model of each kind, not a good one:

====================  ===========================================================  ========
name                  recipe                                                       cost
====================  ===========================================================  ========
``digits-global``     digits MLP, global W4A3, 3 epochs, seed 0                    < 1 s
``digits-per-layer``  digits MLP, per-layer W4A3, 3 epochs                         < 1 s
``digits-unipolar``   digits MLP, global W4A3, half the hidden filters unipolar    ~ 2 s
``digits-all-``       digits MLP, global W4A3, every hidden filter unipolar, 10    ~ 2 s
``unipolar``          epochs (84 % on the integer model: the unipolar tests need
                      one that works)
``digits-float``      digits MLP, float scheme, 1 epoch (for the refusal test)     < 1 s
``digits-w5``         digits MLP, global W5A3, 1 epoch: more weight bits than the  < 1 s
                      default card's 4-bit PCM levels (for the refusal test)
``fashion-lenet``     LeNet-5, global W4A3, 1 epoch on the first 6000 training     ~ 2 s
                      images of Fashion-MNIST
``fashion-lenet-a8``  the same at W4A8: 8-bit conversions, up to 6 MSB cycles to   ~ 2 s
                      skip (the sense-row tests) and finer codes for verify-spice
====================  ===========================================================  ========

The Fashion-MNIST models are trained with a 200-image test split (training reports its test
accuracy with :func:`cosim.model.forward.integer_forward`; the full 10k would cost more
than the training itself). Their accuracy does not matter to any test.

:func:`evaluate_recording` runs :func:`cosim.engine.evaluate.evaluate` with an engine that
also keeps every hidden layer's output codes; :func:`reference_codes` gives the same codes
from the integer reference.
"""

from __future__ import annotations

import functools
from dataclasses import replace

import numpy as np
import pytest

from cosim.datasets import Dataset, load_dataset
from cosim.engine import evaluate as evaluate_mod
from cosim.engine.config import EFFECTS_OFF
from cosim.engine.core import Engine
from cosim.model import Model, WeightLayer, integer_forward
from cosim.train.trainer import TrainConfig, train

_RECIPES = {
    "digits-global": ("digits", dict(model="mlp", scheme="global", w_bits=4, a_bits=3, epochs=3)),
    "digits-per-layer": (
        "digits",
        dict(model="mlp", scheme="per-layer", w_bits=4, a_bits=3, epochs=3),
    ),
    "digits-unipolar": (
        "digits",
        dict(model="mlp", scheme="global", w_bits=4, a_bits=3, epochs=3, unipolar_fraction=0.5),
    ),
    "digits-all-unipolar": (
        "digits",
        dict(model="mlp", scheme="global", w_bits=4, a_bits=3, epochs=10, unipolar_fraction=1.0),
    ),
    "digits-float": ("digits", dict(model="mlp", scheme="float", epochs=1)),
    "digits-w5": ("digits", dict(model="mlp", scheme="global", w_bits=5, a_bits=3, epochs=1)),
    "fashion-lenet": (
        "fashion-small",
        dict(model="lenet5", scheme="global", w_bits=4, a_bits=3, epochs=1),
    ),
    "fashion-lenet-a8": (
        "fashion-small",
        dict(model="lenet5", scheme="global", w_bits=4, a_bits=8, epochs=1),
    ),
}


@functools.cache
def dataset(name: str) -> Dataset:
    """``digits``, ``fashion-mnist`` (all 10k test images) or ``fashion-small`` (the
    training subset of the recipes above)."""
    if name == "fashion-small":
        f = dataset("fashion-mnist")
        return replace(
            f, x_train=f.x_train[:6000], y_train=f.y_train[:6000],
            x_test=f.x_test[:200], y_test=f.y_test[:200],
        )  # fmt: skip
    return load_dataset(name)


@functools.cache
def trained(name: str) -> Model:
    """The model of recipe ``name`` (trained once per process, seed 0)."""
    ds_name, kw = _RECIPES[name]
    return train(TrainConfig(**kw), dataset(ds_name), np.random.default_rng(0)).model


def hidden_indices(model: Model) -> list[int]:
    """Indices in ``model.layers`` of the hidden weight layers (the crossbar layers)."""
    return [
        i for i, lay in enumerate(model.layers) if isinstance(lay, WeightLayer) and lay.is_hidden
    ]


def _as_u8(codes: np.ndarray) -> np.ndarray:
    # activation codes have at most 8 bits: uint8 keeps 10k Fashion-MNIST images in memory
    assert codes.min(initial=0) >= 0 and codes.max(initial=0) <= 255
    return codes.astype(np.uint8)


def reference_codes(
    model: Model, x: np.ndarray, batch: int = 1000
) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """Predictions and hidden-layer codes (uint8) of :func:`integer_forward`."""
    hidden = hidden_indices(model)
    preds, codes = [], {i: [] for i in hidden}
    for b0 in range(0, len(x), batch):
        r = integer_forward(model, x[b0 : b0 + batch], keep_codes=True)
        preds.append(r.predictions)
        for i in hidden:
            codes[i].append(_as_u8(r.codes[i]))
    return np.concatenate(preds), {i: np.concatenate(c) for i, c in codes.items()}


def evaluate_recording(model, library, x, y, config, **kw):
    """:func:`~cosim.engine.evaluate.evaluate`, plus each hidden layer's output codes (uint8,
    batches in order; chip instances one after the other) as the engine computed them."""
    records: dict[int, list[np.ndarray]] = {}

    class RecordingEngine(Engine):
        def _hidden(self, i, *args, **kwargs):
            out = super()._hidden(i, *args, **kwargs)
            records.setdefault(i, []).append(_as_u8(out))
            return out

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(evaluate_mod, "Engine", RecordingEngine)
        result = evaluate_mod.evaluate(model, library, x, y, config, **kw)
    return result, {i: np.concatenate(c) for i, c in records.items()}


#: Every hardware effect off: what remains is the mapping through the analog path.
ALL_OFF = EFFECTS_OFF
