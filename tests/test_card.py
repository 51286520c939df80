"""The hardware card: defaults, every validation error names its key, TOML round trip, CLI."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cosim.card import (
    CARD_SCHEMA,
    MAX_CARD_BYTES,
    Card,
    default_card_text,
    describe_fields,
    load_card,
    parse_card,
)
from cosim.cli import main
from cosim.errors import CardError, LibraryError
from cosim.library import load_library

DEFAULT = load_card()


def _edited(section: str, key: str, value: str) -> str:
    """The default card's TOML with ``section.key`` set to the literal TOML ``value``."""
    text = default_card_text()
    head = f"[{section}]"
    start = text.index(head)
    pat = re.compile(rf"^{re.escape(key)}\s*=.*$", re.M)
    m = pat.search(text, start)
    assert m is not None, f"{section}.{key} not in the default card"
    return text[: m.start()] + f"{key} = {value}" + text[m.end() :]


def test_default_card_is_the_realistic_one_the_issue_asks_for():
    c = DEFAULT
    assert c.name == "default-pcm-64x64"
    assert c.device.technology == "pcm" and c.device.level_bits == 4
    assert c.device.g_max_s == pytest.approx(25e-6)
    assert c.dac.v_read_v == pytest.approx(0.2)
    assert c.array.r_wire_wl_ohm >= 1.0 and c.array.r_wire_bl_ohm >= 1.0
    assert (c.array.rows, c.array.cols) == (64, 64)
    assert c.opamp.dc_gain_v_per_v < 1e9 and c.opamp.v_supply_pos_v < 10
    assert c.adc.bits == 8 and c.adc.comparator_offset_v != 0
    assert c.adc.cap_mismatch_sigma_rel > 0
    # derived quantities: 1 V / 256 at the ADC, 20 uA / 256 at the TIA input
    assert c.adc_lsb_v == pytest.approx(1.0 / 256, rel=1e-15)
    assert c.i_full_scale_a == pytest.approx(20e-6, rel=1e-15)
    assert c.i_lsb_a == pytest.approx(20e-6 / 256, rel=1e-15)
    assert c.data_rows == 62
    assert load_card(None) == c


def test_every_field_is_described_with_its_range():
    desc = dict(describe_fields())
    assert "adc.bits" in desc and "[1, 8]" in desc["adc.bits"]
    assert "device.g_max_s" in desc and desc["device.g_max_s"].endswith("(0, 0.001]")
    assert "sense_row.enabled" in desc and "true or false" in desc["sense_row.enabled"]
    assert "device.technology" in desc and "pcm" in desc["device.technology"]
    assert len(desc) == sum(
        len(getattr(DEFAULT, s).to_dict()) for s in DEFAULT.to_dict() if s != "card"
    )


@pytest.mark.parametrize(
    ("section", "key", "value", "pattern"),
    [
        # wrong type
        ("adc", "bits", '"eight"', r"adc\.bits must be a number"),
        ("adc", "bits", "8.5", r"adc\.bits must be an integer"),
        ("adc", "bits", "true", r"adc\.bits must be a number"),
        ("sense_row", "enabled", "1", r"sense_row\.enabled must be true or false"),
        ("device", "technology", '"memristor"', r"device\.technology = 'memristor' is not allowed"),
        ("device", "technology", "3", r"device\.technology = 3 is not allowed"),
        ("adc", "architecture", '"pipe"', r"^bad\.toml: adc\.architecture = 'pipe' is not al"),
        ("adc", "architecture", "1", r"adc\.architecture = 1 is not allowed; use one of \('fla"),
        ("array", "r_wire_wl_ohm", "nan", r"array\.r_wire_wl_ohm must be finite"),
        ("array", "r_wire_wl_ohm", "inf", r"array\.r_wire_wl_ohm must be finite"),
        ("device", "g_max_s", '"25u"', r"device\.g_max_s must be a number"),
        # out of range, both ends, and an open lower bound
        ("adc", "bits", "9", r"adc\.bits = 9 is out of range \[1, 8\]"),
        ("adc", "bits", "0", r"adc\.bits = 0 is out of range \[1, 8\]"),
        ("array", "rows", "1", r"array\.rows = 1 is out of range \[2, 1024\]"),
        ("array", "r_wire_bl_ohm", "-1.0", r"array\.r_wire_bl_ohm = -1\.0 is out of range"),
        ("dac", "v_read_v", "0.0", r"dac\.v_read_v = 0\.0 is out of range \(0, 2\]"),
        ("tia", "t_read_s", "0.0", r"tia\.t_read_s = 0\.0 is out of range \(0, 0\.001\]"),
        ("device", "g_max_s", "2e-3", r"device\.g_max_s = 0\.002 is out of range"),
        ("opamp", "v_supply_neg_v", "0.5", r"opamp\.v_supply_neg_v = 0\.5 is out of range"),
        # cross-field checks
        ("device", "g_min_s", "25e-6", r"device\.g_min_s = 2\.5e-05 must be below device\.g_max_s"),
        ("device", "stuck_on_rate", "0.5", r"device\.stuck_on_rate \+ device\.stuck_off_rate"),
        ("array", "bias_rows", "16", None),  # fine at 64 rows: the control case
        ("opamp", "swing_margin_v", "1.2", r"opamp\.swing_margin_v leaves no output swing"),
        ("adc", "v_ref_v", "1.2", r"adc\.v_ref_v = 1\.2 V exceeds the op-amp's output swing"),
        ("sense_row", "max_skip_bits", "7", None),  # 7 < 8 bits: allowed
        ("adc", "bits", "6", r"sense_row\.max_skip_bits = 6 must be below adc\.bits = 6"),
    ],
)
def test_bad_values_name_the_key(section, key, value, pattern):
    text = _edited(section, key, value)
    if pattern is None:
        assert str(getattr(getattr(parse_card(text), section), key)) == value
        return
    with pytest.raises(CardError, match=pattern):
        parse_card(text, "bad.toml")


def test_bias_rows_must_leave_data_rows():
    with pytest.raises(CardError, match=r"array\.bias_rows must be smaller than array\.rows"):
        DEFAULT.with_updates({"array": {"rows": 4, "bias_rows": 4}})


def test_unknown_key_names_it_and_lists_the_known_ones():
    text = default_card_text().replace("bits = 8\nv_ref_v", "bitz = 8\nv_ref_v")
    assert "bitz" in text
    with pytest.raises(CardError) as exc:
        parse_card(text, "my.toml")
    msg = str(exc.value)
    assert msg.startswith("my.toml: unknown key adc.bitz")
    assert "known keys of [adc]" in msg and "bits" in msg


def test_unknown_and_missing_tables_and_keys():
    with pytest.raises(CardError, match=r"unknown table \[adcc\]"):
        parse_card(default_card_text().replace("[adc]", "[adcc]"))
    d = DEFAULT.to_dict()
    del d["tia"]
    with pytest.raises(CardError, match=r"missing table \[tia\]"):
        Card.from_dict(d)
    d = DEFAULT.to_dict()
    del d["opamp"]["gbw_hz"]
    with pytest.raises(CardError, match=r"missing key opamp\.gbw_hz"):
        Card.from_dict(d)
    d = DEFAULT.to_dict()
    d["card"]["owner"] = "me"
    with pytest.raises(CardError, match=r"unknown key card\.owner"):
        Card.from_dict(d)
    d = DEFAULT.to_dict()
    d["dac"] = 3
    with pytest.raises(CardError, match=r"\[dac\] must be a table"):
        Card.from_dict(d)
    d = DEFAULT.to_dict()
    d["card"]["name"] = ""
    with pytest.raises(CardError, match=r"card\.name must be a non-empty string"):
        Card.from_dict(d)


@pytest.mark.parametrize("schema", ["2", "0", '"1"'])
def test_wrong_card_schema(schema):
    text = default_card_text().replace(f"schema = {CARD_SCHEMA}", f"schema = {schema}")
    with pytest.raises(
        CardError, match=rf"card\.schema = .* but this cosim reads schema {CARD_SCHEMA}"
    ):
        parse_card(text)


def test_not_toml():
    with pytest.raises(CardError, match=r"^x\.toml is not valid TOML"):
        parse_card("[adc\nbits = 8", "x.toml")


def test_toml_round_trip_and_hashes():
    text = DEFAULT.to_toml()
    again = parse_card(text)
    assert again == DEFAULT
    assert again.to_toml() == text
    assert again.hash() == DEFAULT.hash()
    # every field, including floats that need all 17 digits, survives
    odd = DEFAULT.with_updates(
        {"array": {"r_wire_wl_ohm": 0.1 + 0.2}, "device": {"g_min_s": 1.0 / 3.0 * 1e-6}},
        name="odd card",
    )
    back = parse_card(odd.to_toml())
    assert back == odd
    assert back.array.r_wire_wl_ohm == 0.1 + 0.2  # exact, not approx
    # the name is part of hash() but not physics_hash()
    renamed = DEFAULT.with_updates({}, name="another name")
    assert renamed.hash() != DEFAULT.hash()
    assert renamed.physics_hash() == DEFAULT.physics_hash()
    assert odd.physics_hash() != DEFAULT.physics_hash()
    assert Card.from_dict(DEFAULT.to_dict()) == DEFAULT


#: The physics hashes of the shipped cards before ``adc.architecture`` existed (cosim
#: d7d0de5: ``load_card(path).physics_hash()``), when cards still set ``array.c_wire_f``
#: (2e-16 F in both; removed since: nothing read it). Libraries made then store them; the
#: new key, at the value those cards meant, and the removed one must not break them.
HASHES_BEFORE_ARCHITECTURE = {
    None: "355ef3f643869518fb147144aac7a9e65ba5ae3dcc4e596550a78ca5749be9ad",
    "pcm-8bit-levels.toml": "af0e3ee7ddb7c3b44d5547c48ebb3bfdd71ca78a42366daefc5c229a86f7ae8d",
}
C_WIRE_F_BEFORE = 2e-16


@pytest.mark.parametrize("name", sorted(HASHES_BEFORE_ARCHITECTURE, key=str))
def test_adc_architecture_keeps_the_hashes_of_earlier_cards(name):
    path = None if name is None else Path(__file__).parent.parent / "examples" / "cards" / name
    card = load_card(path)
    assert card.adc.architecture == "sar"
    # the card as a library stored it then: with array.c_wire_f, hashed with it
    stored = card.to_dict()
    stored["array"]["c_wire_f"] = C_WIRE_F_BEFORE
    back, stored_hash = Card.from_stored(stored)
    assert back == card and stored_hash == HASHES_BEFORE_ARCHITECTURE[name]
    # the same card written without the key (as every card before it was) is the same card
    text = (default_card_text() if path is None else path.read_text()).replace(
        '[adc]\narchitecture = "sar"', "[adc]", 1
    )
    assert "architecture" not in text.split("[adc]")[1].split("[")[0]
    assert parse_card(text) == card


def test_a_card_file_that_sets_the_removed_c_wire_f_is_refused():
    """``array.c_wire_f`` was documented "for read energy" but nothing read it: a card file
    that still sets it gets the usual unknown-key error, so nobody tunes a value that does
    nothing."""
    text = default_card_text().replace("[array]\n", "[array]\nc_wire_f = 2e-16\n", 1)
    with pytest.raises(CardError, match=r"unknown key array\.c_wire_f in hardware card"):
        parse_card(text)


def test_a_library_stored_with_the_removed_c_wire_f_still_loads(committed_library, tmp_path):
    """A library characterized while cards had ``array.c_wire_f`` stores it in its card and
    in the card's hash: it loads, for the default card, as before."""
    lib = tmp_path / "lib"
    shutil.copytree(committed_library.path, lib)
    doc = json.loads((lib / "library.json").read_text())
    doc["card"]["array"]["c_wire_f"] = C_WIRE_F_BEFORE
    doc["card_hash"] = HASHES_BEFORE_ARCHITECTURE[None]
    (lib / "library.json").write_text(json.dumps(doc))
    assert load_library(lib, card=DEFAULT).card == DEFAULT
    # the hash still guards the stored content: another c_wire_f is a corrupt file
    doc["card"]["array"]["c_wire_f"] = 3e-16
    (lib / "library.json").write_text(json.dumps(doc))
    with pytest.raises(LibraryError, match="does not match its hash"):
        load_library(lib)


def test_toml_round_trip_with_a_quote_in_the_name():
    card = DEFAULT.with_updates({}, name='chip "B" \\ rev2')
    assert parse_card(card.to_toml()) == card


def test_with_updates_validates_like_a_file():
    c = DEFAULT.with_updates({"array": {"rows": 128, "cols": 32}})
    assert (c.array.rows, c.array.cols) == (128, 32)
    assert c.adc == DEFAULT.adc and c.name == DEFAULT.name
    assert DEFAULT.array.rows == 64  # frozen: the original is untouched
    with pytest.raises(CardError, match=r"unknown key adc\.bitz in card update"):
        DEFAULT.with_updates({"adc": {"bitz": 4}})
    with pytest.raises(CardError, match=r"unknown table \[adcc\] in card update"):
        DEFAULT.with_updates({"adcc": {"bits": 4}})
    with pytest.raises(CardError, match=r"unknown table \[card\]"):
        DEFAULT.with_updates({"card": {"name": "x"}})
    with pytest.raises(CardError, match=r"adc\.bits = 12 is out of range"):
        DEFAULT.with_updates({"adc": {"bits": 12}})
    with pytest.raises(
        CardError, match=r"sense_row\.max_skip_bits = 6 must be below adc\.bits = 4"
    ):
        DEFAULT.with_updates({"adc": {"bits": 4}})
    ok = DEFAULT.with_updates({"adc": {"bits": 4}, "sense_row": {"max_skip_bits": 3}})
    assert ok.adc.bits == 4 and ok.i_lsb_a == pytest.approx(20e-6 / 16, rel=1e-15)
    with pytest.raises(Exception, match="cannot assign"):
        ok.adc.bits = 5  # type: ignore[misc]


def test_load_card_from_file_and_missing_path(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text(DEFAULT.with_updates({"adc": {"bits": 7}}).to_toml())
    assert load_card(p).adc.bits == 7
    missing = tmp_path / "nope.toml"
    with pytest.raises(CardError, match=rf"hardware card {re.escape(str(missing))} does not exist"):
        load_card(missing)
    with pytest.raises(CardError, match="is a directory, not a card file"):
        load_card(tmp_path)  # a directory is not a card
    bad = tmp_path / "bad.toml"
    bad.write_text(_edited("adc", "bits", "9"))
    with pytest.raises(CardError, match=rf"^{re.escape(str(bad))}: adc\.bits = 9"):
        load_card(bad)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (default_card_text().replace("bits = 8\nv_ref_v", "bitz = 8\nv_ref_v"), "adc.bitz"),
        (_edited("array", "r_wire_wl_ohm", "-2.0"), "array.r_wire_wl_ohm"),
    ],
)
def test_cli_reports_a_bad_card_in_one_line_and_exits_2(tmp_path, capsys, text, needle):
    bad = tmp_path / "bad.toml"
    bad.write_text(text)
    code = main(["characterize", "--card", str(bad), "--out", str(tmp_path / "lib")])
    _, err = capsys.readouterr()
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("cosim characterize: error: ")
    assert needle in lines[0] and str(bad) in lines[0]
    assert "Traceback" not in err
    assert not (tmp_path / "lib").exists()


def test_cli_reports_a_missing_card(tmp_path, capsys):
    code = main(["characterize", "--card", str(tmp_path / "none.toml")])
    _, err = capsys.readouterr()
    assert code == 2 and "does not exist" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "path",
    sorted((Path(__file__).parent.parent / "examples" / "cards").glob("*.toml")),
    ids=lambda p: p.name,
)
def test_example_cards_load(path):
    """Every card shipped under examples/cards/ stays valid as the card grows new keys."""
    card = load_card(path)
    assert card.name and card.physics_hash()


# ------------------------------------------------------------------ what the file is
def _one_line_card_error(capsys, card: Path | str, tmp_path: Path) -> str:
    """Run ``cosim characterize --card CARD`` and return its one error line."""
    code = main(["characterize", "--card", str(card), "--out", str(tmp_path / "lib")])
    _, err = capsys.readouterr()
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cosim characterize: error: "), err
    assert "Traceback" not in err
    assert not (tmp_path / "lib").exists()
    return lines[0]


@pytest.mark.parametrize(
    "raw",
    [
        b"\xff\xfe[card]\n",  # UTF-16 byte-order mark
        default_card_text().replace('name = "', 'name = "\xe9', 1).encode("latin-1"),  # Latin-1 é
        default_card_text().encode("utf-8")[:-20] + b"\x80\n",  # a stray continuation byte
    ],
    ids=["utf16-bom", "latin1", "stray-byte"],
)
def test_card_that_is_not_utf8_is_one_card_error(tmp_path, capsys, raw):
    bad = tmp_path / "bad.toml"
    bad.write_bytes(raw)
    with pytest.raises(CardError, match=rf"^hardware card {re.escape(str(bad))} is not UTF-8 text"):
        load_card(bad)
    line = _one_line_card_error(capsys, bad, tmp_path)
    assert str(bad) in line and "not UTF-8" in line


def test_card_with_a_utf8_byte_order_mark_loads(tmp_path):
    p = tmp_path / "bom.toml"
    p.write_bytes(b"\xef\xbb\xbf" + default_card_text().encode("utf-8"))
    assert load_card(p) == DEFAULT


def test_card_that_is_a_directory_says_so(tmp_path, capsys):
    (tmp_path / "cards").mkdir()
    line = _one_line_card_error(capsys, tmp_path / "cards", tmp_path)
    assert "is a directory, not a card file" in line and "does not exist" not in line


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX FIFOs")
def test_card_that_is_a_fifo_is_refused_without_reading_it(tmp_path, capsys):
    fifo = tmp_path / "card.fifo"
    os.mkfifo(fifo)  # opening it for reading would block until a writer came
    with pytest.raises(CardError, match="is not a regular file"):
        load_card(fifo)
    assert "not a regular file" in _one_line_card_error(capsys, fifo, tmp_path)


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_card_that_is_a_device_is_refused_without_reading_it(tmp_path, capsys):
    with pytest.raises(CardError, match="/dev/zero is not a regular file"):
        load_card("/dev/zero")  # an endless stream: reading it would never finish
    assert "not a regular file" in _one_line_card_error(capsys, "/dev/zero", tmp_path)


def test_card_file_larger_than_the_bound_is_refused(tmp_path):
    big = tmp_path / "big.toml"
    big.write_bytes(b"# " + b"x" * MAX_CARD_BYTES + b"\n" + default_card_text().encode())
    with pytest.raises(CardError, match=r"big\.toml is larger than 1024 KiB"):
        load_card(big)
    ok = tmp_path / "ok.toml"  # comments up to the bound are fine
    ok.write_bytes(b"# padding\n" * 1000 + default_card_text().encode())
    assert load_card(ok) == DEFAULT


@pytest.mark.skipif(sys.platform == "darwin", reason="macOS file systems refuse non-UTF-8 names")
def test_card_path_that_is_not_utf8(tmp_path):
    name = os.fsdecode(b"card-\xff.toml")  # how Python spells an undecodable file name
    with pytest.raises(CardError, match="does not exist"):
        load_card(tmp_path / name)
    # a real process: its stderr escapes the undecodable byte (capsys would not)
    proc = subprocess.run(
        [sys.executable, "-m", "cosim", "characterize", "--card",
         os.fsencode(tmp_path / name), "--out", os.fsencode(tmp_path / "lib")],
        capture_output=True,
        check=False,
    )  # fmt: skip
    err = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == 2 and len(err.strip().splitlines()) == 1, err
    assert "does not exist" in err and "card-\\udcff.toml" in err
    (tmp_path / name).write_text(default_card_text())
    assert load_card(tmp_path / name) == DEFAULT


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        (
            _edited("array", "r_wire_wl_ohm", "1" + "0" * 400),
            r"array\.r_wire_wl_ohm must be finite",
        ),
        (_edited("array", "rows", "1" + "0" * 400), r"array\.rows = 1000.* is out of range"),
        (_edited("device", "g_max_s", "nan"), r"device\.g_max_s must be finite"),
        (_edited("device", "technology", '"' + "x" * 5000 + '"'), r"'xxx+\.\.\. is not allowed"),
        (_edited("adc", "bits", "[" * 3000 + "]" * 3000), "nest too deeply|must be a number"),
        (_edited("array", "rows", "9" * 5000), r"not a hardware card: Exceeds the limit"),
    ],
    ids=["huge-float-field", "huge-int-field", "nan", "long-string", "deep-nesting", "5000-digits"],
)
def test_extreme_values_are_card_errors(text, pattern):
    with pytest.raises(CardError, match=pattern) as exc:
        parse_card(text, "x.toml")
    assert len(str(exc.value)) < 400 and "\n" not in str(exc.value)


# ------------------------------------------------------ user text in errors: one line
@pytest.mark.parametrize(
    ("name", "pattern"),
    [
        ("a\0b", r"^hardware card .*a\\x00b holds a NUL byte, which no file name can$"),
        ("x" * 300, r"^cannot read hardware card .*/x{300}: File name too long$"),
        ("new\nline.toml", r"^hardware card .*new\\nline\.toml does not exist"),
    ],
    ids=["nul", "name-too-long", "newline"],
)
def test_a_card_path_that_names_no_file_is_one_card_error(tmp_path, name, pattern):
    with pytest.raises(CardError, match=pattern) as exc:
        load_card(tmp_path / name)
    assert "\n" not in str(exc.value) and str(tmp_path) in str(exc.value)


def test_a_card_path_with_a_newline_is_escaped_in_every_message(tmp_path):
    bad = tmp_path / "bad\ncard.toml"
    bad.write_text(_edited("adc", "bits", "9"))
    with pytest.raises(CardError, match=r"bad\\ncard\.toml: adc\.bits = 9") as exc:
        load_card(bad)
    assert "\n" not in str(exc.value)
    bad.write_bytes(b"\xff")
    with pytest.raises(CardError, match=r"bad\\ncard\.toml is not UTF-8") as exc:
        load_card(bad)
    assert "\n" not in str(exc.value)
    with pytest.raises(CardError, match=r"^x\\ny: unknown table"):
        parse_card(default_card_text() + "\n[zz]\n", "x\ny")


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        (default_card_text() + '\n["a\\nb"]\nx = 1\n', r"unknown table \[a\\nb\] in hardware"),
        (
            default_card_text().replace("[adc]\n", '[adc]\n"a\\nb" = 1\n'),
            r"unknown key adc\.a\\nb in hardware card",
        ),
        (
            default_card_text().replace("[card]\n", '[card]\n"x\\u2028y" = 1\n'),
            r"unknown key card\.x\\u2028y;",
        ),
        (
            default_card_text().replace("[adc]\n", '[adc]\n"' + "k" * 5000 + '" = 1\n'),
            r"unknown key adc\.k+\.\.\. in hardware card",
        ),
        (_edited("device", "technology", '"pcm\\nrram"'), r"'pcm\\nrram' is not allowed"),
        (_edited("adc", "bits", '"8\\r\\n"'), r"adc\.bits must be a number, got '8\\r\\n'"),
        (
            default_card_text().replace("schema = 1", 'schema = "1\\n"'),
            r"card\.schema = '1\\n' but this cosim",
        ),
        (
            default_card_text().replace("schema = 1", "schema = " + "9" * 4000),
            r"card\.schema = 9{50}.*\.\.\. but this cosim",
        ),
    ],
    ids=["table", "key", "u2028", "long-key", "choice", "number", "schema", "long-schema"],
)
def test_user_text_in_card_errors_is_escaped(text, pattern):
    with pytest.raises(CardError, match=pattern) as exc:
        parse_card(text)
    msg = str(exc.value)
    assert "\n" not in msg and "\u2028" not in msg and len(msg) < 600, msg


def test_card_update_with_user_text_is_one_line():
    with pytest.raises(CardError, match=r"unknown key adc\.a\\nb in card update"):
        DEFAULT.with_updates({"adc": {"a\nb": 1}})
    with pytest.raises(CardError, match=r"unknown table \[a\\tb\] in card update"):
        DEFAULT.with_updates({"a\tb": {}})


@pytest.mark.parametrize(
    "name",
    [
        "pcm 😀",  # outside the Basic Multilingual Plane: json.dumps writes a surrogate pair
        "𝔠𝔥𝔦𝔭 ☃ é 中文",
        '"quoted" back\\slash \\u0041 \\n',
        "\u00a0no-break space",
        3 * "'" + 3 * '"',
    ],
    ids=["emoji", "astral-and-bmp", "quote-backslash", "nbsp", "quotes"],
)
def test_to_toml_round_trips_any_name(tmp_path, name):
    card = DEFAULT.with_updates({}, name=name)
    text = card.to_toml()
    again = parse_card(text)
    assert again == card and again.hash() == card.hash() and again.name == name
    p = tmp_path / "c.toml"
    p.write_text(text, encoding="utf-8")  # TOML is UTF-8 text: every name writes
    assert load_card(p) == card
    if "😀" in name:
        assert '"pcm 😀"' in text  # written as it is, not as escapes


def test_emoji_name_in_a_card_file_round_trips(tmp_path):
    p = tmp_path / "emoji.toml"
    p.write_text(
        default_card_text().replace('name = "default-pcm-64x64"', 'name = "pcm 😀"'),
        encoding="utf-8",
    )
    card = load_card(p)
    assert card.name == "pcm 😀" and parse_card(card.to_toml()) == card


@pytest.mark.parametrize(
    ("name", "pattern"),
    [
        ("a\nb", r"card\.name = 'a\\nb' holds the control character '\\n'; a card name is one"),
        ("tab\there", r"holds the control character '\\t'"),
        ("nul\x00", r"holds the control character '\\x00'"),
        ("del\x7f", r"holds the control character '\\x7f'"),
        ("x\u2028y", r"holds the line separator '\\u2028'"),
        # JSON (a library's stored card) can spell one; no UTF-8 file can hold it
        ("chip \ud800", r"card\.name = 'chip \\ud800' holds a lone surrogate"),
    ],
    ids=["newline", "tab", "nul", "del", "u2028", "lone-surrogate"],
)
def test_a_name_that_is_not_one_line_of_text_is_refused(name, pattern):
    """A card name is shown in log lines, messages and plot titles: one line of text."""
    d = DEFAULT.to_dict()
    d["card"]["name"] = name
    with pytest.raises(CardError, match=pattern) as exc:
        Card.from_dict(d)
    assert "\n" not in str(exc.value)
    with pytest.raises(CardError, match=pattern):
        DEFAULT.with_updates({}, name=name)
    if "\ud800" not in name:  # the same from a card file, spelled with TOML's escapes
        escaped = "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in name)
        text = default_card_text().replace('"default-pcm-64x64"', f'"{escaped}"')
        with pytest.raises(CardError, match=pattern):
            parse_card(text)


def test_read_window_shorter_than_the_op_amp_can_settle_is_refused():
    from cosim.card import load_card

    card = load_card()
    with pytest.raises(CardError, match=r"tia\.t_read_s = 1e-12 s is shorter than one period"):
        card.with_updates({"tia": {"t_read_s": 1e-12}})
    # a faster op-amp makes the same window possible
    fast = card.with_updates({"opamp": {"gbw_hz": 1e12}, "tia": {"t_read_s": 2e-12}})
    assert fast.tia.t_read_s == 2e-12
