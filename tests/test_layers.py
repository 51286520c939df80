"""Finite-difference gradient checks of every layer, and the straight-through estimators."""

from __future__ import annotations

import numpy as np
import pytest

from cosim.quant import ActGrid, BiasGrid, WeightGrid
from cosim.train.layers import (
    ActQuant,
    AvgPool2D,
    Conv2D,
    Dense,
    Flatten,
    LayerQuant,
    MaxPool2D,
    softmax_xent,
)
from cosim.train.network import Network, build_network

# Layers compute in float32. A central difference of a function that is linear in the
# perturbed variable (dense, conv, pooling, flatten, ReLU away from 0) is exact up to float32
# rounding of the loss: |L| * 2**-24 / eps ~ 1e-5 relative with eps = 1e-2. RTOL = 1e-3
# bounds that with a margin; the smooth softmax/CE check uses float64 and a tighter bound.
RTOL = 1e-3
EPS = 1e-2


def _num_grad(f, x, eps=EPS, n=25, rng=None):
    """Central differences of scalar f at ``n`` random coordinates of ``x`` (in place)."""
    rng = rng or np.random.default_rng(0)
    idx = rng.choice(x.size, size=min(n, x.size), replace=False)
    out = []
    flat = x.reshape(-1)
    for i in idx:
        old = flat[i]
        flat[i] = old + eps
        fp = f()
        flat[i] = old - eps
        fm = f()
        flat[i] = old
        out.append((fp - fm) / (2 * eps))
    return idx, np.array(out)


def _check_layer(layer, x, rng, params=("W", "b"), check_x=True):
    """Check d(sum(R * layer(x)))/d(x and params) against central differences."""
    y = layer.forward(x, train=True)
    r = rng.standard_normal(y.shape).astype(np.float32)

    def loss():
        return float(np.sum(layer.forward(x, train=False).astype(np.float64) * r))

    layer.forward(x, train=True)
    dx = layer.backward(r)
    if check_x:
        idx, num = _num_grad(loss, x, rng=rng)
        np.testing.assert_allclose(
            dx.reshape(-1)[idx], num, rtol=RTOL, atol=RTOL * np.abs(num).max()
        )
    for key in params:
        p = layer.params[key]
        idx, num = _num_grad(loss, p, rng=rng)
        got = layer.grads[key].reshape(-1)[idx]
        np.testing.assert_allclose(got, num, rtol=RTOL, atol=RTOL * np.abs(num).max())


def test_dense_gradients():
    rng = np.random.default_rng(1)
    lay = Dense(7, 5, rng)
    lay.params["b"][:] = rng.standard_normal(5)
    _check_layer(lay, rng.standard_normal((4, 7)).astype(np.float32), rng)


@pytest.mark.parametrize("stride,padding", [(1, 0), (2, 1), (1, 2)])
def test_conv2d_gradients(stride, padding):
    rng = np.random.default_rng(2)
    lay = Conv2D(3, 4, 3, rng, stride=stride, padding=padding)
    lay.params["b"][:] = rng.standard_normal(4)
    x = rng.standard_normal((2, 7, 7, 3)).astype(np.float32)
    _check_layer(lay, x, rng)


def test_conv2d_matches_direct_convolution():
    rng = np.random.default_rng(3)
    lay = Conv2D(2, 3, 3, rng, stride=2, padding=1)
    x = rng.standard_normal((1, 6, 6, 2)).astype(np.float32)
    y = lay.forward(x)
    w = lay.params["W"].reshape(3, 2, 3, 3)
    xp = np.pad(x[0], ((1, 1), (1, 1), (0, 0)))
    ref = np.zeros((3, 3, 3))
    for i in range(3):
        for j in range(3):
            patch = xp[2 * i : 2 * i + 3, 2 * j : 2 * j + 3, :]  # kh, kw, C
            ref[i, j] = np.einsum("hwc,ochw->o", patch, w)
    np.testing.assert_allclose(y[0], ref, rtol=1e-5, atol=1e-5)


def test_pool_flatten_relu_gradients():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 4, 6, 3)).astype(np.float32)
    _check_layer(AvgPool2D(2), x, rng, params=())
    # max pooling: distinct values spaced far more than EPS apart, so no switching
    xm = (rng.permutation(2 * 4 * 6 * 3).reshape(2, 4, 6, 3) * 0.1).astype(np.float32)
    _check_layer(MaxPool2D(2), xm, rng, params=())
    _check_layer(Flatten(), x, rng, params=())
    src = Dense(3, 3, rng)  # float quantizer = ReLU
    xr = x.copy()
    xr[np.abs(xr) < 3 * EPS] = 0.5  # keep away from the kink
    _check_layer(ActQuant(src), xr, rng, params=())


def test_flatten_order_is_channels_first():
    x = np.arange(2 * 2 * 3).reshape(1, 2, 2, 3)  # NHWC
    assert Flatten().forward(x)[0].tolist() == x[0].transpose(2, 0, 1).ravel().tolist()


def test_softmax_xent_gradient():
    rng = np.random.default_rng(5)
    z = rng.standard_normal((6, 4))
    y = rng.integers(0, 4, 6)
    _, g = softmax_xent(z, y)
    idx, num = _num_grad(lambda: softmax_xent(z, y)[0], z, eps=1e-6, rng=rng)
    np.testing.assert_allclose(g.reshape(-1)[idx], num, rtol=1e-4, atol=1e-7)


def _pattern(net, x):
    """The piecewise-linear regime of a float network: ReLU signs and max-pool winners."""
    ins = net.forward_collect(x)
    pats = []
    for lay, a in zip(net.layers, ins, strict=False):
        if isinstance(lay, ActQuant):
            pats.append(a > 0)
        elif isinstance(lay, MaxPool2D):
            n, h, w, c = a.shape
            b = a.reshape(n, h // 2, 2, w // 2, 2, c).transpose(0, 1, 3, 5, 2, 4)
            pats.append(b.reshape(n, h // 2, w // 2, c, 4).argmax(-1))
    return pats


def _small_cnn(rng):
    layers = [Conv2D(2, 3, 3, rng, padding=1)]
    layers += [ActQuant(layers[-1]), AvgPool2D(2), Conv2D(3, 4, 3, rng, stride=1)]
    layers += [ActQuant(layers[-1]), MaxPool2D(2), Flatten(), Dense(4, 6, rng)]
    layers += [ActQuant(layers[-1]), Dense(6, 10, rng)]
    return Network(layers, (2, 8, 8), "small")


@pytest.mark.parametrize("arch", ["mlp", "small-cnn"])
def test_whole_float_network_gradients(arch):
    """End to end: CE loss of a float network against every weight layer's gradient.

    Coordinates whose +-eps perturbation changes a ReLU sign or a max-pool winner are not
    differentiable there and are skipped (at least 4 of 16 must remain). The small CNN
    chains every layer kind (conv with padding, avg and max pooling, flatten, dense).
    """
    rng = np.random.default_rng(6)
    if arch == "mlp":
        shape = (1, 8, 8)
        net = build_network(arch, shape, 10, rng)
    else:
        shape = (2, 8, 8)
        net = _small_cnn(rng)
    for lay in net.weight_layers:
        lay.params["b"][:] = 0.05 * rng.standard_normal(lay.n_out)
    x = rng.random((3, *shape)).astype(np.float32)
    y = rng.integers(0, 10, 3)
    net.backward(softmax_xent(net.forward(x, train=True), y)[1])
    eps = 2e-3
    for lay in net.weight_layers:
        W = lay.params["W"].reshape(-1)
        checked = 0
        for i in rng.choice(W.size, size=16, replace=False):
            old = W[i]
            W[i] = old + eps
            lp, pp = softmax_xent(net.forward(x), y)[0], _pattern(net, x)
            W[i] = old - eps
            lm, pm = softmax_xent(net.forward(x), y)[0], _pattern(net, x)
            W[i] = old
            if any(not np.array_equal(a, b) for a, b in zip(pp, pm, strict=True)):
                continue
            num = (lp - lm) / (2 * eps)
            # smooth CE over one linear regime: the central difference errs by O(eps**2)
            # times the third derivative, plus float32 loss rounding (2.4e-7 / 2e-3 ~ 1e-4);
            # 2 % + 3e-4 bounds both
            assert lay.grads["W"].reshape(-1)[i] == pytest.approx(num, rel=2e-2, abs=3e-4)
            checked += 1
        assert checked >= 4


# ------------------------------------------------------------------------ straight-through
def _quantized_dense(rng, w_max=0.25, bits=4):
    lay = Dense(4, 3, rng)
    w, x, y = WeightGrid(w_max, bits), ActGrid(2.0, 8), ActGrid(2.0, 3)
    lay.q = LayerQuant(w_grid=w, in_grid=x, out_grid=y, b_grid=BiasGrid.for_layer(w, x, 6))
    return lay


def test_weight_ste_passes_inside_and_at_the_clip_bound_and_blocks_beyond():
    rng = np.random.default_rng(7)
    lay = _quantized_dense(rng)
    lay.params["W"][:] = np.array(
        [[0.1, -0.1, 0.25, -0.25], [0.2500001, -0.26, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0]],
        dtype=np.float32,
    )
    lay.params["b"][:] = [0.0, 5.0, -5.0]  # two biases beyond b_max
    k = rng.integers(0, 256, (5, 4)).astype(np.float32)
    lay.forward(k, train=True)
    dz = rng.standard_normal((5, 3)).astype(np.float32)
    lay.backward(dz)
    # STE: dL/dW = dL/dW_q = sum_n dz * x_real, with x_real = k * step_in
    full = dz.T @ (k * np.float32(2.0 / 256))
    inside = np.abs(lay.params["W"]) <= 0.25
    np.testing.assert_allclose(lay.grads["W"], np.where(inside, full, 0), rtol=1e-6)
    assert inside[0].all() and not inside[1, :3].any()  # +-w_max itself passes, beyond not
    np.testing.assert_allclose(lay.grads["b"], [dz[:, 0].sum(), 0.0, 0.0], rtol=1e-6)


def test_activation_ste_at_and_beyond_the_clip_bounds():
    rng = np.random.default_rng(8)
    lay = _quantized_dense(rng)
    act = ActQuant(lay)
    unit = lay.q.acc_unit
    z = np.array([[-1.0, 0.0, 1e-3, 1.0, 1.99, 2.0, 2.5, 10.0]])  # real pre-activations
    codes = act.forward((z / unit).astype(np.float32), train=True)
    assert codes.tolist() == [[0, 0, 0, 4, 7, 7, 7, 7]]
    dk = np.ones_like(codes)  # dL/d(code)
    dz = act.backward(dk)
    step = lay.q.out_grid.step
    # gradient passes (as d code / dz = 1/step) strictly inside (0, hi) only
    expected = np.array([[0, 0, 1, 1, 1, 0, 0, 0]]) / step
    np.testing.assert_allclose(dz, expected, rtol=1e-5)


def test_saturation_penalty_gradient_beyond_hi():
    rng = np.random.default_rng(9)
    lay = _quantized_dense(rng)
    act = ActQuant(lay)
    act.penalty = 0.5
    unit = lay.q.acc_unit
    z = np.array([[1.0, 3.0]], dtype=np.float64)
    act.forward((z / unit).astype(np.float32), train=True)
    # L_X = 0.5 * mean(relu(z - 2)^2) / 2^2 = 0.5 * (1/2) / 4
    assert act.last_penalty == pytest.approx(0.0625, rel=1e-5)
    dz = act.backward(np.zeros((1, 2), dtype=np.float32))
    np.testing.assert_allclose(dz, [[0.0, 2 * 0.5 * 1.0 / (2 * 4)]], rtol=1e-5)


def test_accumulator_is_exact_beyond_float32_integers():
    """8-bit levels x 8-bit codes x 300 inputs can exceed 2**24: the layer switches to float64."""
    rng = np.random.default_rng(10)
    lay = Dense(300, 4, rng)
    w, x = WeightGrid(0.25, 8), ActGrid(2.0, 8)
    lay.q = LayerQuant(
        w_grid=w, in_grid=x, out_grid=ActGrid(2.0, 8), b_grid=BiasGrid.for_layer(w, x, 10)
    )
    lay.params["W"][:] = 0.25  # every level at n_max = 255
    k = np.full((2, 300), 255, dtype=np.float32)
    k[1, 0] = 254  # an odd total that float32 cannot hold
    acc = lay.forward(k)
    ref = k.astype(np.int64) @ np.full((300, 4), 255, dtype=np.int64)
    assert acc.dtype == np.float64 and ref.max() > 2**24
    assert np.array_equal(acc.astype(np.int64), ref)


def test_optimizers_and_schedule():
    from cosim.train.optim import SGD, Adam, cosine_lr, make_optimizer

    p = {"w": np.array([1.0, -1.0], dtype=np.float32)}
    g = {"w": np.array([0.5, 0.5], dtype=np.float32)}
    sgd = SGD(lr=0.1, momentum=0.9)
    sgd.step(p, g, 0.1)
    sgd.step(p, g, 0.1)  # v = 0.5, then 0.9 * 0.5 + 0.5 = 0.95
    np.testing.assert_allclose(p["w"], [1.0 - 0.05 - 0.095, -1.0 - 0.05 - 0.095], rtol=1e-6)
    p = {"w": np.array([1.0], dtype=np.float32)}
    adam = Adam(lr=0.01)
    for _ in range(3):
        adam.step(p, {"w": np.array([2.0], dtype=np.float32)}, 0.01)
    np.testing.assert_allclose(p["w"], [0.97], rtol=1e-5)  # bias-corrected: lr per step
    assert cosine_lr(1.0, 0, 100, warmup=10) == pytest.approx(0.1)
    assert cosine_lr(1.0, 55, 100, warmup=10) == pytest.approx(0.505)
    with pytest.raises(ValueError, match="unknown optimizer"):
        make_optimizer("rmsprop", 0.1)
