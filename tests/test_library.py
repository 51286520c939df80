"""The surrogate library: round trip, every corruption a clear LibraryError, atomic writes."""

from __future__ import annotations

import gc
import json
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from cosim.card import load_card
from cosim.errors import CosimError, LibraryError
from cosim.library import (
    BlockValidation,
    card_differences,
    load_library,
    validation_to_dict,
    write_library,
)

CARD = load_card()
# tests marked ngspice read the session's quick characterization; the others build a tiny
# library of a hand-made TIA surrogate
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


@pytest.mark.ngspice
def test_load_round_trip_gives_identical_predictions(quick_library, tmp_path):
    lib = load_library(quick_library.path, CARD)
    assert set(lib.surrogates) == set(BLOCKS)
    assert lib.card == CARD and lib.path == quick_library.path
    assert lib.validation == quick_library.report.validation
    assert validation_to_dict(lib.validation) == json.loads(
        (quick_library.path / "validation.json").read_text()
    )
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


@pytest.mark.ngspice
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


@pytest.mark.ngspice
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
            r"arrays\.npz lacks 'sense_row\.surrogate\.thresholds_v' "
            r"\(blocks\.sense_row\.surrogate\.thresholds_v\)",
        ),
        (
            lambda p: _edit_arrays(
                p, lambda a: a["sar_adc.surrogate.bit_weights_v"].__setitem__(0, np.nan)
            ),
            r"array 'sar_adc\.surrogate\.bit_weights_v' \(blocks\.sar_adc\.surrogate\."
            r"bit_weights_v\) in the surrogate library holds NaN",
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


@pytest.mark.ngspice
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
@pytest.mark.ngspice
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


@pytest.mark.ngspice
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


# ------------------------------------------------------- hardening (no SPICE needed)
def _tia():
    from cosim.surrogates.periphery import OpampFit, TiaModel

    return TiaModel(1.0e4, OpampFit(1.0e5, 1.0e-3, 0.05, 1.15, 50.0))


@pytest.fixture
def tiny_lib(tmp_path):
    """A library of one hand-made TIA block, with one array."""
    blocks = {"tia": {"surrogate": _tia(), "extra": {"curve": np.linspace(0.0, 1.0, 5)}}}
    return write_library(tmp_path / "lib", CARD, blocks, {"tia": {"n_heldout": 3}}, {"seed": 0})


def test_tiny_library_round_trip(tiny_lib):
    lib = load_library(tiny_lib, CARD)
    assert lib.block("tia") == _tia()
    np.testing.assert_array_equal(lib.extras["tia"]["curve"], np.linspace(0.0, 1.0, 5))
    assert lib.validation == {"tia": BlockValidation(n_heldout=3)}


def _set(key, value):
    return lambda p: _edit_json(p / "library.json", lambda d: d.__setitem__(key, value))


def _symlink(name, target):
    def corrupt(p):
        (p / name).unlink()
        (p / name).symlink_to(target(p) if callable(target) else target)

    return corrupt


def _replace_with_dir(name):
    def corrupt(p):
        (p / name).unlink()
        (p / name).mkdir()

    return corrupt


def _fifo(name):
    def corrupt(p):
        (p / name).unlink()
        os.mkfifo(p / name)

    return corrupt


def _sparse(name, size):
    def corrupt(p):
        with open(p / name, "r+b") as fh:
            fh.truncate(size)

    return corrupt


def _block(edit):
    return lambda p: _edit_json(p / "library.json", lambda d: edit(d["blocks"]["tia"]))


NAN, INF = float("nan"), float("inf")
_LACKS_ARRAY = r"arrays\.npz lacks %s \(blocks\.tia\.extra\.curve\); the library is incomplete"


def _npz(**arrays):
    def corrupt(p):
        with open(p / "arrays.npz", "wb") as fh:
            np.savez(fh, **arrays)

    return corrupt


@pytest.mark.parametrize(
    ("corrupt", "pattern"),
    [
        (lambda p: (p / "library.json").write_bytes(b"\xff\xfe{}"), r"library\.json is corrupt"),
        (lambda p: (p / "library.json").write_text("[" * 100_000), r"library\.json is corrupt"),
        (lambda p: (p / "validation.json").write_bytes(b'{"a": "\xff"}'), r"validation\.json is"),
        (lambda p: (p / "validation.json").write_text("[1]"), r"validation\.json is corrupt"),
        (_set("arrays_file", "/dev/zero"), r"arrays_file must name a file inside the library"),
        (_set("arrays_file", 5), r"arrays_file must name a file inside .* got 5"),
        (_set("arrays_file", "../arrays.npz"), r"arrays_file must name a file inside"),
        (_set("arrays_file", "."), r"arrays_file must name a file inside"),
        (_set("arrays_file", None), r"arrays_file must name a file inside"),
        (_set("arrays_file", "a\0b"), r"arrays_file must name a file inside"),
        (_set("arrays_file", "missing.npz"), r"missing\.npz does not exist"),
        (_symlink("arrays.npz", "/dev/zero"), r"arrays\.npz is a symbolic link"),
        (_symlink("arrays.npz", lambda p: p.parent / "x.npz"), r"arrays\.npz is a symbolic"),
        (_symlink("library.json", "/dev/zero"), r"library\.json is a symbolic link"),
        (_symlink("validation.json", "/dev/zero"), r"validation\.json is a symbolic link"),
        (_replace_with_dir("arrays.npz"), r"arrays\.npz is a directory, not a file"),
        (_replace_with_dir("library.json"), r"library\.json is a directory, not a file"),
        (_fifo("arrays.npz"), r"arrays\.npz is not a regular file"),
        (_fifo("library.json"), r"library\.json is not a regular file"),
        (_sparse("library.json", 17 * 2**20), r"library\.json is \d+ bytes, more than the"),
        (_sparse("arrays.npz", 5 * 2**30), r"arrays\.npz is \d+ bytes, more than the"),
        (_npz(**{"tia.extra.curve": np.array([None], dtype=object)}), "holds Python objects"),
        (_set("blocks", []), r"'blocks' must map block names to objects"),
        (_set("blocks", {"tia": 5}), r"'blocks' must map block names to objects"),
        (_set("card", 5), r"the card stored in .* is invalid"),
        (_set("card", {"adc": []}), r"the card stored in .* is invalid"),
        (_set("schema_version", [1]), r"has schema version \[1\]"),
        (_block(lambda b: b["extra"].update(curve={"$array": [1]})), _LACKS_ARRAY % r"\[1\]"),
        (_block(lambda b: b["extra"].update(curve={"$array": 5})), _LACKS_ARRAY % "5"),
        (_block(lambda b: b.update(surrogate=[1, 2])), r"'surrogate' must be a table .*not \[1"),
        (_block(lambda b: b.update(surrogate="x")), r"'surrogate' must be a table .*not 'x'"),
        (_block(lambda b: b.pop("surrogate")), r"'surrogate' must be a table .*it is missing"),
        # a block's extra must be a table (the engine looks keys up in it)
        (_block(lambda b: b.update(extra=7)), r"block 'tia' .*'extra' must be a table.*not 7"),
        (_block(lambda b: b.update(extra="x")), r"'extra' must be a table .*not 'x'"),
        (_block(lambda b: b.update(extra=[1])), r"'extra' must be a table .*not \[1\]"),
        (_block(lambda b: b.update(netlist_hashes=5)), r"'netlist_hashes' must be a table"),
        (_block(lambda b: b.update(kind=[1])), r"unknown surrogate kind"),
        (_block(lambda b: b.update(kind="a\nb")), r"block 'tia' .*unknown surrogate kind 'a\\nb'"),
        (_block(lambda b: b.update(kind="subtractor")), r"holds a 'tia' surrogate"),
        (_block(lambda b: b["surrogate"].update(opamp=3)), r"block 'tia' .* cannot be decoded"),
        (_block(lambda b: b["surrogate"].update(r_feedback_ohm=[1.0])), r"block 'tia' .* cannot"),
        # NaN/inf anywhere in a block: corrupt, the message names the field
        (_block(lambda b: b["extra"].update(t=NAN)), r"blocks\.tia\.extra\.t = nan is not a f"),
        (_block(lambda b: b["extra"].update(t={"u": [1, INF]})), r"extra\.t\.u\[1\] = inf is"),
        (_block(lambda b: b["extra"].update(t=-(10**400))), r"extra\.t = -1000.* is beyond any"),
        (_block(lambda b: b["extra"].update(**{"a\nb": NAN})), r"extra\.a\\nb = nan is not"),
        (
            _block(lambda b: b["surrogate"].update(r_feedback_ohm=INF)),
            r"blocks\.tia\.surrogate\.r_feedback_ohm = inf is not a finite number",
        ),
        (
            _block(lambda b: b["surrogate"]["opamp"].update(offset_v=NAN)),
            r"blocks\.tia\.surrogate\.opamp\.offset_v = nan is not a finite number",
        ),
        (
            _npz(**{"tia.extra.curve": np.array([0.0, np.nan])}),
            r"array 'tia\.extra\.curve' \(blocks\.tia\.extra\.curve\) .* holds NaN or inf",
        ),
        (_npz(**{"tia.extra.curve": np.linspace(0, 1, 5) + 1j}), "complex numbers"),
        (_npz(**{"tia.extra.curve": np.array(["1.0", "2.0"])}), "not real numbers"),
        # user text in messages is escaped: one line
        (_set("blocks", {"a\nb": {"kind": "tia"}}), r"block 'a\\nb' .*'surrogate' must be"),
        (_set("schema_version", "1\n2"), r"has schema version '1\\n2'"),
    ],
)
def test_tampered_library_is_a_one_line_library_error(tiny_lib, corrupt, pattern):
    corrupt(tiny_lib)
    if pattern is None:  # harmless: loads
        load_library(tiny_lib)
        return
    with pytest.raises(LibraryError, match=pattern) as exc:
        load_library(tiny_lib)
    assert "\n" not in str(exc.value)


def test_tampered_library_through_the_cli(tiny_lib, tmp_path, capsys):
    from cosim.report.cache import library_digest

    digest = library_digest(tiny_lib)
    _set("arrays_file", "/dev/zero")(tiny_lib)
    with pytest.raises(LibraryError, match="arrays_file must name a file inside"):
        library_digest(tiny_lib)
    _set("arrays_file", "arrays.npz")(tiny_lib)
    assert library_digest(tiny_lib) == digest
    _symlink("arrays.npz", "/dev/zero")(tiny_lib)
    from cosim.cli import main

    out = tmp_path / "rep"
    assert main(["report", "--quick", "--library", str(tiny_lib), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "arrays.npz is a symbolic link" in err and "Traceback" not in err
    assert not out.exists()


def test_a_file_given_as_the_library_is_named_and_never_suggested(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("model.npz").write_bytes(b"PK")
    with pytest.raises(LibraryError) as exc:
        load_library("model.npz")
    msg = str(exc.value)
    assert "model.npz is a file, not a surrogate library" in msg
    assert "`cosim characterize --out cosim-library`" in msg and "--out model.npz" not in msg
    Path("cosim-library").mkdir()  # taken: the suggestion moves on
    with pytest.raises(LibraryError, match=r"--out cosim-library-2`"):
        load_library("model.npz")
    # a foreign directory is not suggested either; a missing or empty one is
    foreign = Path("thesis")
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("x")
    with pytest.raises(LibraryError, match=r"no library\.json\); create one with .*--out cosim-li"):
        load_library(foreign)
    with pytest.raises(LibraryError, match=r"does not exist\); create one with .*--out nowhere`"):
        load_library("nowhere")
    with pytest.raises(LibraryError, match=r"no library\.json\); .*--out cosim-library`"):
        load_library("cosim-library")
    Path("link").symlink_to("nowhere")
    with pytest.raises(LibraryError, match=r"--out cosim-library-2`"):
        load_library("link")
    assert Path("model.npz").read_bytes() == b"PK"


def test_write_library_never_replaces_what_is_not_a_library(tiny_lib, tmp_path, monkeypatch):
    blocks = {"tia": {"surrogate": _tia()}}
    thesis = tmp_path / "thesis"
    (thesis / "sub").mkdir(parents=True)
    (thesis / "thesis.tex").write_text("x")
    (thesis / "sub" / "notes.txt").write_text("y")
    f = tmp_path / "file"
    f.write_text("z")
    link = tmp_path / "link"
    link.symlink_to(tiny_lib)
    for target, pattern in [
        (thesis, "is a non-empty directory that is not a cosim library"),
        (f, "is a file, not a directory"),
        (link, "is a symbolic link"),
        (f / "lib", "is a file, not a directory"),
    ]:
        with pytest.raises(CosimError, match=pattern):
            write_library(target, CARD, blocks, {}, {})
    assert (thesis / "sub" / "notes.txt").read_text() == "y" and f.read_text() == "z"
    assert link.is_symlink()
    (tiny_lib / "notes.txt").write_text("mine")
    with pytest.raises(CosimError, match=r"also holds notes\.txt"):
        write_library(tiny_lib, CARD, blocks, {}, {})
    (tiny_lib / "notes.txt").unlink()
    monkeypatch.chdir(tiny_lib)
    with pytest.raises(CosimError, match="is the current directory"):
        write_library(".", CARD, blocks, {}, {})
    monkeypatch.chdir(tmp_path)
    write_library(tiny_lib, CARD, blocks, {}, {"seed": 7})  # its own library: replaced
    assert load_library(tiny_lib).meta["seed"] == 7
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "lib", "link", "thesis"]


# ------------------------------------------- block structure and paths (no SPICE needed)
def _sar(bits):
    from cosim.surrogates.adc import SarAdcModel

    return SarAdcModel.ideal(bits, CARD.adc.v_ref_v)


@pytest.fixture
def sar_lib(tmp_path):
    """A library of a hand-made SAR ADC block holding its model at every resolution."""
    extra = {
        "conversion_time_s": 1e-7,
        "by_bits": {str(n): _sar(n).to_dict() for n in range(1, CARD.adc.bits + 1)},
        "mc_inl_max_lsb": None,  # "not measured" is null
    }
    blocks = {"sar_adc": {"surrogate": _sar(CARD.adc.bits), "extra": extra}}
    return write_library(tmp_path / "lib", CARD, blocks, {"sar_adc": {"n_heldout": 1}}, {"seed": 0})


def _by_bits(edit):
    return lambda p: _edit_json(
        p / "library.json", lambda d: edit(d["blocks"]["sar_adc"]["extra"]["by_bits"])
    )


def test_sar_library_round_trip(sar_lib):
    lib = load_library(sar_lib, CARD)
    models = lib.adc_models_by_bits()
    assert sorted(models) == list(range(1, CARD.adc.bits + 1))
    for n, model in models.items():
        want = _sar(n).to_dict()
        for key, value in model.to_dict().items():
            np.testing.assert_array_equal(value, want[key])
    assert lib.adc().bits == CARD.adc.bits
    assert lib.extras["sar_adc"]["mc_inl_max_lsb"] is None


@pytest.mark.parametrize(
    ("corrupt", "pattern"),
    [
        # a list where the surrogate takes a number: named before SarAdcModel chokes on it
        (
            _by_bits(lambda t: t["1"].update(shift_v=[-0.14])),
            r"block 'sar_adc' .*: extra\.by_bits\.1\.shift_v must be a number, not an array",
        ),
        (
            _by_bits(lambda t: t["2"].update(bit_weights_v=0.5)),
            r"extra\.by_bits\.2\.bit_weights_v must be an array, not float",
        ),
        (_by_bits(lambda t: t["2"].update(bits="2")), r"by_bits\.2\.bits must be a number, not s"),
        (_by_bits(lambda t: t["3"].update(bits=True)), r"by_bits\.3\.bits must be a number, not b"),
        (_by_bits(lambda t: t["3"].update(v_ref_v=None)), r"by_bits\.3\.v_ref_v must be a .*null"),
        (_by_bits(lambda t: t["3"].update(v_ref_v=NAN)), r"by_bits\.3\.v_ref_v = nan is not a fin"),
        # what only the surrogate's own from_dict sees: a LibraryError naming the block
        (_by_bits(lambda t: t["2"].update(bits=3)), r"block 'sar_adc' .*: extra\.by_bits canno"),
        (_by_bits(lambda t: t["2"].update(bit_weights_v=[1.0])), r"by_bits cannot be decoded"),
        (_by_bits(lambda t: t["2"].update(input_gain=-1.0)), r"by_bits cannot be decoded"),
        (_by_bits(lambda t: t.pop("1")), r"by_bits cannot be decoded .*lacks the 1-bit"),
        (_by_bits(lambda t: t.update({"1": 5})), r"by_bits cannot be decoded"),
        (_by_bits(lambda t: t.update({"x\ny": t["1"]})), r"by_bits cannot be decoded .*x\\ny"),
        (_by_bits(lambda t: t.clear()), r"by_bits cannot be decoded"),
        (
            lambda p: _edit_json(
                p / "library.json", lambda d: d["blocks"]["sar_adc"]["extra"].update(by_bits=[])
            ),
            r"by_bits cannot be decoded",
        ),
        (
            lambda p: _edit_json(
                p / "library.json", lambda d: d["blocks"]["sar_adc"].update(extra=5)
            ),
            r"block 'sar_adc' .*'extra' must be a table .*not 5",
        ),
        (
            lambda p: _edit_json(
                p / "library.json",
                lambda d: d["blocks"]["sar_adc"]["extra"].update(conversion_time_s=NAN),
            ),
            r"blocks\.sar_adc\.extra\.conversion_time_s = nan is not a finite number",
        ),
        (
            lambda p: _edit_json(
                p / "library.json", lambda d: d["blocks"]["sar_adc"].update(kind="tia")
            ),
            r"block 'sar_adc' .*kind is 'tia', but the block 'sar_adc' holds a 'sar_adc'",
        ),
        (
            lambda p: _edit_arrays(
                p,
                lambda a: a.update(
                    {"sar_adc.surrogate.bit_weights_v": a["sar_adc.surrogate.bit_weights_v"] + 1j}
                ),
            ),
            r"complex numbers",
        ),
    ],
)
def test_malformed_sar_block_is_a_one_line_library_error(sar_lib, corrupt, pattern):
    corrupt(sar_lib)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ComplexWarning: refused before any conversion
        with pytest.raises(LibraryError, match=pattern) as exc:
            load_library(sar_lib)
    assert "\n" not in str(exc.value)


def test_join_arrays_refuses_arrays_that_hold_no_real_numbers():
    from cosim.library import join_arrays

    ref = {"w": {"$array": "k"}}
    for bad, pattern in [
        (np.array([1.0 + 1j]), "holds complex numbers, not real numbers"),
        (np.array(["1.0"]), "holds dtype <U3, not real numbers"),
        (np.array([np.inf]), "holds NaN or inf"),
    ]:
        with pytest.raises(LibraryError, match=rf"array 'k' \(blocks\.b\.extra\.w\) .*{pattern}"):
            join_arrays(ref, {"k": bad}, ("blocks", "b", "extra"))
    for good in (np.array([True]), np.array([3], dtype=np.uint8), np.zeros((2, 2))):
        assert join_arrays(ref, {"k": good}, ("x",))["w"] is good


def test_validation_json_is_read_as_it_is(tiny_lib):
    """validation.json is the characterization's report, never an engine input: a metric
    that was not measured (null) or came out NaN does not make the library corrupt."""
    (tiny_lib / "validation.json").write_text(
        '{"tia": {"n_heldout": 3, "rms_error_lsb": NaN, "max_error_lsb": null, "n": 3}}'
    )
    lib = load_library(tiny_lib)
    v = lib.validation["tia"]
    assert v.max_error_lsb is None and np.isnan(v.rms_error_lsb) and v.extras == {"n": 3}


@pytest.mark.parametrize(
    ("name", "pattern"),
    [
        ("a\0b", r"a\\x00b is not a surrogate library: the path holds a NUL byte"),
        ("x" * 300, r"cannot read the surrogate library .*x{300} \(File name too long\)"),
        ("new\nline", r"new\\nline is not a surrogate library \(it does not exist\)"),
    ],
    ids=["nul", "name-too-long", "newline"],
)
def test_a_library_path_that_names_no_file_is_one_line(tmp_path, name, pattern):
    with pytest.raises(LibraryError, match=pattern) as exc:
        load_library(tmp_path / name)
    assert "\n" not in str(exc.value) and str(tmp_path) in str(exc.value)


# ------------------------------------------------------------ typed validation records
#: one block's validation as a characterization writes it: headline metrics in the middle,
#: a null, a NaN, nested tables and lists (the order must survive the round trip)
_VALIDATION = {
    "tia": {
        "n_heldout": 40,
        "n_linear": 31,
        "rms_error_lsb": 0.031,
        "max_error_lsb": 0.12,
        "clip_max_error_lsb": None,
        "monte_carlo": {"instances": 3, "offset_std_lsb": float("nan")},
    },
    "sar_adc": {"n_heldout": 512, "code_agreement": 0.998, "by_bits": {"8": [1, 2]}},
    "sense_row": {
        "bound_violations": 0,
        "n_heldout": 12,
        "mean_skipped_bits_heldout": 1.5,
        "thresholds_v": [0.5, 0.25],
    },
}


def test_block_validation_round_trip():
    for name, d in _VALIDATION.items():
        r = BlockValidation.from_dict(d)
        assert list(r.to_dict()) == list(d), name  # the same keys in the same order
        assert json.dumps(r.to_dict()) == json.dumps(d), name  # the same values
        assert BlockValidation.from_dict(r.to_dict()) == r
    r = BlockValidation.from_dict(_VALIDATION["tia"])
    assert (r.n_heldout, r.rms_error_lsb, r.max_error_lsb) == (40, 0.031, 0.12)
    assert r.code_agreement is None and r.bound_violations is None
    assert r.extras["n_linear"] == 31 and "rms_error_lsb" not in r.extras
    with pytest.raises(TypeError):
        r.extras["n_linear"] = 0  # read-only
    # built in code: the headline fields first, unset ones left out
    built = BlockValidation(n_heldout=5, code_agreement=1.0, extras={"x": [1]})
    assert built.to_dict() == {"n_heldout": 5, "code_agreement": 1.0, "x": [1]}
    assert list(built.to_dict()) == ["n_heldout", "code_agreement", "x"]


def test_validation_json_and_summary_are_written_as_the_characterization_reported(tmp_path):
    """validation.json is byte for byte ``dumps_json`` of the blocks' validation dicts, and
    library.json's summary keeps their scalar figures, as before the typed records."""
    from cosim.fileio import dumps_json

    blocks = {"tia": {"surrogate": _tia()}}
    path = write_library(tmp_path / "lib", CARD, blocks, _VALIDATION, {"seed": 0})
    assert (path / "validation.json").read_text() == dumps_json(_VALIDATION)
    summary = json.loads((path / "library.json").read_text())["validation_summary"]
    assert list(summary["tia"]) == ["n_heldout", "n_linear", "rms_error_lsb", "max_error_lsb",
                                    "clip_max_error_lsb"]  # fmt: skip
    assert list(summary["sense_row"]) == ["bound_violations", "n_heldout",
                                          "mean_skipped_bits_heldout"]  # fmt: skip
    lib = load_library(path, CARD)
    assert lib.validation["sar_adc"].code_agreement == 0.998
    # what was loaded writes the same file again
    again = write_library(tmp_path / "again", CARD, blocks, lib.validation, {"seed": 0})
    assert (again / "validation.json").read_bytes() == (path / "validation.json").read_bytes()


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("[1, 2]", r"validation\.json is corrupt \(not a JSON object\)"),
        ('{"tia": 3}', r"validation\.json: block 'tia' must be a JSON object, not 3"),
        ('{"tia": {"rms_error_lsb": 0.1}}', r"validation\.json: block 'tia' lacks 'n_heldout'"),
        ('{"tia": {"n_heldout": "40"}}', r"block 'tia': n_heldout must be a count .*'40'"),
        ('{"tia": {"n_heldout": -1}}', r"block 'tia': n_heldout must be a count"),
        ('{"tia": {"n_heldout": true}}', r"block 'tia': n_heldout must be a count"),
        ('{"tia": {"n_heldout": 4, "max_error_lsb": "0.1"}}', r"max_error_lsb must be a number"),
        ('{"x": {"n_heldout": 4, "bound_violations": 0.5}}', r"block 'x': bound_violations must"),
        ('{"x": {"n_heldout": 4, "code_agreement": [1]}}', r"code_agreement must be a number"),
    ],
)
def test_malformed_validation_json_is_a_library_error_naming_file_and_key(tiny_lib, text, pattern):
    (tiny_lib / "validation.json").write_text(text)
    with pytest.raises(LibraryError, match=pattern) as exc:
        load_library(tiny_lib)
    assert str(tiny_lib / "validation.json") in str(exc.value) and "\n" not in str(exc.value)
