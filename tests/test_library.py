"""The surrogate library: round trip, every corruption a clear LibraryError, atomic writes."""

from __future__ import annotations

import gc
import json
import shutil
import warnings

import numpy as np
import pytest

from cosim.card import load_card
from cosim.errors import LibraryError
from cosim.library import card_differences, load_library, write_library

CARD = load_card()
pytestmark = pytest.mark.ngspice  # every test here reads the session's quick characterization
BLOCKS = ("crossbar", "tia", "subtractor", "sar_adc", "sense_row")


@pytest.fixture
def lib_copy(quick_library, tmp_path):
    """A private copy of the session's library, free to corrupt."""
    dst = tmp_path / "lib"
    shutil.copytree(quick_library.path, dst)
    return dst


def _edit_json(path, edit):
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))


def _edit_arrays(lib, edit):
    with np.load(lib / "arrays.npz") as z:
        arrays = {k: z[k] for k in z.files}
    edit(arrays)
    with open(lib / "arrays.npz", "wb") as fh:
        np.savez(fh, **arrays)


def _probe_outputs(lib):
    """Every block's predictions on fixed inputs (what the engine would compute)."""
    rng = np.random.default_rng(0)
    rows, cols = CARD.array.rows, CARD.array.cols
    g = rng.uniform(CARD.device.g_min_s, CARD.device.g_max_s, (rows, cols + 1))
    v = rng.uniform(0, CARD.dac.v_read_v, (5, rows))
    xb = lib.block("crossbar")
    i = xb.column_currents(g, v, sense_first=True)
    m, g_n = xb.transfer(g, sense_first=True)
    vt = lib.block("tia").predict(i[:, :cols], g_n[:cols])
    vs = lib.block("subtractor").predict(vt[:, 0::2], vt[:, 1::2])
    sense = lib.block("sense_row")
    v_sense = sense.tia.predict(i[:, cols], g_n[cols])
    adc = lib.block("sar_adc")
    x = np.linspace(-0.05, 1.05, 301) * CARD.adc.v_ref_v
    return [
        i,
        m,
        g_n,
        vt,
        vs,
        v_sense,
        sense.skip_bits(v_sense),
        sense.bound(v_sense),
        adc.convert(x),
    ]


def test_load_round_trip_gives_identical_predictions(quick_library, tmp_path):
    lib = load_library(quick_library.path, CARD)
    assert set(lib.surrogates) == set(BLOCKS)
    assert lib.card == CARD and lib.path == quick_library.path
    assert lib.validation == json.loads(json.dumps(quick_library.report.validation))
    assert lib.meta["schema_version"] == 1 and "blocks" not in lib.meta
    assert "vsense_curve" in lib.extras["sense_row"]
    # write what was loaded, load it again: the same surrogates, bit for bit
    blocks = {n: {"surrogate": s, "extra": lib.extras[n]} for n, s in lib.surrogates.items()}
    again_path = write_library(tmp_path / "again", lib.card, blocks, lib.validation, {"seed": 0})
    again = load_library(again_path, CARD)
    for a, b in zip(_probe_outputs(lib), _probe_outputs(again), strict=True):
        np.testing.assert_array_equal(a, b)
    for name in BLOCKS:
        da, db = lib.block(name).to_dict(), again.block(name).to_dict()
        assert json.dumps(da, default=np.ndarray.tolist) == json.dumps(
            db, default=np.ndarray.tolist
        )
    # the same physics under another card name is accepted
    assert load_library(quick_library.path, CARD.with_updates({}, name="renamed")).card == CARD


def test_missing_block_is_named(quick_library):
    lib = load_library(quick_library.path)
    with pytest.raises(LibraryError, match=r"has no 'adc2' block \(it has: crossbar, sar_adc"):
        lib.block("adc2")


def test_not_a_library(tmp_path):
    with pytest.raises(
        LibraryError,
        match=r"is not a surrogate library \(no library\.json\); create one with `cosim charac",
    ):
        load_library(tmp_path)


@pytest.mark.parametrize(
    ("corrupt", "pattern"),
    [
        (
            lambda p: (p / "library.json").write_text('{"schema_version": 1, "card"'),
            r"library\.json is corrupt",
        ),
        (
            lambda p: (p / "library.json").write_bytes(b"\xff\xfe\x00garbage"),
            r"library\.json is corrupt",
        ),
        (lambda p: (p / "library.json").write_text("[1, 2]"), "no schema_version"),
        (
            lambda p: _edit_json(p / "library.json", lambda d: d.update(schema_version=2)),
            r"has schema version 2, this cosim reads version 1; re-run cosim characterize",
        ),
        (lambda p: _edit_json(p / "library.json", lambda d: d.pop("blocks")), r"lacks 'blocks'"),
        (
            lambda p: _edit_json(p / "library.json", lambda d: d["card"]["adc"].update(bits=9)),
            r"the card stored in .* is invalid: adc\.bits = 9",
        ),
        (
            lambda p: _edit_json(p / "library.json", lambda d: d["card"]["adc"].update(bits=7)),
            "does not match its hash",
        ),
        (
            lambda p: _edit_arrays(p, lambda a: a.pop("sense_row.surrogate.thresholds_v")),
            r"arrays\.npz lacks 'sense_row\.surrogate\.thresholds_v' \(sense_row\)",
        ),
        (
            lambda p: _edit_arrays(
                p, lambda a: a["sar_adc.surrogate.bit_weights_v"].__setitem__(0, np.nan)
            ),
            r"array 'sar_adc\.surrogate\.bit_weights_v' in the surrogate library holds NaN",
        ),
        (lambda p: (p / "arrays.npz").unlink(), r"cannot read .*arrays\.npz"),
        (lambda p: (p / "arrays.npz").write_bytes(b"not a zip"), r"cannot read .*arrays\.npz"),
        (
            lambda p: _edit_json(
                p / "library.json",
                lambda d: d["blocks"]["sense_row"]["surrogate"].update(adc_bits="x"),
            ),
            r"block 'sense_row' of .* cannot be decoded \(ValueError",
        ),
        (
            lambda p: _edit_json(
                p / "library.json", lambda d: d["blocks"]["tia"]["surrogate"].pop("r_feedback_ohm")
            ),
            r"the TIA surrogate in the surrogate library lacks 'r_feedback_ohm'",
        ),
        (
            lambda p: _edit_json(
                p / "library.json",
                lambda d: d["blocks"]["tia"]["surrogate"].update(r_feedback_ohm="big"),
            ),
            r"tia\.r_feedback_ohm in the surrogate library is not numeric",
        ),
        (
            lambda p: _edit_json(
                p / "library.json", lambda d: d["blocks"]["tia"].update(kind="opamp")
            ),
            r"unknown surrogate kind 'opamp'",
        ),
        (
            lambda p: _edit_arrays(
                p, lambda a: a.__setitem__("sense_row.surrogate.thresholds_v", np.array([0.1, 0.2]))
            ),
            r"sense_row\.thresholds_v must be non-increasing",
        ),
        (lambda p: (p / "validation.json").write_text("{oops"), r"validation\.json is corrupt"),
    ],
)
def test_corruption_is_a_clear_library_error(lib_copy, corrupt, pattern):
    corrupt(lib_copy)
    with pytest.raises(LibraryError, match=pattern):
        load_library(lib_copy)


def test_truncated_arrays_file_is_a_library_error(lib_copy):
    data = (lib_copy / "arrays.npz").read_bytes()
    (lib_copy / "arrays.npz").write_bytes(data[: len(data) // 2])
    got = None
    # np.load leaks its file handle when it raises; keep that ResourceWarning inside here
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            load_library(lib_copy)
        except Exception as exc:  # which exception is the point of the test
            got = type(exc)
        gc.collect()
    assert got is LibraryError


@pytest.mark.parametrize(
    ("updates", "key"),
    [
        ({"array": {"r_wire_wl_ohm": 2.0}}, "array.r_wire_wl_ohm (2.0 vs 1.0)"),
        ({"adc": {"bits": 7}, "sense_row": {"max_skip_bits": 5}}, "adc.bits (7 vs 8)"),
        ({"device": {"technology": "rram"}}, "device.technology ('rram' vs 'pcm')"),
    ],
)
def test_library_refuses_another_card(quick_library, updates, key):
    other = CARD.with_updates(updates, name="my chip")
    with pytest.raises(LibraryError) as exc:
        load_library(quick_library.path, other)
    msg = str(exc.value)
    assert (
        "was characterized for card 'default-pcm-64x64', which differs from card 'my chip'" in msg
    )
    assert key in msg
    assert "cosim characterize --card" in msg
    assert key in ", ".join(card_differences(other, CARD))


class _Broken:
    kind = "tia"

    def to_dict(self):
        raise RuntimeError("cannot serialize")


def _entries(d):
    return sorted(p.name for p in d.iterdir())


def test_write_is_atomic(quick_library, tmp_path):
    lib = load_library(quick_library.path)
    target = tmp_path / "lib"
    blocks = {n: {"surrogate": s} for n, s in lib.surrogates.items()}
    write_library(target, lib.card, blocks, lib.validation, {"seed": 0})
    snapshot = {p.name: p.read_bytes() for p in target.iterdir()}
    assert set(snapshot) == {"library.json", "arrays.npz", "validation.json"}

    # a surrogate that fails to serialize
    with pytest.raises(RuntimeError, match="cannot serialize"):
        write_library(target, lib.card, {**blocks, "tia": {"surrogate": _Broken()}}, {}, {})
    # a failure while the new directory is being written (an extra that is not JSON)
    bad = {**blocks, "tia": {"surrogate": lib.block("tia"), "extra": {"x": object()}}}
    with pytest.raises(TypeError, match="cannot write object as JSON"):
        write_library(target, lib.card, bad, {}, {})
    # the previous library is intact, and nothing was left beside it
    assert {p.name: p.read_bytes() for p in target.iterdir()} == snapshot
    assert _entries(tmp_path) == ["lib"]
    assert load_library(target, CARD).meta["seed"] == 0

    # a successful write replaces it whole, and leaves no old copy behind
    write_library(target, lib.card, {"tia": blocks["tia"]}, {}, {"seed": 5})
    again = load_library(target)
    assert set(again.surrogates) == {"tia"} and again.meta["seed"] == 5
    assert _entries(target) == ["arrays.npz", "library.json", "validation.json"]
    assert _entries(tmp_path) == ["lib"]
    # a failing first write leaves nothing at all
    with pytest.raises(RuntimeError):
        write_library(tmp_path / "new", lib.card, {"tia": {"surrogate": _Broken()}}, {}, {})
    assert _entries(tmp_path) == ["lib"]
