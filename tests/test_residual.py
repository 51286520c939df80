"""Networks with residual connections: an ONNX residual block imported, the integer reference
against onnx's ReferenceEvaluator, the engine's ideal mode bit-exact with the reference, a
nonideal evaluation counting the Adds' energy, and the model file round trip."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper as oh
from onnx import numpy_helper as nh
from onnx.reference import ReferenceEvaluator

from cosim.engine.config import EngineConfig
from cosim.engine.core import Engine
from cosim.engine.evaluate import evaluate
from cosim.engine.mapping import map_layer, signed_half
from cosim.errors import ModelFileError, OnnxImportError
from cosim.library import load_library
from cosim.model import AddLayer, integer_forward, load_model, save_model
from cosim.model.forward import add_ratios
from cosim.quant import ActGrid, residual_add
from cosim.train.importer import ImportOptions, import_onnx
from cosim.train.onnx_graph import graph_from_proto
from tests.engine_models import ALL_OFF, evaluate_recording, reference_codes
from tests.test_onnx_import import make_model

N_TEST = 120  # digits test images the engine runs (fast)


def _t(name, a):
    return nh.from_array(np.asarray(a, dtype=np.float32), name)


def residual_block(
    rng, relu_after=True, projection=False, conv_after=False, plain=False, name="resblock"
):
    """conv-relu, then a residual block (conv-relu-conv + identity skip, relu after the add),
    (with ``conv_after`` a conv-relu reading the Add's codes), a max pool and a Gemm head,
    for 8x8 digits. ``plain``: the block is conv-relu + identity skip, an Add of two
    activations (no signed operand)."""
    nodes = [
        oh.make_node("Conv", ["x", "W1", "B1"], ["c1"], pads=[1, 1, 1, 1]),
        oh.make_node("Relu", ["c1"], ["r1"]),
        oh.make_node("Conv", ["r1", "W2", "B2"], ["c2"], pads=[1, 1, 1, 1]),
        oh.make_node("Relu", ["c2"], ["r2"]),
    ]
    if not plain:
        nodes.append(oh.make_node("Conv", ["r2", "W3", "B3"], ["c3"], pads=[1, 1, 1, 1]))
    skip = "r1"
    if projection:
        nodes.append(oh.make_node("Conv", ["r1", "Wp"], ["p"]))
        skip = "p"
    nodes.append(oh.make_node("Add", ["r2" if plain else "c3", skip], ["s"], name="skip"))
    last = "s"
    if relu_after:
        nodes.append(oh.make_node("Relu", ["s"], ["r3"]))
        last = "r3"
    if conv_after:
        nodes.append(oh.make_node("Conv", [last, "W5"], ["c5"], pads=[1, 1, 1, 1]))
        nodes.append(oh.make_node("Relu", ["c5"], ["r5"]))
        last = "r5"
    nodes += [
        oh.make_node("MaxPool", [last], ["m"], kernel_shape=[2, 2], strides=[2, 2]),
        oh.make_node("Flatten", ["m"], ["f"]),
        oh.make_node("Gemm", ["f", "W4", "B4"], ["y"], transB=1),
    ]
    c = 4
    inits = [
        _t("W1", rng.standard_normal((c, 1, 3, 3)) * 0.5),
        _t("B1", rng.standard_normal(c) * 0.1),
        _t("W2", rng.standard_normal((c, c, 3, 3)) * 0.3),
        _t("B2", rng.standard_normal(c) * 0.1),
    ]
    if not plain:
        inits += [
            _t("W3", rng.standard_normal((c, c, 3, 3)) * 0.3),
            _t("B3", rng.standard_normal(c) * 0.1),
        ]
    inits += [
        _t("W4", rng.standard_normal((10, c * 16)) * 0.3),
        _t("B4", rng.standard_normal(10) * 0.1),
    ]
    if projection:
        inits.append(_t("Wp", rng.standard_normal((c, c, 1, 1))))
    if conv_after:
        inits.append(_t("W5", rng.standard_normal((c, c, 3, 3)) * 0.3))
    return make_model(nodes, inits, (1, 8, 8), 10, name=name)


@pytest.fixture(scope="module")
def digits():
    from cosim.datasets import load_dataset

    return load_dataset("digits")


@pytest.fixture(scope="module")
def block():
    return residual_block(np.random.default_rng(3))


def _import(block, digits, **kw):
    opts = ImportOptions(calibrate=200, **kw)
    return import_onnx(graph_from_proto(block, "resblock"), digits, opts)


@pytest.fixture(scope="module")
def imported(block, digits):
    return _import(block, digits)


@pytest.fixture(scope="module")
def library(committed_library):
    return load_library(committed_library.path)


def test_residual_add_is_the_clipped_sum_of_codes_on_one_grid():
    a = np.array([-9, -1, 0, 2, 5, 7])
    b = np.array([3, 3, 0, 2, 5, 7])
    assert residual_add(a, 1.0, b, 1.0, 3).tolist() == [0, 2, 0, 4, 7, 7]
    # per-layer grids: each operand rescaled onto the output grid, one rounding
    g_a, g_b, g_y = ActGrid(2.0, 3), ActGrid(4.0, 3), ActGrid(8.0, 3)
    got = residual_add(a, g_a.step / g_y.step, b, g_b.step / g_y.step, 3)
    want = np.clip(np.floor((a * g_a.step + b * g_b.step) / g_y.step + 0.5), 0, 7)
    assert got.tolist() == want.tolist()


def test_imported_block_has_one_pair_add_reading_the_first_activation(imported):
    m = imported.model
    adds = [(i, lay) for i, lay in enumerate(m.layers) if isinstance(lay, AddLayer)]
    assert len(adds) == 1
    i, add = adds[0]
    assert add.pair and add.source == 0  # the first conv's ReLU'd codes
    conv2 = m.layers[i - 1]
    assert conv2.out_shape[0] == 2 * add.out_shape[0]  # [W; -W]
    np.testing.assert_array_equal(conv2.n_w[:4], -conv2.n_w[4:])
    assert m.residual and imported.report["residual_adds"] == 1


@pytest.mark.parametrize("scheme", ["global", "per-layer"])
def test_integer_reference_is_close_to_onnx_reference_evaluator(block, digits, scheme):
    """At 8-bit weights and activations the quantized graph's logits follow the float ones
    (with the group rule "max", which clips nothing, within 5 % of the largest logit and 95 %
    of the arg-maxes equal; the default "joint" rule clips the group's largest tensor a
    little, which this random-weight block, whose logits lie close together, feels more:
    10 % and 90 %)."""
    x01 = digits.preprocessing.unit(digits.x_test[:300])
    ref = ReferenceEvaluator(block).run(None, {"x": x01.astype(np.float32)})[0]
    for rule, tol, agree in (("max", 0.05, 0.95), ("joint", 0.10, 0.90)):
        out = _import(block, digits, scheme=scheme, w_bits=8, a_bits=8, group_rule=rule)
        got = integer_forward(out.model, digits.x_test[:300]).logits
        got = got / out.report["calibration"]["head_scale"]
        err = np.abs(got - ref).max() / np.abs(ref).max()
        assert err < tol, (rule, err)
        assert np.mean(got.argmax(1) == ref.argmax(1)) > agree, rule
    # a coarse grid is further off: the comparison can fail
    coarse = _import(block, digits, scheme=scheme, w_bits=2, a_bits=2)
    got2 = integer_forward(coarse.model, digits.x_test[:300]).logits
    got2 = got2 / coarse.report["calibration"]["head_scale"]
    assert np.abs(got2 - ref).max() / np.abs(ref).max() > err


def test_model_file_round_trip_and_bad_add_is_refused(imported, tmp_path):
    p = tmp_path / "res.npz"
    save_model(imported.model, p)
    m = load_model(p)
    x = np.random.default_rng(0).integers(0, 17, (50, 1, 8, 8)).astype(np.float64)
    a = integer_forward(imported.model, x, keep_codes=True)
    b = integer_forward(m, x, keep_codes=True)
    for ca, cb in zip(a.codes, b.codes, strict=True):
        np.testing.assert_array_equal(ca, cb)
    import json

    from cosim.model import read_npz

    arrays = read_npz(p)
    meta = json.loads(str(arrays["meta"]))
    i = next(j for j, g in enumerate(meta["layers"]) if g["kind"] == "add")
    meta["layers"][i]["source"] = i  # itself: not an earlier layer
    arrays["meta"] = np.array(json.dumps(meta))
    bad = tmp_path / "bad.npz"
    np.savez(bad, **arrays)
    with pytest.raises(ModelFileError, match=r"layers\[\d+\]\.source"):
        load_model(bad)


@pytest.mark.parametrize(("scheme", "conv_after"), [("global", False), ("per-layer", False),
                                                    ("global", True)])  # fmt: skip
def test_engine_ideal_mode_is_bit_exact_with_the_integer_reference(
    block, imported, digits, library, scheme, conv_after
):
    """Per-layer: every tensor its own grid, so the Add rescales its operands (ratios != 1);
    ``conv_after``: a crossbar layer reads the Add's codes."""
    if conv_after:
        block = residual_block(np.random.default_rng(3), conv_after=True)
    if scheme == "global" and not conv_after:
        model = imported.model
    else:
        model = _import(block, digits, scheme=scheme).model
    add = next(i for i, lay in enumerate(model.layers) if isinstance(lay, AddLayer))
    ratios = add_ratios(model, add)
    assert (ratios == (1.0, 1.0)) == (scheme == "global")
    x = digits.x_test[:N_TEST]
    ref = integer_forward(model, x, keep_codes=True)
    eng = Engine(model, library, EngineConfig.ideal_mode())
    trace = eng.trace(None, x)
    np.testing.assert_array_equal(trace.logits, ref.logits)
    hidden = [i for i, lay in enumerate(model.layers) if getattr(lay, "is_hidden", False)]
    assert set(trace.layers) == set(hidden)
    for i in hidden:  # every hidden layer's input: the Add's codes feed the layer after it
        assert trace.layers[i].inputs.shape[0] > 0
    res = evaluate(model, library, x, digits.y_test[:N_TEST], EngineConfig.ideal_mode())
    assert res.predictions[0].tolist() == ref.predictions.tolist()


def test_nonideal_evaluation_counts_the_adds_energy(imported, digits, library):
    model = imported.model
    x, y = digits.x_test[:60], digits.y_test[:60]
    res = evaluate(model, library, x, y, EngineConfig(chips=1, batch=60))
    add_rows = [lay for lay in res.layers if lay.layer.endswith(":add")]
    assert len(add_rows) == 1
    add = next(lay for lay in model.layers if isinstance(lay, AddLayer))
    # the pair's operand is read as one signed code (mapping.signed_half): one add each
    src = model.layers.index(add) - 1
    assert signed_half(model, src) is not None
    n_adds = int(np.prod(add.out_shape))
    e_add = library.card.digital.e_add_j
    assert e_add > 0
    got = add_rows[0].energy_per_inference_j.digital
    assert got == pytest.approx(n_adds * e_add, rel=1e-12)
    assert res.energy_per_inference_j.digital >= got
    assert 0.0 <= res.accuracy_per_chip[0] <= 1.0


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"relu_after": False}, "not followed by a ReLU"),
        ({"projection": True}, "identity skips only.*projection shortcut"),
    ],
)
def test_residual_graphs_cosim_cannot_run_are_refused(digits, kw, match):
    m = residual_block(np.random.default_rng(1), **kw)
    with pytest.raises(OnnxImportError, match=match):
        _import(m, digits)


def test_layer_tuning_energy_goes_to_the_crossbar_layers_only(block, digits, library):
    """Per-layer tuning charges every hidden layer beyond the first, never the Add's row."""
    model = _import(block, digits, scheme="per-layer").model
    x, y = digits.x_test[:30], digits.y_test[:30]
    res = evaluate(model, library, x, y, EngineConfig(chips=1, batch=30, layer_tuning=True))
    tuning = {lay.layer: lay.energy_per_inference_j.layer_tuning for lay in res.layers}
    assert tuning["3:add"] == 0.0
    assert tuning["0:conv2d"] == 0.0
    assert tuning["1:conv2d"] > 0 and tuning["1:conv2d"] == tuning["2:conv2d"]


def test_a_sequential_model_keeps_its_file_and_its_evaluation_rows(digits, library, tmp_path):
    """A model without Adds: the file holds no new key, the evaluation no new row, and the
    reference, the engine's ideal mode and a reload agree (the byte-level comparison with
    the code before residual Adds is in docs/architecture.md)."""
    import json

    from cosim.model import read_npz

    rng = np.random.default_rng(5)
    nodes = [
        oh.make_node("Conv", ["x", "W1"], ["c1"], pads=[1, 1, 1, 1]),
        oh.make_node("Relu", ["c1"], ["r1"]),
        oh.make_node("MaxPool", ["r1"], ["m"], kernel_shape=[2, 2], strides=[2, 2]),
        oh.make_node("Flatten", ["m"], ["f"]),
        oh.make_node("Gemm", ["f", "W2"], ["y"], transB=1),
    ]
    inits = [_t("W1", rng.standard_normal((4, 1, 3, 3))), _t("W2", rng.standard_normal((10, 64)))]
    proto = make_model(nodes, inits, (1, 8, 8), 10, name="seq", check=False)
    out = import_onnx(graph_from_proto(proto, "seq"), digits, ImportOptions(calibrate=100))
    assert out.net is not None and not out.model.residual
    p = tmp_path / "seq.npz"
    save_model(out.model, p)
    meta = json.loads(str(read_npz(p)["meta"]))
    keys = {
        "conv2d": {"kind", "role", "in_shape", "out_shape", "kernel", "stride", "padding",
                   "w_grid", "in_grid", "out_grid", "b_grid"},
        "maxpool2d": {"kind", "size", "in_shape", "out_shape"},
        "flatten": {"kind", "in_shape", "out_shape"},
        "dense": {"kind", "role", "in_shape", "out_shape", "w_grid", "in_grid", "out_grid",
                  "b_grid"},
    }  # fmt: skip
    assert [set(d) for d in meta["layers"]] == [keys[d["kind"]] for d in meta["layers"]]
    x, y = digits.x_test[:40], digits.y_test[:40]
    ref = integer_forward(load_model(p), x)
    ideal = evaluate(out.model, library, x, y, EngineConfig.ideal_mode())
    assert ideal.predictions[0].tolist() == ref.predictions.tolist()
    res = evaluate(out.model, library, x, y, EngineConfig(chips=1, batch=40))
    assert [lay.layer for lay in res.layers] == ["0:conv2d"]


def _columns(lm):
    """Physical crossbar columns of a layer map (a pair two, a unipolar filter one)."""
    first = [t for t in lm.tiles if t.row_tile == 0]
    return sum(1 + (q is not None) for t in first for _, _, q in t.outputs)


def test_signed_operand_is_read_once_from_one_pair_and_gives_the_ideal_codes(
    imported, digits, library
):
    """The Add's signed operand (``[W; -W]`` in the model) is programmed once (``C`` pairs,
    half the columns of mapping both halves) and read as one signed offset-binary code per
    output; with every hardware effect off the analog path gives the integer reference's
    codes, both halves, exactly."""
    model = imported.model
    add = next(i for i, lay in enumerate(model.layers) if isinstance(lay, AddLayer))
    src = add - 1
    lay = model.layers[src]
    maps = {m.index: m for m in Engine(model, library, EngineConfig()).maps}
    assert maps[src].signed and not any(m.signed for i, m in maps.items() if i != src)
    assert maps[src].n_out * 2 == lay.out_shape[0]
    both = map_layer(src, lay, library.card)  # the [W; -W] filters as they are
    assert not both.signed and 2 * _columns(maps[src]) == _columns(both)
    x, y = digits.x_test[:N_TEST], digits.y_test[:N_TEST]
    res, codes = evaluate_recording(
        model, library, x, y, EngineConfig(**ALL_OFF, partial_sums="analog")
    )
    pred_ref, codes_ref = reference_codes(model, x)
    assert set(codes) == set(codes_ref)
    for i in codes_ref:
        np.testing.assert_array_equal(codes[i], codes_ref[i], err_msg=f"layer {i}")
    np.testing.assert_array_equal(res.predictions[0], pred_ref)
    # the negative half is not zero everywhere: the signed read gives both signs
    c = lay.out_shape[0] // 2
    assert codes[src][:, c:].any() and codes[src][:, :c].any()


def test_signed_half_needs_an_exact_mirror(imported):
    """A pair whose halves are not exact negatives (a hand-edited file) is mapped as it is,
    both halves programmed."""
    from dataclasses import replace

    model = imported.model
    add = next(i for i, lay in enumerate(model.layers) if isinstance(lay, AddLayer))
    lay = model.layers[add - 1]
    assert signed_half(model, add - 1) is not None
    n_w = np.array(lay.n_w, copy=True)
    n_w[-1].flat[0] += 1
    layers = list(model.layers)
    layers[add - 1] = replace(lay, n_w=n_w)
    assert signed_half(replace(model, layers=tuple(layers)), add - 1) is None
    assert signed_half(model, 0) is None  # not an Add's operand


def test_a_groups_joint_range_errs_less_than_its_largest_tensors_range():
    """The global scheme's residual group range (ptq.shared_act_range) against the rule it
    replaced, the largest of the tensors' own ranges: on a group of a small and a large
    tensor the summed relative error is lower, the large one clipped a little."""
    from cosim.train.ptq import _act_error, shared_act_range
    from cosim.train.scheme import best_act_range

    rng = np.random.default_rng(0)
    small = np.maximum(rng.standard_normal(5000), 0.0)
    large = np.maximum(4.0 * rng.standard_normal(5000), 0.0)
    r_max = max(best_act_range(small, 3), best_act_range(large, 3))
    r = shared_act_range([small, large, np.zeros(10)], 3, [r_max])  # a dead tensor ignored

    def err(rr: float) -> float:
        return float(sum(_act_error(y, 3, np.array([rr]))[0] for y in (small, large)))

    assert err(r) < 0.8 * err(r_max)
    assert r < r_max
    assert shared_act_range([np.zeros(3)], 3) == 0.0


def test_the_group_rule_sets_the_global_grids_gauge(block, digits):
    """``group_rule="max"`` puts a group's largest range on the grid, "joint" the searched
    one; a single tensor's group keeps its own range either way."""
    joint = _import(block, digits, group_rule="joint").report["calibration"]
    old = _import(block, digits, group_rule="max").report["calibration"]
    assert joint["act_ranges"] == old["act_ranges"]
    assert set(old["group_ranges"]) <= set(old["act_ranges"])
    assert len(old["group_ranges"]) == 2  # the residual stage and the middle activation
    assert len(set(joint["group_ranges"]) & set(old["group_ranges"])) == 1
    with pytest.raises(OnnxImportError, match="group_rule"):
        ImportOptions(group_rule="mean")
    # the default, "auto": both built, the one right on more calibration samples kept
    auto = _import(block, digits).report["calibration"]
    accs = auto["group_rule_calibration_accuracy"]
    assert set(accs) == {"joint", "max"}
    assert accs[auto["group_rule"]] == max(accs.values())
    assert auto["group_ranges"] == {"joint": joint, "max": old}[auto["group_rule"]]["group_ranges"]
    # per-layer grids have no shared group range: one model, no choice
    per = _import(block, digits, scheme="per-layer").report["calibration"]
    assert "group_rule_calibration_accuracy" not in per


def test_a_grid_as_fine_as_the_adc_keeps_both_halves(block, digits, library):
    """The signed read needs one ADC bit more than the grid: an A8 model on the card's
    8-bit ADC programs both halves (``2 C`` filters, each read unsigned) and stays exact."""
    assert library.card.adc.bits == 8
    model = _import(block, digits, a_bits=8).model
    maps = Engine(model, library, EngineConfig()).maps
    assert not any(m.signed for m in maps)
    add = next(i for i, lay in enumerate(model.layers) if isinstance(lay, AddLayer))
    assert signed_half(model, add - 1) is not None  # a mirror, mapped whole all the same
    x, y = digits.x_test[:N_TEST], digits.y_test[:N_TEST]
    _, codes = evaluate_recording(
        model, library, x, y, EngineConfig(**ALL_OFF, partial_sums="analog")
    )
    _, codes_ref = reference_codes(model, x)
    for i in codes_ref:
        np.testing.assert_array_equal(codes[i], codes_ref[i], err_msg=f"layer {i}")
