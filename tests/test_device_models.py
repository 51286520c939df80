"""Device models: one contract over pcm, rram and ideal; the SPICE element equals the NumPy I–V."""

from __future__ import annotations

import math
from dataclasses import asdict
from types import SimpleNamespace

import numpy as np
import pytest

from cosim.card import load_card
from cosim.circuits import device_model
from cosim.errors import CardError
from cosim.spice import SpiceJob, SpiceRunner
from cosim.surrogates.crossbar import CrossbarModel
from device_models import DeviceModel, IdealDevice, PcmDevice, RramDevice

CARD = load_card()
TECHS = ("pcm", "rram", "ideal")
CLASSES = {"pcm": PcmDevice, "rram": RramDevice, "ideal": IdealDevice}


def _device(tech: str) -> DeviceModel:
    return device_model(CARD.with_updates({"device": {"technology": tech}}))


@pytest.fixture(params=TECHS)
def dev(request) -> DeviceModel:
    return _device(request.param)


def test_from_card_builds_each_technology(dev):
    assert isinstance(dev, CLASSES[dev.technology])
    assert dev.n_levels == 2**CARD.device.level_bits == 16
    assert dev.v_read_v == CARD.dac.v_read_v
    d = dev.to_dict()
    assert d["technology"] == dev.technology and d["g_max_s"] == CARD.device.g_max_s
    # the ideal device is an explicit choice: ohmic and fault-free whatever the card says
    if dev.technology == "ideal":
        assert dev.iv_alpha_per_v == 0 and dev.stuck_on_rate == dev.stuck_off_rate == 0
    else:
        assert dev.iv_alpha_per_v == CARD.device.iv_alpha_per_v > 0


def test_levels(dev):
    lv = dev.levels()
    assert lv.shape == (16,) and lv.dtype == np.float64
    assert np.all(np.diff(lv) > 0)
    # endpoints: g_min exactly; g_max up to the rounding of g_min + 15 * step (a few ulp)
    assert lv[0] == dev.g_min_s
    assert lv[-1] == pytest.approx(dev.g_max_s, rel=1e-14)
    np.testing.assert_allclose(np.diff(lv), dev.g_step_s, rtol=1e-9)
    np.testing.assert_array_equal(dev.level_conductance(np.arange(16)), lv)
    assert dev.level_conductance(np.array([], dtype=int)).shape == (0,)
    for bad in (-1, 16):
        with pytest.raises(ValueError, match=r"device level out of range 0\.\.15"):
            dev.level_conductance(np.array([0, bad]))


def test_iv_curve(dev):
    g = dev.levels()[:, None]
    # the programmed conductance is the chord conductance at the read voltage; the sinh
    # ratio is evaluated in float64, so equality holds to a few ulp
    np.testing.assert_allclose(dev.current(g, dev.v_read_v), g * dev.v_read_v, rtol=1e-13)
    v = np.linspace(-0.4, 0.4, 161)[None, :]
    i = dev.current(g, v)
    assert i.shape == (16, 161)
    np.testing.assert_array_equal(dev.current(g, -v), -i)  # odd, exactly
    assert np.all(np.diff(i[1:], axis=1) > 0)  # strictly increasing for g > 0
    np.testing.assert_array_equal(dev.iv_shape(v), dev.current(1.0, v))
    # nonlinear devices conduct more than ohmic beyond v_read and less below it
    if dev.iv_alpha_per_v > 0:
        assert dev.current(1e-5, 0.3) > 1e-5 * 0.3 and dev.current(1e-5, 0.1) < 1e-5 * 0.1
    else:
        np.testing.assert_array_equal(i, g * v)


def test_small_signal_is_the_derivative(dev):
    g = np.array([[0.0], [3e-6], [25e-6]])
    v = np.linspace(-0.35, 0.35, 71)[None, :]
    h = 1e-5
    fd = (dev.current(g, v + h) - dev.current(g, v - h)) / (2 * h)
    # central difference: truncation (a·h)²/6 ≈ 4e-11 relative, rounding eps·I/h ≈ 1e-11
    np.testing.assert_allclose(dev.small_signal(g, v), fd, rtol=1e-9, atol=1e-20)
    assert dev.small_signal(g, v).shape == (3, 71)


def test_noise_fault_and_drift_shapes_and_ranges(dev):
    rng = np.random.default_rng(1)
    g = dev.level_conductance(rng.integers(0, 16, (5, 7, 3)))
    for out in (
        dev.program(g, rng),
        dev.read(g, 1e3, 50e-9, rng),
        dev.drift(g, dev.sample_nu(g, rng), 1e4),
        dev.gaussian_variation(g, 0.05, rng),
    ):
        assert out.shape == g.shape and out.dtype == np.float64
        assert np.all(out >= 0) and np.all(np.isfinite(out))
    nu = dev.sample_nu(g, rng)
    assert nu.shape == g.shape and np.all(nu >= 0)
    mask = dev.stuck_mask((40, 50), rng)
    assert mask.shape == (40, 50) and mask.dtype == np.int8
    assert set(np.unique(mask)) <= {-1, 0, 1}
    stuck = dev.apply_stuck(np.full((2, 2), 5e-6), np.array([[1, -1], [0, 0]]))
    np.testing.assert_array_equal(stuck, [[dev.g_max_s, dev.g_min_s], [5e-6, 5e-6]])
    with pytest.raises(ValueError, match="nvw must be >= 0"):
        dev.gaussian_variation(g, -0.1, rng)


def test_seeded_reproducibility(dev):
    g = dev.levels()[None, :].repeat(20, axis=0)

    def draw(seed):
        rng = np.random.default_rng(seed)
        gp = dev.program(g, rng)
        nu = dev.sample_nu(g, rng)
        return np.concatenate(
            [
                gp.ravel(),
                dev.drift(gp, nu, 3600.0).ravel(),
                dev.read(gp, 3600.0, 50e-9, rng).ravel(),
                dev.gaussian_variation(gp, 0.03, rng).ravel(),
                dev.stuck_mask((100, 100), rng).ravel(),
            ]
        )

    a, b, c = draw(7), draw(7), draw(8)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)  # gaussian_variation is stochastic for every device


def test_ideal_device_returns_its_inputs():
    dev = _device("ideal")
    rng = np.random.default_rng(0)
    g = dev.level_conductance(rng.integers(0, 16, (30, 30)))
    np.testing.assert_array_equal(dev.program(g, rng), g)
    np.testing.assert_array_equal(dev.read(g, 1e6, 50e-9, rng), g)
    np.testing.assert_array_equal(dev.drift(g, np.full(g.shape, 0.1), 1e8), g)
    assert not np.any(dev.stuck_mask((300, 300), rng))
    np.testing.assert_array_equal(dev.current(g, 0.13), g * 0.13)


@pytest.mark.parametrize("tech", ["pcm", "rram"])
def test_programming_noise_matches_its_model(tech):
    dev = _device(tech)
    rng = np.random.default_rng(3)
    n = 100_000
    for level in (3, 9, 15):
        g_t = dev.level_conductance(level)
        gp = dev.program(np.full(n, g_t), rng)
        sig = float(dev.prog_sigma(np.array(g_t)))
        assert sig > 0
        # sample std of n normals: relative standard error 1/sqrt(2n) = 0.22 %; 2 % is ~9σ
        # and still far below any model error worth catching (clipping at 0 / 1.5 g_max
        # is > 9σ away for these levels)
        assert gp.std() == pytest.approx(sig, rel=0.02)
        assert abs(gp.mean() - g_t) < 6 * sig / math.sqrt(n)
    if tech == "pcm":  # Joshi et al. 2020 at g_T = 1: (−1.1731 + 1.9650 + 0.2635) µS
        assert float(dev.prog_sigma(np.array(25e-6))) == pytest.approx(1.0554e-6, rel=1e-12)


def test_gaussian_variation_std_is_nvw_times_the_range(dev):
    rng = np.random.default_rng(11)
    n, nvw = 200_000, 0.05
    g0 = 0.5 * (dev.g_min_s + dev.g_max_s)  # mid-range: clipping at 0 is 10σ away
    out = dev.gaussian_variation(np.full(n, g0), nvw, rng)
    sigma = nvw * (dev.g_max_s - dev.g_min_s)
    # relative standard error of a sample std: 1/sqrt(2n) = 0.16 %; 1 % is ~6σ
    assert out.std() == pytest.approx(sigma, rel=0.01)
    # mean within 6 standard errors
    assert abs(out.mean() - g0) < 6 * sigma / math.sqrt(n)
    np.testing.assert_array_equal(dev.gaussian_variation(np.full(4, g0), 0.0, rng), g0)


@pytest.mark.parametrize("tech", ["pcm", "rram", "ideal"])
@pytest.mark.parametrize("t_s", [0.0, -5.0])
def test_drift_refuses_a_time_not_after_programming(tech, t_s):
    dev = _device(tech)
    with pytest.raises(ValueError, match="must be > 0 s"):
        dev.drift(dev.levels(), np.zeros(16), t_s)


def test_drift_law_and_pcm_read_noise():
    dev = _device("pcm")
    g = np.array([2e-6, 10e-6, 25e-6])
    nu = np.array([0.05, 0.07, 0.1])
    np.testing.assert_array_equal(dev.drift(g, nu, dev.drift_t0_s), g)
    np.testing.assert_array_equal(dev.drift(g, nu, 0.5 * dev.drift_t0_s), g)  # before t0
    np.testing.assert_allclose(dev.drift(g, nu, 1000 * dev.drift_t0_s), g * 1000.0**-nu, rtol=1e-14)
    mu, sig = dev.nu_stats(g)
    assert np.all((mu >= 0.049) & (mu <= 0.1)) and np.all((sig >= 0.008) & (sig <= 0.045))
    assert np.all(np.diff(mu) <= 0)  # lower conductance drifts faster
    # 1/f read noise grows with time since programming, and is zero for a read at t_read
    s1, s2 = dev.read_sigma(g, 1.0, 50e-9), dev.read_sigma(g, 1e5, 50e-9)
    assert np.all(s2 > s1) and np.all(s1 > 0)
    np.testing.assert_array_equal(dev.read_sigma(g, 50e-9, 50e-9), 0.0)


def test_stuck_fault_rates():
    dev = _device("pcm")
    rng = np.random.default_rng(5)
    mask = dev.stuck_mask((1000, 1000), rng)
    n = mask.size
    for value, rate in ((1, dev.stuck_on_rate), (-1, dev.stuck_off_rate)):
        # binomial count: within 6 standard deviations of n·rate
        assert abs(np.sum(mask == value) - n * rate) < 6 * math.sqrt(n * rate)


def test_invalid_device_parameters():
    # device_models depends on NumPy only: a bad value is a ValueError naming the field
    with pytest.raises(ValueError, match="level_bits"):
        PcmDevice(9, 0.0, 1e-5, 0.2)
    with pytest.raises(ValueError, match="g_min_s < g_max_s"):
        PcmDevice(4, 2e-5, 1e-5, 0.2)
    with pytest.raises(ValueError, match="read voltage"):
        RramDevice(4, 0.0, 1e-5, 0.0)
    with pytest.raises(ValueError, match="iv_alpha_per_v"):
        PcmDevice(4, 0.0, 1e-5, 0.2, iv_alpha_per_v=-1.0)


def test_device_model_reports_a_bad_device_as_a_card_error():
    # cosim.circuits is the card's side: the same problem is a CardError there
    # a card object that skipped the card's own validation (which would refuse 9 bits)
    device = SimpleNamespace(**{**asdict(CARD.device), "level_bits": 9})
    bad = SimpleNamespace(device=device, dac=CARD.dac)
    with pytest.raises(CardError, match="level_bits"):
        device_model(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("alpha", [0.0, 0.5, 4.0])
def test_one_iv_curve_for_device_and_surrogate(alpha):
    # the device, its small signal and the surrogate's drive are the one function of
    # device_models.iv; checked against the formula written out here, and I(v_read) = g v_read
    dev = PcmDevice(4, 0.0, 1e-5, 0.2, iv_alpha_per_v=alpha)
    v = np.linspace(-0.3, 0.3, 61)
    g = 7e-6
    want = g * v if alpha == 0 else g * 0.2 * np.sinh(alpha * v) / np.sinh(alpha * 0.2)
    # 1e-15 relative: the formula's two roundings against the module's two
    np.testing.assert_allclose(dev.current(g, v), want, rtol=1e-15, atol=0)
    assert dev.current(g, 0.2) == pytest.approx(g * 0.2, rel=1e-15)
    dv = 1e-6  # central difference: error ~ dv^2 * a^3, far below 1e-9
    slope = (dev.current(g, v + dv) - dev.current(g, v - dv)) / (2 * dv)
    np.testing.assert_allclose(dev.small_signal(g, v), slope, rtol=1e-9)
    xb = CrossbarModel(1.0, 1.0, 1.0, iv_alpha_per_v=alpha, v_read_v=0.2)
    assert np.array_equal(xb.drive(v), dev.iv_shape(v))
    assert xb.zero_bias_slope() == float(dev.small_signal(1.0, 0.0))
    assert dev.as_ohmic().is_ohmic and dev.as_ohmic().level_bits == dev.level_bits


@pytest.mark.ngspice
def test_spice_element_gives_the_same_current_as_numpy(tmp_path):
    """A single device's netlist element, swept in DC by ngspice, against current()."""
    v_sweep = (-0.4, 0.4, 0.02)
    cases = []
    for tech in ("pcm", "ideal"):
        dev = _device(tech)
        for g in (dev.g_min_s, 7.3e-6, dev.g_max_s):
            cases.append((dev, g))
    jobs = []
    for k, (dev, g) in enumerate(cases):
        line = dev.spice_element("d", "a", "0", g)
        assert line[0] == ("B" if dev.iv_alpha_per_v > 0 else "R")
        # tolerances: with the node voltage forced by V1, ngspice's default reltol (1e-3) and
        # abstol (1 pA) accept the B-source current linearized at the previous sweep point
        # (error (a·dv)²/2 = 4.5e-4 here); tight ones make it evaluate the element at the point
        text = (
            f"device {k}\n.options reltol=1e-9 abstol=1e-20\nV1 a 0 0\n{line}\n"
            f".dc V1 {v_sweep[0]} {v_sweep[1]} {v_sweep[2]}\n.end\n"
        )
        jobs.append(SpiceJob(text, ("a", "v1#branch"), timeout_s=60, label=f"device {k}"))
    with SpiceRunner(jobs=2, cache_dir=tmp_path) as runner:
        results = runner.run(jobs)
        assert runner.stats["simulated"] == len(jobs)
    for (dev, g), res in zip(cases, results, strict=True):
        v = res["a"]
        assert v.size == 41 and v[0] == pytest.approx(-0.4) and v[-1] == pytest.approx(0.4)
        i_spice = -res["v1#branch"]  # the source's branch current flows into its + node
        # the element is evaluated exactly by ngspice (the node voltage is forced), so the
        # only differences are the 12 significant digits of the netlist text: 1e-6 relative
        # is generous; the absolute floor is far below the smallest nonzero current (2e-9 A)
        np.testing.assert_allclose(i_spice, dev.current(g, v), rtol=1e-6, atol=1e-18)
