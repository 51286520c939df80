"""The analog chain's two evaluations agree (:mod:`cosim.engine.stages`).

:meth:`Engine.forward` runs the folded path (TIAs and subtractors folded into the crossbar
products in float32, the exact loop solve only for vectors near a rail); the exact path
evaluates every vector through :meth:`ChainStages.exact` on float64 currents. Both come
from one :class:`ChainStages`; this property test shows that they give the same codes on
random chips, inputs and rails: narrowed TIA and subtractor rails (so that pairs and
unipolar columns reach them), saturating inputs, unipolar columns, analog and digital
partial sums, with the sense-row skips.

The folded path's voltages are float32 (``V_out`` rounded to 6e-8 relative, products of
up to 2·150 terms: at most ~2e-6 V from the float64 value), so a code may flip where the
exact voltage lies within :data:`TOL_V` of an ADC's decision level (or the sense voltage
of a sense comparator's); such cases are allowed, counted, and must stay rare.

Every example reads the committed quick library (``committed_library``: no SPICE);
examples are derandomized and few.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, note, settings
from hypothesis import strategies as st

from cosim.engine.config import EngineConfig
from cosim.engine.core import Engine, LayerStats
from cosim.library import load_library

from .engine_models import dataset, trained

#: float32 rounding of the folded voltages is ≤ ~2e-6 V (see the module docstring); a code
#: that differs between the paths must come from a decision level closer than this
TOL_V = 1e-5

MODELS = {"digits-global": "digits", "digits-unipolar": "digits", "fashion-lenet": "fashion-small"}


@pytest.fixture(scope="module")
def library(committed_library):
    return load_library(committed_library.path)


def _narrow(opamp, rail_v):
    """The op-amp with its output rails at ``±rail_v`` (V); ``None``: as fitted."""
    if rail_v is None:
        return opamp
    return replace(opamp, v_out_min_v=-rail_v, v_out_max_v=rail_v)


def _codes_at(eng, st, ct, rt, v, g, skip):
    return eng._adc_codes(st, ct, rt, v, g.bits, g.offset_binary, skip, LayerStats("ref"))


def _check_group(eng, st, lay, g, seen):
    """One conversion group of a trace against the exact path on float64 currents."""
    lm = st.lmap
    group = [
        ts
        for ts in st.tiles
        if ts.tile.col_tile == g.col_tile and g.row_tile in (-1, ts.tile.row_tile)
    ]
    cur = eng.column_currents(lm, group, lay.inputs)
    chain = eng.chain_stages(st, g.col_tile, group, g.r_t_ohm, g.offset_binary)
    v_exact = chain.exact(cur)
    skip = None if g.skip is None else eng._skip(lm, st, group, cur, g.bits)
    codes = _codes_at(eng, st, g.col_tile, g.row_tile, v_exact, g, skip)
    # what the chain reached: the linear TIA voltages and subtractor outputs beyond range
    v_col = chain.tia_voltages(cur)
    lo, hi = chain.tia_range_v
    beyond = (v_col < lo) | (v_col > hi)
    seen["pair TIA at a rail"] += int(beyond[:, chain.col_pair].any())
    seen["unipolar TIA at a rail"] += int(beyond[:, ~chain.col_pair].any())
    seen["unipolar outputs"] += int((~chain.pair).any())
    s_lo, s_hi = chain.sub_range_v
    at_sub = ((v_exact < s_lo) | (v_exact > s_hi))[:, chain.pair]
    seen["subtractor at a rail"] += int(chain.sub_rails_matter() and bool(at_sub.any()))
    seen["skips"] += int(skip is not None and bool(skip.any()))
    # the voltages agree wherever the ADC can tell them apart
    v_ref = chain.adc_range_v[1]
    np.testing.assert_allclose(
        np.clip(g.v_out, 0, v_ref), np.clip(v_exact, 0, v_ref), atol=TOL_V, rtol=0
    )
    diff = codes != g.codes
    if skip is not None:
        seen["skip differs"] += int(np.count_nonzero(skip != g.skip))
    if diff.any():
        # a flip is allowed only within TOL_V of a decision level: there the codes of
        # v ± TOL_V differ (the ADC is monotone; with the same skip)
        lo_c = _codes_at(eng, st, g.col_tile, g.row_tile, v_exact - TOL_V, g, skip)
        hi_c = _codes_at(eng, st, g.col_tile, g.row_tile, v_exact + TOL_V, g, skip)
        near = lo_c != hi_c
        if skip is not None:  # or the sense comparators decided differently
            near |= (skip != g.skip)[:, None]
        unexplained = diff & ~near
        assert not unexplained.any(), (
            f"layer {lm.index} group ({g.row_tile}, {g.col_tile}): codes "
            f"{g.codes[unexplained][:5]} (folded) vs {codes[unexplained][:5]} (exact) at "
            f"{v_exact[unexplained][:5]} V"
        )
        seen["near a decision level"] += int(np.count_nonzero(diff))
    seen["codes compared"] += codes.size


def test_folded_path_codes_equal_the_exact_paths(library):
    """Over random chips (seed), models, partial-sum modes, rails and inputs: every code the
    folded path gives (the one :meth:`Engine.forward` runs, read back through
    :meth:`Engine.trace`) equals the code of the exact path, except within
    :data:`TOL_V` of a decision level; and the examples really reach the rails (pair and
    unipolar TIAs, subtractors inside the ADC's range), hold unipolar columns and skips."""
    seen: Counter[str] = Counter()

    @settings(
        max_examples=14,
        deadline=None,
        derandomize=True,
        print_blob=False,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(
        name=st.sampled_from(sorted(MODELS)),
        partial_sums=st.sampled_from(["digital", "analog"]),
        seed=st.integers(0, 3),
        tia_rail=st.one_of(st.none(), st.floats(0.1, 0.9)),
        sub_rail=st.one_of(st.none(), st.floats(0.3, 0.9)),
        input_gain=st.sampled_from([1.0, 4.0]),
        n=st.integers(4, 24),
        first=st.integers(0, 150),
    )
    # every kind of rail in every run, whatever the draws: pair TIAs (R_t/gain: a quarter
    # of a unipolar TIA's swing) at ±0.15 V, unipolar TIAs at ±0.3 V, subtractors inside
    # the ADC's range
    @example("digits-global", "digital", 0, 0.15, 0.5, 4.0, 16, 0)
    @example("digits-unipolar", "analog", 1, 0.3, None, 4.0, 16, 20)
    @example("fashion-lenet", "digital", 2, 0.15, 0.6, 1.0, 8, 0)
    def check(name, partial_sums, seed, tia_rail, sub_rail, input_gain, n, first):
        cfg = EngineConfig(read_noise=False, seed=seed, partial_sums=partial_sums)
        eng = Engine(trained(name), library, cfg)
        eng.tia = replace(eng.tia, opamp=_narrow(eng.tia.opamp, tia_rail))
        eng.sub = replace(eng.sub, opamp=_narrow(eng.sub.opamp, sub_rail))
        ds = dataset(MODELS[name])
        x = ds.x_test[first : first + n] * input_gain  # 4x: many inputs at full scale
        chip = eng.chip(0)
        tr = eng.trace(chip, x, np.random.default_rng(0))
        states = {s.lmap.index: s for s in chip}
        assert sorted(tr.layers) == sorted(states)
        for i, lay in tr.layers.items():
            assert lay.groups, i
            for g in lay.groups:
                note(f"layer {i} group ({g.row_tile}, {g.col_tile})")
                _check_group(eng, states[i], lay, g, seen)
        seen["digital" if partial_sums == "digital" else "analog"] += 1

    check()
    print(dict(seen))
    for what in (
        "pair TIA at a rail",
        "unipolar TIA at a rail",
        "subtractor at a rail",
        "unipolar outputs",
        "skips",
        "digital",
        "analog",
    ):
        assert seen[what] > 0, f"no example covered: {what}"
    # float32 rounding flips codes only rarely: measured 0 of ~1e5
    assert seen["near a decision level"] <= 1e-4 * seen["codes compared"]


def test_trace_is_what_forward_computes(library):
    """:meth:`Engine.trace` returns the logits ``forward`` returns; the first layer's
    inputs are the preprocessed sample codes; with analog partial sums each column tile
    converts once, and its codes are the layer's outputs at the tile's output indices."""
    model = trained("digits-unipolar")
    eng = Engine(model, library, EngineConfig(read_noise=False, partial_sums="analog"))
    x = dataset("digits").x_test[:30]
    chip = eng.chip(0)
    tr = eng.trace(chip, x, np.random.default_rng(0))
    np.testing.assert_array_equal(tr.logits, eng.forward(chip, x, np.random.default_rng(0), {}))
    first = min(tr.layers)
    np.testing.assert_array_equal(
        tr.layers[first].inputs, model.preprocessing.codes(x).reshape(30, -1)
    )
    for st_ in chip:
        lm, lay = st_.lmap, tr.layers[st_.lmap.index]
        assert lay.inputs.shape == (30, lm.fan_in) and lay.outputs.shape == (30, lm.n_out)
        assert len(lay.groups) == lm.n_col_tiles
        for ct in range(lm.n_col_tiles):
            g = lay.group(ct)
            outs = next(t.outputs for t in lm.tiles if t.col_tile == ct)
            np.testing.assert_array_equal(lay.outputs[:, [o for o, _, _ in outs]], g.codes)
            assert g.v_out.dtype == np.float32 and g.skip is not None


def test_tia_reads_do_not_depend_on_the_rails(library):
    """Every vector reads every TIA of its group once, whichever path converts it: with
    rails narrowed to ±0.15 V (many vectors take the exact solve) the layer's TIA reads are
    those at the fitted rails, the number of vectors times the TIAs of each conversion
    group, and the narrowed rails saturate some of them."""
    model, x = trained("digits-global"), dataset("digits").x_test[:50] * 4.0
    reads, saturated = [], []
    for rail in (None, 0.15):
        eng = Engine(model, library, EngineConfig(read_noise=False))
        eng.tia = replace(eng.tia, opamp=_narrow(eng.tia.opamp, rail))
        stats: dict = {}
        eng.forward(eng.chip(0), x, np.random.default_rng(0), stats)
        reads.append({i: s.tia_reads for i, s in stats.items()})
        saturated.append(sum(s.tia_saturated for s in stats.values()))
    tias = {  # TIAs per conversion group: one per output column (pairs: two)
        m.index: sum(sum(1 if q is None else 2 for _, _, q in t.outputs) for t in m.tiles)
        for m in Engine(model, library, EngineConfig()).maps
    }
    assert reads[0] == reads[1] == {i: 50 * k for i, k in tias.items()}
    assert saturated[0] == 0 < saturated[1]


def test_a_chips_stage_description_is_read_only(library):
    """The cached description of a conversion group cannot be changed behind the fold
    cached beside it: writing into any of its arrays raises."""
    eng = Engine(trained("digits-global"), library, EngineConfig(read_noise=False))
    st = eng.chip(0)[0]
    group = [ts for ts in st.tiles if ts.tile.col_tile == 0]
    chain = eng.chain_stages(st, 0, group, st.lmap.periphery.r_t_ohm, False)
    for name in ("tia_gain_ohm", "sub_coeffs", "g_norton_s", "cols"):
        with pytest.raises(ValueError, match="read-only"):
            getattr(chain, name)[...] = 0
