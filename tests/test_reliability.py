"""Bad flags and bad output paths: one line on stderr, exit status 2, before any work.

Each case here was found by a hostile new user (issue 9) and ended in a traceback, a hang or
a silent wrong number. Every test passes paths that do not exist for the inputs the command
would read *after* the checked flag (model, library, card): an error that names the flag,
not the missing input, proves the flag was checked before any work started.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest

from cosim.cli import main


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """``cosim.cli.main`` in-process: (exit status, stdout, stderr); argparse exits count."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(argv)
        except SystemExit as exc:  # argparse's own exit
            rc = exc.code if isinstance(exc.code, int) else 2
    return rc, out.getvalue(), err.getvalue()


def assert_one_line_error(rc: int, err: str, *needles: str) -> None:
    """Exit 2, exactly one line on stderr, no traceback, and every needle in that line."""
    assert rc == 2, err
    lines = err.strip("\n").splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for n in needles:
        assert n in lines[0], (n, lines[0])


@pytest.fixture
def absent(tmp_path: Path) -> dict[str, str]:
    """Input paths that do not exist: an error about them means the flag was not checked."""
    return {
        "model": str(tmp_path / "no-model.npz"),
        "library": str(tmp_path / "no-library"),
    }


def _evaluate(absent: dict[str, str], *extra: str) -> list[str]:
    return ["evaluate", "--model", absent["model"], "--library", absent["library"], *extra]


# --------------------------------------------------------------- non-finite and out of range
@pytest.mark.parametrize(
    ("flag", "value", "needle"),
    [
        ("--t", "nan", "--t"),
        ("--t", "inf", "--t"),
        ("--t", "0", "--t"),
        ("--t", "-5", "--t"),
        ("--nvw", "inf", "--nvw"),
        ("--nvw", "nan", "--nvw"),
        ("--nvw", "1e300", "--nvw"),
        ("--nvw", "-0.1", "--nvw"),
        ("--nva", "nan", "--nva"),
        ("--nva", "2", "--nva"),
        ("--margin", "nan", "--margin"),
        ("--seed", "-1", "--seed"),
        ("--seed", "1.5", "--seed"),
        ("--chips", "0", "--chips"),
        ("--batch", "0", "--batch"),
        ("--limit", "0", "--limit"),
        ("--adc-bits", "9", "--adc-bits"),
        ("--threads", "0", "--threads"),
        ("--jobs", "0", "--jobs"),
        ("--jobs", "-2", "--jobs"),
        ("--verify-spice", "-5", "--verify-spice"),
    ],
)
def test_evaluate_rejects_bad_numbers_before_reading_anything(absent, flag, value, needle):
    rc, _, err = run_cli(_evaluate(absent, flag, value))
    assert_one_line_error(rc, err, needle, value)


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("nvw=nan", "finite"),
        ("nvw=nan:nan:nan", "finite"),
        ("nvw=0:inf:1", "finite"),
        ("nvw=0:1e308:1e-308", "points"),
        ("nvw=0:1:1e-12", "points"),  # was a hang: 4.9 GB after 24 s
        ("nvw=0:2:0.5", "nvw"),
        ("t=0:10:1", "t = 0"),
        ("adc_bits=1:9:1", "adc_bits"),
        ("bogus=0:1:0.1", "unknown parameter"),
    ],
)
def test_sweep_is_checked_before_anything_runs(absent, spec, needle):
    rc, _, err = run_cli(_evaluate(absent, "--sweep", spec))
    assert_one_line_error(rc, err, "--sweep", needle)


def test_sweep_point_count_is_bounded_and_documented():
    from cosim.engine.sweep import MAX_POINTS, SweepSpec

    assert len(SweepSpec.parse(f"nvw=0:{(MAX_POINTS - 1) * 0.001:.3f}:0.001").values) == MAX_POINTS
    with pytest.raises(Exception, match=f"at most {MAX_POINTS}"):
        SweepSpec.parse(f"nvw=0:{MAX_POINTS * 0.001:.3f}:0.001")


def test_ideal_mode_refuses_flags_it_would_ignore(absent):
    rc, _, err = run_cli(_evaluate(absent, "--ideal", "--nvw", "0.1"))
    assert_one_line_error(rc, err, "--ideal", "--nvw")
    rc, _, err = run_cli(_evaluate(absent, "--ideal", "--chips", "3"))
    assert_one_line_error(rc, err, "--ideal", "--chips")


def test_verify_spice_does_not_combine_with_a_sweep(absent):
    rc, _, err = run_cli(_evaluate(absent, "--sweep", "nvw=0:0.1:0.05", "--verify-spice", "3"))
    assert_one_line_error(rc, err, "--verify-spice", "sweep")


def test_plot_without_a_sweep_is_an_error(absent, tmp_path):
    rc, _, err = run_cli(_evaluate(absent, "--plot", str(tmp_path / "p.png")))
    assert_one_line_error(rc, err, "--plot", "--sweep")


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--lr", "nan"),
        ("--lr", "inf"),
        ("--lr", "0"),
        ("--lr", "1e30"),
        ("--seed", "-1"),
        ("--w-bits", "0"),
        ("--a-bits", "9"),
        ("--b-bits", "1"),
        ("--unipolar-fraction", "nan"),
        ("--unipolar-fraction", "1.5"),
        ("--epochs", "0"),
        ("--batch-size", "0"),
        ("--blas-threads", "0"),
    ],
)
def test_train_rejects_bad_numbers(tmp_path, flag, value):
    out = tmp_path / "m.npz"
    rc, _, err = run_cli(["train", "--out", str(out), flag, value])
    assert_one_line_error(rc, err, flag)
    assert not out.exists()


@pytest.mark.parametrize(("flag", "value"), [("--seed", "-1"), ("--jobs", "0"), ("--jobs", "x")])
def test_characterize_rejects_bad_numbers(tmp_path, flag, value):
    out = tmp_path / "lib"
    rc, _, err = run_cli(["characterize", "--quick", "--out", str(out), flag, value])
    assert_one_line_error(rc, err, flag)
    assert not out.exists()


def test_report_rejects_zero_jobs(tmp_path):
    out = tmp_path / "rep"
    rc, _, err = run_cli(["report", "--quick", "--out", str(out), "--jobs", "0"])
    assert_one_line_error(rc, err, "--jobs")
    assert not out.exists()


# ------------------------------------------------------------------------------ output paths
def _foreign_dir(root: Path) -> Path:
    """A user's directory: a thesis and a note in a sub-directory."""
    d = root / "thesis"
    (d / "sub").mkdir(parents=True)
    (d / "thesis.tex").write_text("\\documentclass{article}\n")
    (d / "sub" / "notes.txt").write_text("do not delete\n")
    return d


def _snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): (p.read_bytes() if p.is_file() else b"<dir>")
        for p in sorted(root.rglob("*"))
    }


def test_characterize_never_touches_a_foreign_directory(tmp_path):
    d = _foreign_dir(tmp_path)
    before = _snapshot(tmp_path)
    rc, _, err = run_cli(["characterize", "--quick", "--out", str(d)])
    assert_one_line_error(rc, err, str(d))
    assert _snapshot(tmp_path) == before


def test_characterize_never_turns_a_file_into_a_library(tmp_path):
    f = tmp_path / "model.npz"
    f.write_bytes(b"user data")
    rc, _, err = run_cli(["characterize", "--quick", "--out", str(f)])
    assert_one_line_error(rc, err, str(f))
    assert f.read_bytes() == b"user data"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]


def test_characterize_never_replaces_a_symlink(tmp_path):
    target = tmp_path / "real"
    target.mkdir()
    (target / "keep.txt").write_text("x")
    link = tmp_path / "link"
    link.symlink_to(target)
    rc, _, err = run_cli(["characterize", "--quick", "--out", str(link)])
    assert_one_line_error(rc, err, str(link))
    assert link.is_symlink() and (target / "keep.txt").read_text() == "x"


def test_characterize_out_dot_is_an_error(tmp_path, monkeypatch):
    (tmp_path / "mine.txt").write_text("x")
    monkeypatch.chdir(tmp_path)
    rc, _, err = run_cli(["characterize", "--quick", "--out", "."])
    assert_one_line_error(rc, err)
    assert (tmp_path / "mine.txt").read_text() == "x"


def test_json_naming_a_directory_fails_before_the_work(absent, tmp_path):
    d = tmp_path / "adir"
    d.mkdir()
    rc, _, err = run_cli(_evaluate(absent, "--json", str(d)))
    assert_one_line_error(rc, err, str(d))
    rc, _, err = run_cli(
        ["characterize", "--quick", "--out", str(tmp_path / "l"), "--json", str(d)]
    )
    assert_one_line_error(rc, err, str(d))
    rc, _, err = run_cli(["train", "--out", str(tmp_path / "m.npz"), "--json", str(d)])
    assert_one_line_error(rc, err, str(d))


def test_json_never_replaces_a_foreign_file(absent, tmp_path):
    f = tmp_path / "results.json"
    f.write_text('{"mine": true}\n')
    rc, _, err = run_cli(_evaluate(absent, "--json", str(f)))
    assert_one_line_error(rc, err, str(f))
    assert f.read_text() == '{"mine": true}\n'


def test_plot_naming_a_directory_fails_before_the_work(absent, tmp_path):
    rc, _, err = run_cli(_evaluate(absent, "--sweep", "nvw=0:0.1:0.05", "--plot", str(tmp_path)))
    assert_one_line_error(rc, err, str(tmp_path))


def test_train_out_under_a_file_fails_before_training(tmp_path):
    f = tmp_path / "FILE"
    f.write_text("user data")
    rc, _, err = run_cli(["train", "--out", str(f / "m.npz")])
    assert_one_line_error(rc, err, str(f))
    assert f.read_text() == "user data"


def test_train_never_replaces_a_foreign_file(tmp_path):
    f = tmp_path / "m.npz"
    f.write_bytes(b"not a model")
    rc, _, err = run_cli(["train", "--out", str(f)])
    assert_one_line_error(rc, err, str(f))
    assert f.read_bytes() == b"not a model"


def test_report_out_an_existing_file_or_foreign_dir(tmp_path):
    f = tmp_path / "report"
    f.write_text("user data")
    rc, _, err = run_cli(["report", "--quick", "--out", str(f)])
    assert_one_line_error(rc, err, str(f))
    assert f.read_text() == "user data"
    d = _foreign_dir(tmp_path / "x")
    before = _snapshot(tmp_path)
    rc, _, err = run_cli(["report", "--quick", "--out", str(d)])
    assert_one_line_error(rc, err, str(d))
    assert _snapshot(tmp_path) == before


def test_cache_dir_that_is_a_file(tmp_path):
    f = tmp_path / "cachefile"
    f.write_text("x")
    rc, _, err = run_cli(
        ["characterize", "--quick", "--out", str(tmp_path / "l"), "--cache-dir", str(f)]
    )
    assert_one_line_error(rc, err, str(f))
    assert not (tmp_path / "l").exists()


def test_cache_dir_under_a_file(tmp_path):
    """Unwritable for root too: a directory cannot be made under a regular file."""
    f = tmp_path / "cachefile"
    f.write_text("x")
    rc, _, err = run_cli(
        ["characterize", "--quick", "--out", str(tmp_path / "l"), "--cache-dir", str(f / "c")]
    )
    assert_one_line_error(rc, err, str(f))
    assert f.read_text() == "x"


# ------------------------------------------------------------ found by tests/test_fuzz.py
def test_bare_cosim_says_what_to_do_in_one_line():
    rc, out, err = run_cli([])
    assert_one_line_error(rc, err, "give a command", "evaluate")
    assert "usage: cosim" in out


@pytest.mark.parametrize("flag", ["--card", "--json", "--out"])
def test_a_nul_byte_in_a_path_flag(tmp_path, flag):
    argv = ["characterize", "--quick", "--out", str(tmp_path / "l"), flag, "a\x00b"]
    rc, _, err = run_cli(argv)
    assert_one_line_error(rc, err, flag, "NUL")


@pytest.mark.parametrize("out", ["", ".", ".."])
def test_train_out_that_names_a_directory(tmp_path, monkeypatch, out):
    monkeypatch.chdir(tmp_path)
    rc, _, err = run_cli(["train", "--out", out])
    assert_one_line_error(rc, err, "--out")
    assert list(tmp_path.iterdir()) == []


def test_values_with_newlines_stay_on_one_line(absent):
    rc, _, err = run_cli(_evaluate(absent, "--nva", "1\n2"))
    assert_one_line_error(rc, err, "--nva", "'1\\n2'")
    rc, _, err = run_cli(["report", "--out", "o", "a\nb"])
    assert_one_line_error(rc, err, "unrecognized arguments")


# ------------------------------------------------------- what-if cards (a real evaluation)
def test_large_what_if_tiles_say_what_they_cost_and_the_header_names_the_card(
    committed_library, tmp_path
):
    """A 1024x1024 what-if card prints its tile size and solve size on stderr before the
    chip is built, and the report's header names the what-if card, not the library's."""
    from cosim.library import load_library
    from cosim.model import save_model

    from .engine_models import trained

    model = tmp_path / "m.npz"
    save_model(trained("digits-global"), model)
    card = load_library(committed_library.path).card.with_updates(
        {"array": {"rows": 1024, "cols": 1024}}, name="what-if-1024"
    )
    what_if = tmp_path / "big.toml"
    what_if.write_text(card.to_toml())
    argv = ["evaluate", "--model", str(model), "--library", str(committed_library.path),
            "--card", str(what_if), "--limit", "20", "--no-ir-drop"]  # fmt: skip
    rc, out, err = run_cli(argv)
    assert rc == 0, err
    assert "tiles of 1024x1024 devices on card 'what-if-1024'" in err
    assert out.splitlines()[0].startswith("cosim evaluate: mlp (global) on card 'what-if-1024'")
    # with IR drop on, the line states the size of each tile's nodal solve
    from cosim.engine.config import EngineConfig
    from cosim.engine.tables import describe_tiles

    assert f"{2 * 1024 * 1024}-node wire network" in describe_tiles(card, EngineConfig())


# ------------------------------------------------------------- found by the hostile review
def test_sweep_plot_title_with_an_undecodable_file_name(tmp_path):
    """A model file named with a non-UTF-8 byte (surrogate-escaped by Python) reached
    matplotlib's title raw: a TypeError traceback after the whole sweep."""
    from cosim.engine.sweep import plot_sweep
    from cosim.fileio import png_software

    res = {"parameter": "nvw", "label": "nvw", "values": [0.0, 0.1],
           "accuracy_mean": [0.9, 0.8], "accuracy_std": [0.0, 0.01], "reference_accuracy": 0.9,
           "margin": 0.01, "largest_value_within_margin": 0.0}  # fmt: skip
    png = plot_sweep(res, tmp_path / "s.png", "bad\udcff.npz on 'card'")
    assert png_software(png).startswith("cosim")


def test_fractional_adc_bits_sweep_is_refused(absent):
    rc, _, err = run_cli(_evaluate(absent, "--sweep", "adc_bits=1:8:0.5"))
    assert_one_line_error(rc, err, "whole numbers")
    rc, _, err = run_cli(_evaluate(absent, "--sweep", "adc_bits=1.5:8:1"))
    assert_one_line_error(rc, err, "whole numbers")


def test_a_flag_the_sweep_would_ignore_is_refused(absent):
    rc, _, err = run_cli(_evaluate(absent, "--nvw", "0.1", "--sweep", "nvw=0:0.2:0.1"))
    assert_one_line_error(rc, err, "--nvw", "--sweep")


def test_nothing_is_written_inside_a_library_directory(absent, tmp_path):
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "library.json").write_text("{}")
    rc, _, err = run_cli(_evaluate(absent, "--json", str(lib / "new.json")))
    assert_one_line_error(rc, err, "inside the surrogate library")
    rc, _, err = run_cli(["train", "--out", str(lib / "m.npz")])
    assert_one_line_error(rc, err, "inside the surrogate library")
    rc, _, err = run_cli(["characterize", "--quick", "--out", str(lib / "sub")])
    assert_one_line_error(rc, err, "inside the surrogate library")
    assert sorted(p.name for p in lib.iterdir()) == ["library.json"]


@pytest.mark.parametrize("command", ["characterize", "evaluate"])
def test_an_empty_path_is_refused(absent, tmp_path, command):
    argv = (
        ["characterize", "--quick", "--out", str(tmp_path / "l")]
        if command == "characterize"
        else _evaluate(absent, "--verify-spice", "1")
    )
    rc, _, err = run_cli([*argv, "--cache-dir", ""])
    assert_one_line_error(rc, err, "--cache-dir", "empty path")
