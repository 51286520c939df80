"""Results that do not depend on the batching (issue 9): ``--batch`` and ``--threads`` change
time and memory, never a prediction, a statistic or an energy; the read noise a sample sees
is keyed by the sample; conductances of any variation stay physical. Chip draws keyed by what
they model (issue 13): switching one effect or changing its size moves no other draw.

The engine tests read the committed quick characterization (``committed_library``); none
runs ngspice.
"""

from __future__ import annotations

import numpy as np
import pytest

from cosim.engine.blocks import BLOCK_SAMPLES, block_rows
from cosim.engine.chip import G_CEILING
from cosim.engine.config import EngineConfig
from cosim.engine.core import Engine
from cosim.engine.energy import LayerStats
from cosim.engine.evaluate import evaluate
from cosim.engine.readnoise import ReadNoise
from cosim.engine.streams import ChipStreams, Effect
from cosim.library import load_library

from .engine_models import dataset, trained


@pytest.fixture(scope="module")
def library(committed_library):
    return load_library(committed_library.path)


def _assert_same(a, b, what):
    assert a.accuracy_per_chip == b.accuracy_per_chip, what
    for pa, pb in zip(a.predictions, b.predictions, strict=True):
        np.testing.assert_array_equal(pa, pb, err_msg=what)
    assert a.layers == b.layers, what  # every statistic and per-layer energy, exactly
    assert a.energy_per_inference_j == b.energy_per_inference_j, what


# ------------------------------------------------------------------ 1. batch and threads
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
        assert any(lay.skipped_cycle_fraction > 0 for lay in ref.layers)
    for batch, threads in [(7, 1), (64, 1), (64, 2)]:
        got = evaluate(model, library, x, y, cfg.with_(batch=batch), threads=threads)
        _assert_same(got, ref, f"batch {batch}, {threads} thread(s)")


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
                rows = block_rows(len(t.outputs), per)
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


# ------------------------------------------------------------------ 4. chip draws keyed by effect
def _periphery_draws(eng, chip):
    """Every periphery draw of a chip, as plain arrays: TIA offsets per tile, subtractor
    coefficients per column tile, the sense TIA offsets, each ADC instance's circuit."""
    out = {}
    for st in chip:
        li = st.lmap.index
        out[("sense", li)] = np.array([st.sense_offset_v])
        for ts in st.tiles:
            out[("tia", li, ts.tile.row_tile, ts.tile.col_tile)] = ts.tia_offset_v
        for ct, c in st.sub_coeffs.items():
            out[("sub", li, ct)] = c
    return out


def _adc_draws(eng, chip):
    out = {}
    for st in chip:
        for key, adcs in st.adcs.items():
            for a, adc in enumerate(adcs):
                w = getattr(adc, "bit_weights_v", getattr(adc, "levels_v", None))
                out[(st.lmap.index, *key, a)] = np.append(
                    np.asarray(w), getattr(adc, "comparator_offset_v", 0.0)
                )
    return out


def _assert_draws_equal(a, b, what):
    assert a.keys() == b.keys(), what
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=f"{what}: {k}")


def test_switching_stuck_faults_moves_no_other_draw(library):
    """Stuck faults on and off (at 2 % + 2 %, so every tile has some): the devices their own
    stream marks stuck (recomputed here from its key: (seed, chip, layer, tile, STUCK), line
    by line) sit at g_max or g_min, every other device has exactly the conductance it has
    with the faults off, and the reference lines and every periphery and ADC draw are
    identical. Drift on: its exponents too stay where they were."""
    card = library.card.with_updates({"device": {"stuck_on_rate": 0.02, "stuck_off_rate": 0.02}})
    model = trained("digits-unipolar")  # unipolar columns: reference lines too
    cfg = EngineConfig(seed=7, drift_t_s=3600.0)
    on = Engine(model, library, cfg, card)
    off = Engine(model, library, cfg.with_(stuck_faults=False), card)
    chip_on, chip_off = on.chip(2), off.chip(2)
    dev, streams = on.device, ChipStreams(7, 2)
    n_stuck = n_dev = 0
    for st_on, st_off in zip(chip_on, chip_off, strict=True):
        for a, b in zip(st_on.tiles, st_off.tiles, strict=True):
            t = a.tile
            rng = streams.rng(Effect.STUCK, st_on.lmap.index, t.row_tile, t.col_tile)
            mask = dev.stuck_mask(a.g.shape[::-1], rng).T  # drawn line by line
            lines = a.g.shape[1] - card.sense_row.enabled  # the sense line is verified
            mask[:, lines:] = 0
            np.testing.assert_array_equal(a.g[mask == 1], dev.g_max_s)
            np.testing.assert_array_equal(a.g[mask == -1], dev.g_min_s)
            np.testing.assert_array_equal(a.g[mask == 0], b.g[mask == 0])
            np.testing.assert_array_equal(a.ref_g, b.ref_g)
            n_stuck += int(np.count_nonzero(mask))
            n_dev += mask[:, :lines].size
    # the switch really switched: 4 % of the devices stuck (binomial, > 20k devices: the
    # 3-sigma band is well inside 3-5 %)
    assert 0.03 < n_stuck / n_dev < 0.05
    _assert_draws_equal(_periphery_draws(on, chip_on), _periphery_draws(off, chip_off), "stuck")
    _assert_draws_equal(_adc_draws(on, chip_on), _adc_draws(off, chip_off), "stuck")


def test_an_nvw_sweep_is_one_chip_with_scaled_deviations(library):
    """nvw = 0.05 and 0.1 on the same chip (programming noise on): every device's deviation
    from its conductance at nvw = 0 is ``nvw·(g_max − g_min)`` times the standard normals of
    its tile's NVW stream (recomputed here from the key, line by line; the reference line's
    from REF_NVW), so exactly twice as large at 0.1, wherever neither is clipped; every
    periphery and ADC draw stays."""
    model = trained("digits-unipolar")
    base = EngineConfig(seed=3, stuck_faults=False)
    engines = [Engine(model, library, base.with_(nvw=v)) for v in (0.0, 0.05, 0.1)]
    chips = [e.chip(0) for e in engines]
    dev, streams = engines[0].device, ChipStreams(3, 0)
    span, top = dev.g_max_s - dev.g_min_s, G_CEILING * dev.g_max_s
    # g0 + d rounds once to the conductance's ulp and the difference once more: 4 ulps of
    # the largest conductance bound both (1e-20 S against deviations of 1e-6 S)
    ulps = 4 * np.spacing(top)
    n_free = 0
    for s0, s1, s2 in zip(*chips, strict=True):
        for t0, t1, t2 in zip(s0.tiles, s1.tiles, s2.tiles, strict=True):
            at = streams.at(s0.lmap.index, t0.tile.row_tile, t0.tile.col_tile)
            parts = [(t0.g, t1.g, t2.g, at(Effect.NVW).standard_normal(t0.g.shape[::-1]).T)]
            if t0.ref_g is not None:  # a tile with unipolar columns
                used = np.zeros(t0.ref_g.shape, dtype=bool)  # a device on every used row
                used[t0.tile.data_rows] = used[t0.tile.bias_rows] = True
                z_ref = np.zeros(used.shape)
                z_ref[used] = at(Effect.REF_NVW).standard_normal(int(used.sum()))
                parts.append((t0.ref_g, t1.ref_g, t2.ref_g, z_ref))
            for g0, g1, g2, zz in parts:
                free = (g1 > 0) & (g2 > 0) & (g1 < top) & (g2 < top)
                d1, d2 = (g1 - g0)[free], (g2 - g0)[free]
                np.testing.assert_allclose(d1, 0.05 * span * zz[free], rtol=0, atol=ulps)
                np.testing.assert_allclose(d2, 2 * d1, rtol=0, atol=ulps)
                n_free += d1.size
    assert n_free > 10_000
    for eng, chip in zip(engines[1:], chips[1:], strict=True):
        p0, p1 = _periphery_draws(engines[0], chips[0]), _periphery_draws(eng, chip)
        _assert_draws_equal(p0, p1, "nvw")
        _assert_draws_equal(_adc_draws(engines[0], chips[0]), _adc_draws(eng, chip), "nvw")


def test_adc_switches_leave_the_array_and_periphery_draws(library):
    """The ADC mismatch off, or Bao et al.'s nva instead: TIA offsets, subtractors, sense
    offsets and conductances are identical; nva = 0.01 and 0.02 move every comparison level
    by exactly twice as much (common random numbers)."""
    model = trained("fashion-lenet-a8")
    cfg = EngineConfig(seed=1)
    ref_eng = Engine(model, library, cfg)
    ref = ref_eng.chip(0)
    for change in (dict(adc=False), dict(nva=0.02), dict(periphery=False)):
        eng = Engine(model, library, cfg.with_(**change))
        chip = eng.chip(0)
        for a, b in zip(ref, chip, strict=True):
            for ta, tb in zip(a.tiles, b.tiles, strict=True):
                np.testing.assert_array_equal(ta.g, tb.g, err_msg=str(change))
        if "periphery" in change:  # no periphery draws; the ADC instances stay
            _assert_draws_equal(_adc_draws(ref_eng, ref), _adc_draws(eng, chip), str(change))
        else:
            pa, pb = _periphery_draws(ref_eng, ref), _periphery_draws(eng, chip)
            _assert_draws_equal(pa, pb, str(change))
    lv = [Engine(model, library, cfg.with_(nva=v)).chip(0) for v in (0.01, 0.02)]
    for a, b in zip(*lv, strict=True):
        for key in a.adcs:
            bits = a.adcs[key][0].bits
            ideal = (np.arange(1, 2**bits) - 0.5) / 2**bits  # V_ref = 1 V
            for x, y in zip(a.adcs[key], b.adcs[key], strict=True):
                # (ideal + d) - ideal rounds twice at 1 V: 2 ulps of 1.0 each
                np.testing.assert_allclose(
                    y.levels_v - ideal, 2 * (x.levels_v - ideal), rtol=0, atol=4 * np.spacing(1.0)
                )


def test_chip_streams_are_keyed_by_every_field():
    """A chip draw's generator depends on each word of its key and on nothing else: the
    same key gives the same draws, a change of any one word other draws."""
    import doctest

    import cosim.engine.streams as streams

    assert doctest.testmod(streams).failed == 0
    key = dict(effect=Effect.PROGRAMMING, layer=1, row_tile=0, col_tile=3, index=0)
    first = ChipStreams(5, 2).rng(**key).random(4)
    np.testing.assert_array_equal(ChipStreams(5, 2).rng(**key).random(4), first)
    others = [ChipStreams(6, 2).rng(**key), ChipStreams(5, 3).rng(**key)]
    for word, value in [("effect", Effect.NVW), ("layer", 2), ("row_tile", 1),
                        ("row_tile", -1), ("col_tile", 2), ("index", 1)]:  # fmt: skip
        others.append(ChipStreams(5, 2).rng(**{**key, word: value}))
    for g in others:
        assert not np.array_equal(g.random(4), first)
    assert [int(e) for e in Effect] == list(range(1, len(Effect) + 1))  # numbers are fixed
