"""Training: the global property, integer-path agreement, unipolar, determinism, resume."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import numpy as np
import pytest

from cosim.datasets import load_dataset
from cosim.errors import CosimError, ModelFileError, TrainingDivergedError
from cosim.model import PoolLayer, integer_forward, load_model, predict, save_model
from cosim.quant import ActGrid, WeightGrid, avgpool_round
from cosim.train.trainer import TrainConfig, batch_inputs, train

from .test_datasets import write_cifar_dir, write_mnist_dir


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="module")
def global_mlp(digits):
    cfg = TrainConfig(model="mlp", scheme="global", w_bits=4, a_bits=3, epochs=6)
    return train(cfg, digits, np.random.default_rng(0))


def _training_forward_codes(outcome, dataset, x):
    """Codes after every hidden activation quantizer and the predictions of the trainer."""
    net = outcome.net
    outcome.scheme.apply(outcome.masks if outcome.metrics["unipolar_filters"] else None)
    ins = net.forward_collect(batch_inputs(dataset, x, outcome.scheme))
    acts = [a for lay, a in zip(net.layers, ins[1:], strict=False) if lay.kind == "act"]
    logits = ins[-1] * np.float32(net.head.q.acc_unit)
    return acts, np.argmax(logits, axis=1)


def test_global_property_exactly(global_mlp, digits, tmp_path):
    """Every hidden layer's stored weights, biases and activations lie on the same grids."""
    path = tmp_path / "m.npz"
    save_model(global_mlp.model, path)
    model = load_model(path)
    hidden = model.hidden_layers
    assert len(hidden) == 2
    w_grid, y_grid, b_grid = hidden[0].w_grid, hidden[0].out_grid, hidden[0].b_grid
    for lay in hidden:
        # identical grid objects (range and bits), compared exactly
        assert lay.w_grid == w_grid and lay.out_grid == y_grid and lay.b_grid == b_grid
        assert lay.in_grid.hi == hidden[0].in_grid.hi
        # the levels lie on the shared grid: odd integers within +-(2**b - 1), so every
        # weight value is n * u of the one shared unit
        assert lay.n_w.dtype == np.int64 and w_grid.on_grid(lay.n_w, lay.unipolar)
        assert np.array_equal(lay.weights(), lay.n_w * w_grid.unit)
        assert b_grid.on_grid(lay.n_b)
        assert np.array_equal(lay.biases(), lay.n_b * b_grid.step)
    assert model.head.w_grid == w_grid  # the head shares W (its output is digital)
    assert hidden[1].in_grid == ActGrid(y_grid.hi, y_grid.bits)  # X of layer 2 = shared grid
    # activations: every hidden layer's output codes are integers of the one Y grid
    res = integer_forward(model, digits.x_test, keep_codes=True)
    for i, lay in enumerate(model.layers):
        if getattr(lay, "role", None) == "hidden":
            c = res.codes[i]
            assert c.dtype == np.int64 and c.min() >= 0 and c.max() <= y_grid.top_code
            assert np.array_equal(y_grid.codes(y_grid.values(c)), c)
    assert global_mlp.metrics["grids"][0]["w_grid"] == global_mlp.metrics["grids"][1]["w_grid"]


def test_per_layer_scheme_has_its_own_grids(digits):
    cfg = TrainConfig(model="mlp", scheme="per-layer", w_bits=4, a_bits=3, epochs=3)
    out = train(cfg, digits, np.random.default_rng(0))
    hidden = out.model.hidden_layers
    assert hidden[0].w_grid != hidden[1].w_grid or hidden[0].out_grid != hidden[1].out_grid
    assert hidden[1].in_grid == hidden[0].out_grid  # X of a layer is Y of the previous
    assert out.metrics["prediction_agreement"] == 1.0


def test_reported_accuracy_is_the_integer_path_and_training_forward_agrees(global_mlp, digits):
    m = global_mlp.metrics
    assert m["test_accuracy_source"] == "integer_forward"
    pred = predict(global_mlp.model, digits.x_test)
    assert m["test_accuracy"] == np.mean(pred == digits.y_test)
    res = integer_forward(global_mlp.model, digits.x_test, keep_codes=True)
    acts, fwd_pred = _training_forward_codes(global_mlp, digits, digits.x_test)
    hidden_codes = [
        c
        for lay, c in zip(global_mlp.model.layers, res.codes, strict=False)
        if getattr(lay, "role", "") == "hidden"
    ]
    for a, c in zip(acts, hidden_codes, strict=True):
        assert np.array_equal(a.astype(np.int64), c)  # bit-identical hidden codes
    assert np.array_equal(fwd_pred, res.predictions)


def test_conv_and_pool_paths_agree_with_the_integer_reference(tmp_path):
    """LeNet-5 (conv + avg pool) and cnn6 (padding + max pool) on tiny real-format files."""
    ds = load_dataset(f"mnist:{write_mnist_dir(tmp_path / 'm', n_train=96, n_test=48)}")
    cfg = TrainConfig(model="lenet5", scheme="global", w_bits=4, a_bits=3, epochs=1, batch_size=32)
    out = train(cfg, ds, np.random.default_rng(1))
    res = integer_forward(out.model, ds.x_test, keep_codes=True)
    acts, pred = _training_forward_codes(out, ds, ds.x_test)
    hidden = [
        c
        for lay, c in zip(out.model.layers, res.codes, strict=False)
        if getattr(lay, "role", "") == "hidden"
    ]
    for a, c in zip(acts, hidden, strict=True):
        assert np.array_equal(
            np.moveaxis(a, -1, 1).astype(np.int64) if a.ndim == 4 else a.astype(np.int64), c
        )
    assert np.array_equal(pred, res.predictions)
    pools = [i for i, lay in enumerate(out.model.layers) if isinstance(lay, PoolLayer)]
    before = res.codes[pools[0] - 1]
    n, c, h, w = before.shape
    sums = before.reshape(n, c, h // 2, 2, w // 2, 2).sum(axis=(3, 5))
    assert np.array_equal(res.codes[pools[0]], avgpool_round(sums, 4))  # (sum + 2) // 4

    cds = load_dataset(f"cifar10:{write_cifar_dir(tmp_path / 'c', n=4)}")
    cfg = TrainConfig(model="cnn6", scheme="per-layer", w_bits=3, a_bits=2, epochs=1, batch_size=8)
    out = train(cfg, cds, np.random.default_rng(2))
    assert out.metrics["prediction_agreement"] == 1.0


def test_unipolar_fraction_one_makes_every_hidden_weight_nonnegative(digits):
    cfg = TrainConfig(
        model="mlp", scheme="global", w_bits=2, a_bits=3, epochs=4, unipolar_fraction=1.0
    )
    out = train(cfg, digits, np.random.default_rng(0))
    for lay in out.model.hidden_layers:
        assert lay.unipolar.all()
        assert lay.n_w.min() >= 0 and np.all(lay.weights() >= 0)  # exact, integer levels
        assert lay.w_grid.on_grid(lay.n_w, lay.unipolar)
    for lay in out.net.hidden:
        assert np.all(lay.params["W"] >= 0)  # the shadow weights too
    assert not out.model.head.unipolar.any()  # the digital head stays bipolar
    assert out.metrics["unipolar_filters"] == out.metrics["hidden_filters"] == 192


def test_unipolar_search_picks_the_requested_fraction(digits):
    cfg = TrainConfig(
        model="mlp", scheme="global", w_bits=4, a_bits=3, epochs=4, unipolar_fraction=0.4
    )
    out = train(cfg, digits, np.random.default_rng(0))
    n_uni = sum(int(lay.unipolar.sum()) for lay in out.model.hidden_layers)
    assert n_uni == round(0.4 * 192)
    for lay in out.model.hidden_layers:
        assert np.all(lay.n_w[lay.unipolar] >= 0)
        assert WeightGrid.on_grid(lay.w_grid, lay.n_w, lay.unipolar)


def test_same_seed_same_model_and_resume_is_exact(digits, tmp_path):
    cfg = TrainConfig(
        model="mlp", scheme="global", w_bits=3, a_bits=2, epochs=4, unipolar_fraction=0.25
    )
    a = train(cfg, digits, np.random.default_rng(3))
    b = train(cfg, digits, np.random.default_rng(3))
    ckpt = tmp_path / "run.ckpt.npz"

    def stop_after_2(rec):
        if rec["epoch"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(cfg, digits, np.random.default_rng(3), ckpt, on_epoch=stop_after_2)
    assert ckpt.is_file()
    c = train(
        cfg, digits, np.random.default_rng(99), ckpt, resume=True
    )  # state comes from the file
    assert len(c.history) == 4
    for x, y, z in zip(
        a.model.weight_layers, b.model.weight_layers, c.model.weight_layers, strict=True
    ):
        assert np.array_equal(x.n_w, y.n_w) and np.array_equal(x.n_w, z.n_w)
        assert np.array_equal(x.n_b, z.n_b) and np.array_equal(x.unipolar, z.unipolar)
    assert a.metrics["test_accuracy"] == c.metrics["test_accuracy"]


def test_float_scheme_model_file(digits, tmp_path):
    cfg = TrainConfig(model="mlp", scheme="float", epochs=3)
    out = train(cfg, digits, np.random.default_rng(0))
    save_model(out.model, tmp_path / "f.npz")
    m = load_model(tmp_path / "f.npz")
    assert m.scheme == "float" and m.head.n_w is None and m.head.w.dtype == np.float32
    assert np.mean(predict(m, digits.x_test) == digits.y_test) == out.metrics["test_accuracy"]


def test_one_bit_weights_and_activations(digits):
    small = replace(digits, x_train=digits.x_train[:300], y_train=digits.y_train[:300])
    cfg = TrainConfig(model="mlp", scheme="global", w_bits=1, a_bits=1, epochs=2)
    out = train(cfg, small, np.random.default_rng(0))
    for lay in out.model.weight_layers:
        assert set(np.unique(lay.n_w)) <= {-1, 1}  # binary: +-w_max
    assert out.metrics["prediction_agreement"] == 1.0


def test_forward_from_a_cached_layer_input_matches_the_full_forward():
    """The unipolar search re-runs the network from a layer's cached (NHWC) input."""
    from cosim.train.network import build_network

    rng = np.random.default_rng(4)
    net = build_network("lenet5", (1, 28, 28), 10, rng)
    x = rng.random((3, 1, 28, 28)).astype(np.float32)
    ins = net.forward_collect(x)
    full = net.forward(x)
    for pos in (0, 3, 7):
        assert np.array_equal(net.forward(ins[pos], start=pos, internal=True), full)


# ---------------------------------------------------------------------------- divergence
@pytest.mark.parametrize("scheme", ["global", "float"])
def test_a_diverging_run_stops_with_one_clear_error(digits, tmp_path, scheme):
    """lr 1e30 turns the loss NaN in the first epoch: no model, no checkpoint, one line."""
    cfg = TrainConfig(model="mlp", scheme=scheme, epochs=2, lr=1e30)
    ckpt = tmp_path / "d.ckpt.npz"
    seen = []
    with pytest.raises(TrainingDivergedError) as exc:
        train(cfg, digits, np.random.default_rng(0), ckpt, on_epoch=seen.append)
    msg = str(exc.value)
    assert isinstance(exc.value, CosimError) and "\n" not in msg
    assert re.match(r"training diverged in epoch 1/2: the (penalty terms of the )?loss became", msg)
    assert "--lr 1e+30" in msg and "smaller" in msg
    assert "no epoch finished, so there is no checkpoint" in msg
    assert seen == [] and not ckpt.exists()


def test_divergence_keeps_the_last_good_checkpoint_and_resume_recovers(
    digits, tmp_path, monkeypatch
):
    """Parameters poisoned after epoch 1: epoch 2 diverges, epoch 1's checkpoint stays as it
    was, and resuming from it ends with the model of an uninterrupted run."""
    import cosim.train.trainer as tr

    cfg = TrainConfig(model="mlp", scheme="global", epochs=3)
    ref = train(cfg, digits, np.random.default_rng(0))
    ckpt = tmp_path / "r.ckpt.npz"
    nets, snapshot = [], {}

    def build(*a, **kw):
        nets.append(real_build(*a, **kw))
        return nets[-1]

    def poison(rec):
        if rec["epoch"] == 1:
            snapshot["bytes"] = ckpt.read_bytes()
            nets[-1].weight_layers[0].params["W"][0, 0] = np.nan

    real_build = tr.build_network
    monkeypatch.setattr(tr, "build_network", build)
    with pytest.raises(TrainingDivergedError) as exc:
        train(cfg, digits, np.random.default_rng(0), ckpt, on_epoch=poison)
    monkeypatch.undo()
    msg = str(exc.value)
    assert msg.startswith("training diverged in epoch 2/3: the loss became nan in step 1 of")
    assert f"the checkpoint of epoch 1 is kept at {ckpt}" in msg and "--resume" in msg
    assert ckpt.read_bytes() == snapshot["bytes"]  # untouched since epoch 1
    res = train(cfg, digits, np.random.default_rng(7), ckpt, resume=True)
    assert [h["epoch"] for h in res.history] == [1, 2, 3]
    for a, b in zip(ref.model.weight_layers, res.model.weight_layers, strict=True):
        assert np.array_equal(a.n_w, b.n_w) and np.array_equal(a.n_b, b.n_b)


def test_non_finite_parameters_after_an_epoch_are_divergence(digits, tmp_path, monkeypatch):
    """A last step that leaves inf in the weights is caught before the checkpoint."""
    from cosim.model import read_npz
    from cosim.train.optim import Adam

    cfg = TrainConfig(model="mlp", scheme="float", epochs=2)
    steps = -(-len(digits.x_train) // cfg.batch_size)
    calls = {"n": 0}
    real_step = Adam.step

    def step(self, params, grads, lr):
        real_step(self, params, grads, lr)
        calls["n"] += 1
        if calls["n"] == 2 * steps:  # the last step of epoch 2
            params["L1.b"][0] = np.inf

    monkeypatch.setattr(Adam, "step", step)
    ckpt = tmp_path / "p.ckpt.npz"
    with pytest.raises(TrainingDivergedError, match=r"epoch 2/2: the parameters b of weight l"):
        train(cfg, digits, np.random.default_rng(0), ckpt)
    assert json.loads(str(read_npz(ckpt, "checkpoint")["meta"]))["state"]["epoch"] == 1


def test_resume_may_lower_the_learning_rate_only(digits, tmp_path):
    cfg = TrainConfig(model="mlp", scheme="global", epochs=2)
    ckpt = tmp_path / "l.ckpt.npz"

    def stop(rec):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(cfg, digits, np.random.default_rng(0), ckpt, on_epoch=stop)
    out = train(replace(cfg, lr=1e-4), digits, np.random.default_rng(0), ckpt, resume=True)
    assert [h["epoch"] for h in out.history] == [1, 2] and out.history[1]["lr"] <= 1e-4
    with pytest.raises(ModelFileError, match="different run"):
        train(replace(cfg, w_bits=3), digits, np.random.default_rng(0), ckpt, resume=True)


def test_a_corrupt_checkpoint_is_a_model_file_error(digits, tmp_path):
    cfg = TrainConfig(model="mlp", scheme="global", epochs=2)
    ckpt = tmp_path / "c.ckpt.npz"

    def stop(rec):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(cfg, digits, np.random.default_rng(0), ckpt, on_epoch=stop)
    with np.load(ckpt, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    good_meta = json.loads(str(arrays["meta"]))
    for edit in (
        lambda a, m: a.update({"p.L0.W": a["p.L0.W"][:, :3]}),
        lambda a, m: a.pop("m.0"),
        lambda a, m: a.update({"o.m.L1.W": a["o.m.L1.W"][:2]}),
        lambda a, m: m.update(rng_state="x"),
        lambda a, m: m["state"].update(epoch="one"),
        lambda a, m: m["state"].update(history=[]),
        lambda a, m: m.update(state=[1]),
        lambda a, m: m.update(config="mlp"),
    ):
        a, m = dict(arrays), json.loads(json.dumps(good_meta))
        edit(a, m)
        a["meta"] = np.array(json.dumps(m))
        with open(ckpt, "wb") as fh:
            np.savez(fh, **a)
        with pytest.raises(ModelFileError, match=f"checkpoint {ckpt}"):
            train(cfg, digits, np.random.default_rng(0), ckpt, resume=True)
    ckpt.unlink()
    ckpt.mkdir()
    with pytest.raises(ModelFileError, match="not a regular file"):
        train(cfg, digits, np.random.default_rng(0), ckpt, resume=True)
    with pytest.raises(ModelFileError, match="not a regular file"):
        train(cfg, digits, np.random.default_rng(0), ckpt)


def test_conv_scope_makes_only_convolution_filters_unipolar(tmp_path):
    """``unipolar_scope="conv"``: the fraction counts LeNet-5's 22 convolution filters
    (round(0.4 · 22) = 9 chosen among them), the fully connected hidden layers stay bipolar,
    and every weight of a chosen filter is >= 0 in the exported model; the default scope
    leaves TrainConfig.to_dict() as it was (cache keys of earlier runs)."""
    from cosim.train.command import configure
    from cosim.train.network import UNIPOLAR_SCOPES

    ds = load_dataset(f"mnist:{write_mnist_dir(tmp_path / 'm', n_train=96, n_test=48)}")
    cfg = TrainConfig(
        model="lenet5",
        scheme="global",
        w_bits=4,
        a_bits=3,
        epochs=2,
        batch_size=32,
        unipolar_fraction=0.4,
        unipolar_scope="conv",
    )
    out = train(cfg, ds, np.random.default_rng(3))
    hidden = [lay for lay in out.model.weight_layers if lay.role == "hidden"]
    conv = [lay for lay in hidden if lay.kind == "conv2d"]
    dense = [lay for lay in hidden if lay.kind != "conv2d"]
    assert [lay.unipolar.size for lay in conv] == [6, 16]
    assert sum(int(lay.unipolar.sum()) for lay in conv) == 9
    assert all(not lay.unipolar.any() for lay in dense) and len(dense) == 2
    for lay in conv:
        assert np.all(lay.weights()[lay.unipolar] >= 0)
    m = out.metrics
    assert (m["unipolar_filters"], m["unipolar_conv_filters"], m["conv_filters"]) == (9, 9, 22)
    assert m["config"]["unipolar_scope"] == "conv"
    assert "unipolar_scope" not in replace(cfg, unipolar_scope="hidden").to_dict()
    # the command line offers the same scopes (it names them without importing NumPy)
    parser = __import__("argparse").ArgumentParser()
    configure(parser)
    action = next(a for a in parser._actions if a.dest == "unipolar_scope")
    assert tuple(action.choices) == UNIPOLAR_SCOPES
