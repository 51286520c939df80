"""Issue 10 items 4-5: the fixed-range scheme and Bao et al.'s recipe, the activation L1
term, the digits28 stand-in, their flags, and the sparser-activations experiment's pieces."""

from __future__ import annotations

import numpy as np
import pytest

from cosim.cli import main
from cosim.datasets import load_dataset
from cosim.errors import CosimError
from cosim.model import integer_forward, load_model, save_model
from cosim.train.command import RECIPE_NAMES
from cosim.train.config import RECIPES, TrainConfig, recipe
from cosim.train.trainer import export_model, train


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="module")
def digits28():
    return load_dataset("digits28")


def _codes(cfg: TrainConfig, ds, n: int = 200) -> list[np.ndarray]:
    """ADC codes of the hidden layers of the exported model of ``cfg`` on the first ``n``
    test samples."""
    m = train(cfg, ds, np.random.default_rng(0)).model
    codes = integer_forward(m, ds.x_test[:n], keep_codes=True).codes
    return [codes[i] for i, lay in enumerate(m.layers) if lay in m.hidden_layers]


def _codes_at(out, ds, hi: float, n: int = 200) -> list[np.ndarray]:
    """Hidden codes of a trained network exported with its hidden ranges set to ``hi`` and
    its biases scaled with them (the same real network in units of ``hi``)."""
    sch, net = out.scheme, out.net
    c = hi / float(sch.hi_y[0])
    saved = [lay.params["b"].copy() for lay in net.weight_layers]
    keep = (sch.hi_x.copy(), sch.hi_y.copy())
    try:
        for lay in net.weight_layers:
            lay.params["b"] *= np.float32(c)
        sch.hi_y[:] = hi
        sch.hi_x[1:] = hi
        if sch.name == "global":
            sch.hi_x[0] = hi
        m = export_model(net, sch, out.masks, ds)
    finally:
        for lay, b in zip(net.weight_layers, saved, strict=True):
            lay.params["b"] = b
        sch.hi_x, sch.hi_y = keep
    codes = integer_forward(m, ds.x_test[:n], keep_codes=True).codes
    return [codes[i] for i, lay in enumerate(m.layers) if lay in m.hidden_layers]


@pytest.mark.parametrize("scheme,depends", [("fixed", True), ("global", False)])
def test_integer_model_depends_on_hi_only_with_fixed_ranges(digits, scheme, depends):
    """One trained network, hidden range 1 or 4 (biases scaled along): with fixed ranges
    the first layer's input grid stays [0, 1], so the clip level changes the codes; the
    global scheme's shared X/Y range is a gauge (hi cancels; the same codes)."""
    cfg = TrainConfig(model="mlp", scheme=scheme, epochs=2, hi=2.0)
    out = train(cfg, digits, np.random.default_rng(0))
    a, b = _codes_at(out, digits, 1.0), _codes_at(out, digits, 4.0)
    same = all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert same is not depends


def test_fixed_scheme_grids_and_model_round_trip(digits, tmp_path):
    cfg = TrainConfig(model="mlp", epochs=20, hi=2.0, **RECIPES["bao"])
    out = train(cfg, digits, np.random.default_rng(0))
    m = out.model
    assert m.scheme == "fixed" and m.input_hi == 1.0
    wl = m.weight_layers
    assert wl[0].in_grid.hi == 1.0
    assert all(lay.in_grid.hi == 2.0 for lay in wl[1:])
    assert all(lay.out_grid.hi == 2.0 for lay in m.hidden_layers)
    assert all(lay.w_grid.w_max == 0.25 for lay in wl)
    assert all(np.abs(lay.params["W"]).max() <= 0.25 + 1e-7 for lay in out.net.weight_layers)
    save_model(m, tmp_path / "f.npz")
    back = load_model(tmp_path / "f.npz")
    x = digits.x_test[:100]
    np.testing.assert_array_equal(integer_forward(back, x).logits, integer_forward(m, x).logits)
    assert out.metrics["test_accuracy"] > 0.5


def test_recipe_preset_validates():
    assert set(RECIPES) == set(RECIPE_NAMES)
    for name in RECIPES:
        cfg = TrainConfig(model="lenet5", **recipe(name))
        assert cfg.scheme == "fixed" and cfg.optimizer == "sgd"
        assert (cfg.lr, cfg.batch_size, cfg.w_max) == (0.01, 200, 0.25)
    with pytest.raises(CosimError, match="unknown recipe 'nope'"):
        recipe("nope")


def test_act_l1_is_left_out_of_the_key_at_its_default():
    assert "act_l1" not in TrainConfig().to_dict()
    assert TrainConfig(act_l1=1e-3).to_dict()["act_l1"] == 1e-3
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(CosimError, match="act_l1"):
            TrainConfig(act_l1=bad)


def test_a_vanishing_activation_range_is_refused():
    """hi = 1e-300 raised a ZeroDivisionError from the range loss (1 / hi**2) mid-training."""
    for bad in (1e-300, 1e-30, 1e9):
        with pytest.raises(CosimError, match=r"hi \(--hi\) must lie in \[0.001, 1000\]"):
            TrainConfig(hi=bad)
    assert TrainConfig(hi=1e-3).hi == 1e-3


def _density(cfg: TrainConfig, ds) -> float:
    """Mean hidden code / top code over the test split (the activations' density)."""
    codes = _codes(cfg, ds, n=len(ds.x_test))
    return float(np.mean(np.concatenate([c.ravel() for c in codes]))) / ((1 << cfg.a_bits) - 1)


def test_act_l1_lowers_activation_density(digits):
    base = {"model": "mlp", "epochs": 4}
    plain = _density(TrainConfig(**base), digits)
    sparse = _density(TrainConfig(act_l1=1e-2, **base), digits)
    assert sparse < 0.8 * plain, (plain, sparse)


def test_digits28_stand_in(digits, digits28):
    d = digits28
    assert d.x_train.shape[1:] == (1, 28, 28) and d.x_train.dtype == np.uint8
    np.testing.assert_array_equal(d.y_train, digits.y_train)
    np.testing.assert_array_equal(d.y_test, digits.y_test)
    frame = np.ones((28, 28), dtype=bool)
    frame[4:24, 4:24] = False
    assert not d.x_train[:, 0, frame].any()  # black frame around the 20 x 20 digit
    # a digit pixel of the source stays where the upsampled digit is bright
    assert d.x_train.max() == 255
    zero_src = digits.x_train[:, 0] == 0
    assert (d.x_train[:, 0, 4:24, 4:24] == 0).mean() >= 0.5 * zero_src.mean()
    assert d.preprocessing.codes(d.x_train[:1]).max() <= 255
    with pytest.raises(CosimError, match="takes no path"):
        load_dataset("digits28:/tmp")


def test_lenet5_trains_on_digits28(digits28):
    cfg = TrainConfig(model="lenet5", epochs=3, batch_size=64, lr=2e-3)
    out = train(cfg, digits28, np.random.default_rng(0))
    assert out.metrics["test_accuracy"] > 0.5


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--act-l1", "-1"], "argument --act-l1: -1 is outside [0, 10]"),
        (["--recipe", "smith"], "argument --recipe: invalid choice: 'smith'"),
        (["--hi", "0"], "argument --hi: 0 is outside [0.001, 1000]"),
        (["--scheme", "fix"], "unknown scheme 'fix'"),
    ],
)
def test_flag_errors(tmp_path, capsys, argv, message):
    code = main(["train", *argv, "--epochs", "1", "--out", str(tmp_path / "m.npz")])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err


def test_cli_recipe_and_act_l1(tmp_path, capsys):
    import json

    out = tmp_path / "m.npz"
    argv = ["train", "--recipe", "bao", "--act-l1", "1e-3", "--lr", "0.02", "--epochs", "1"]
    assert main([*argv, "--out", str(out), "--json", str(tmp_path / "m.json")]) == 0
    m = json.loads((tmp_path / "m.json").read_text())
    assert m["scheme"] == "fixed" and load_model(out).scheme == "fixed"
    assert "--recipe bao" in m["command"] and "--act-l1 0.001" in m["command"]
    capsys.readouterr()
