"""Results that do not depend on the batching (issue 9): ``--batch`` and ``--threads`` change
time and memory, never a prediction, a statistic or an energy; the read noise a sample sees
is keyed by the sample; conductances of any variation stay physical.

The engine tests read the session's quick characterization (``quick_library``), so they
carry ``@pytest.mark.ngspice``; the :class:`~cosim.engine.core.ReadNoise` tests need none.
"""

from __future__ import annotations

import numpy as np
import pytest

from cosim.engine.config import EngineConfig
from cosim.engine.core import BLOCK_SAMPLES, Engine, LayerStats, ReadNoise, _block_rows
from cosim.engine.evaluate import evaluate
from cosim.library import load_library

from .engine_models import dataset, trained


@pytest.fixture(scope="module")
def library(quick_library):
    return load_library(quick_library.path)


def _assert_same(a, b, what):
    assert a.accuracy_per_chip == b.accuracy_per_chip, what
    for pa, pb in zip(a.predictions, b.predictions, strict=True):
        np.testing.assert_array_equal(pa, pb, err_msg=what)
    assert a.layers == b.layers, what  # every statistic and per-layer energy, exactly
    assert a.energy_per_inference_j == b.energy_per_inference_j, what


# ------------------------------------------------------------------ 1. batch and threads
@pytest.mark.ngspice
@pytest.mark.parametrize(
    "name, ds_name, n",
    [("digits-global", "digits", None), ("fashion-lenet-a8", "fashion-small", 120)],
)
def test_batch_and_threads_change_nothing(library, name, ds_name, n):
    """Every effect on, two chips, read noise and weight variation: batches of 7, 64 and
    1000 samples on one thread and of 64 on two give the same predictions, per-layer
    statistics (conversions, skipped cycles, clipping, saturation) and energies, bit for
    bit. The digits MLP has 359 test samples (batches of 7 pad every block; 64 pads the
    dense layers' blocks of 1000 samples); LeNet-5 at A8 has convolutions (blocks of 10
    and 40 samples on the default card) and sense-row skips."""
    model, ds = trained(name), dataset(ds_name)
    x, y = ds.x_test[:n], ds.y_test[:n]
    cfg = EngineConfig(chips=2, nvw=0.05)
    ref = evaluate(model, library, x, y, cfg.with_(batch=1000))
    if name == "fashion-lenet-a8":
        assert any(lay["skipped_cycle_fraction"] > 0 for lay in ref.layers)
    for batch, threads in [(7, 1), (64, 1), (64, 2)]:
        got = evaluate(model, library, x, y, cfg.with_(batch=batch), threads=threads)
        _assert_same(got, ref, f"batch {batch}, {threads} thread(s)")


@pytest.mark.ngspice
def test_a_sample_sees_the_same_noise_in_any_batch(library):
    """Read noise keyed by sample: the logits of samples 10..16 are the same run as a batch
    of their own (starting at sample 10: every block padded) as inside a batch of 50, and
    differ where the batch claims to start elsewhere."""
    model, ds = trained("fashion-lenet"), dataset("fashion-small")
    eng = Engine(model, library, EngineConfig(seed=3))
    chip, noise = eng.chip(1), ReadNoise(3, 1)
    whole = eng.forward(chip, ds.x_test[:50], noise, {}, start=0)
    part = eng.forward(chip, ds.x_test[10:17], noise, {}, start=10)
    np.testing.assert_array_equal(part, whole[10:17])
    moved = eng.forward(chip, ds.x_test[10:17], noise, {}, start=11)
    assert not np.array_equal(moved, whole[10:17])
    other = eng.forward(chip, ds.x_test[10:17], ReadNoise(3, 2), {}, start=10)
    assert not np.array_equal(other, whole[10:17])


@pytest.mark.ngspice
def test_batch_size_rounds_to_whole_blocks(library):
    """The default 1000 is a whole number of every layer's blocks; other sizes round to
    the nearest multiple of them, small ones stay (and pad); ideal mode batches as asked."""
    for name in ("digits-global", "fashion-lenet"):
        eng = Engine(trained(name), library, EngineConfig())
        a = eng.block_samples()
        assert BLOCK_SAMPLES % a == 0
        assert eng.batch_size(1000) == 1000 and eng.batch_size(7) == 7
        assert eng.batch_size(1024) % a == 0 and eng.batch_size(2600) % a == 0
        for m in eng.maps:
            for t in m.tiles:
                per = 1 if m.layer.kind != "conv2d" else int(np.prod(m.layer.out_shape[1:]))
                rows = _block_rows(len(t.outputs), per)
                assert rows % per == 0 and a % (rows // per) == 0
    ideal = Engine(trained("digits-global"), library, EngineConfig.ideal_mode())
    assert ideal.batch_size(1024) == 1024


def test_energy_tallies_are_exact_and_merge_in_any_order():
    """Stats merged in any order give the same integer tallies: the energies computed from
    them do not depend on how the batches were cut or which finished first."""
    rng = np.random.default_rng(0)
    parts = []
    for _ in range(5):
        s = LayerStats("x")
        s.count("tia", 1.1e-13, int(rng.integers(1, 10**6)))
        s.count("dac", 3.3e-14, int(rng.integers(1, 10**6)))
        s.read_sums = rng.integers(0, 2**40, 12)
        s.adc_counts[3] = rng.integers(0, 100, 24)
        s.vectors, s.vectors_sampled = 1000, 125
        parts.append(s)
    merged = []
    for order in ([0, 1, 2, 3, 4], [4, 2, 0, 3, 1]):
        total = LayerStats("x")
        for i in order:
            total.merge(parts[i])
        merged.append(total)
    a, b = merged
    assert a.tally == b.tally and a.vectors == b.vectors == 5000
    np.testing.assert_array_equal(a.read_sums, b.read_sums)
    np.testing.assert_array_equal(a.adc_counts[3], b.adc_counts[3])


# ------------------------------------------------------------------ 2. the keyed draws
def test_read_noise_blocks_are_drawn_the_same_however_requested():
    """A block's draws depend on (seed, chip, key, block) only: drawing blocks 3..4 alone
    gives what drawing 0..5 gave for them; another key, chip or seed gives other draws."""
    rn = ReadNoise(5, 2)
    every = list(rn.draws((4, 1, 2), 0, 6, 1000))
    some = list(rn.draws((4, 1, 2), 3, 5, 1000))
    np.testing.assert_array_equal(some[0], every[3])
    np.testing.assert_array_equal(some[1], every[4])
    assert every[0].dtype == np.float32 and every[0].shape == (1000,)
    first = every[0]
    for other in (ReadNoise(5, 2).draws((4, 1, 1), 0, 1, 1000),
                  ReadNoise(5, 3).draws((4, 1, 2), 0, 1, 1000),
                  ReadNoise(6, 2).draws((4, 1, 2), 0, 1, 1000)):  # fmt: skip
        assert not np.array_equal(next(other), first)
    assert not np.array_equal(every[1], every[0])


def test_read_noise_draws_are_standard_normal_and_independent_across_blocks():
    """The keyed draws are the Box–Muller draws of :func:`standard_normals`: moments, a
    Kolmogorov–Smirnov test and the 4-sigma tail rate over 2000 blocks of 500, and no
    correlation between neighbouring blocks (the same position in each)."""
    from scipy import stats

    blocks = np.stack(list(ReadNoise(0, 0).draws((1, 0, 0), 0, 2000, 500))).astype(float)
    x = blocks.ravel()
    assert abs(x.mean()) < 5e-3 and abs(x.std() - 1) < 3e-3
    assert abs(stats.skew(x)) < 1e-2 and abs(stats.kurtosis(x)) < 2e-2
    assert stats.kstest(x, "norm").pvalue > 1e-3
    tail = np.mean(np.abs(x) > 4)  # 6.3e-5 for N(0, 1)
    assert 3e-5 < tail < 1.2e-4
    r = np.corrcoef(blocks[:-1].ravel(), blocks[1:].ravel())[0, 1]
    assert abs(r) < 5e-3  # 1e6 pairs: sigma 1e-3


# ------------------------------------------------------------------ 3. physical conductances
@pytest.mark.ngspice
@pytest.mark.parametrize("nvw", [10.0, 1e300])
def test_huge_weight_variation_evaluates(library, nvw):
    """``nvw`` far beyond the documented range (the configuration refuses it; the engine
    must not depend on that): conductances stay in ``[0, 1.5·g_max]``, the nodal solve
    gets a positive definite block, and the evaluation runs (at chance accuracy)."""
    model, ds = trained("digits-global"), dataset("digits")
    cfg = EngineConfig(chips=1)
    object.__setattr__(cfg, "nvw", nvw)  # past EngineConfig's range check, on purpose
    eng = Engine(model, library, cfg)
    g_max = library.card.device.g_max_s
    for layer in eng.chip(0):
        for ts in layer.tiles:
            assert np.all(np.isfinite(ts.g)) and ts.g.min() >= 0 and ts.g.max() <= 1.5 * g_max
            assert ts.g.max() == pytest.approx(1.5 * g_max)  # the variation reaches the ceiling
            assert np.all(np.isfinite(ts.m_eff))
    res = evaluate(model, library, ds.x_test[:60], ds.y_test[:60], cfg)
    assert 0.0 <= res.accuracy_mean <= 1.0
    assert all(np.isfinite(v) for v in res.energy_per_inference_j.values())
