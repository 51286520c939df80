"""``cosim characterize``: the quick run's acceptance figures, its CLI, and resume after a kill.

The fidelity bounds are the issue's acceptance targets (issue 2, point 3) on the default card
at 64×64, with errors in LSBs of its 8-bit ADC; they are judged on the session's one quick
characterization (``quick_library`` in conftest.py).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from cosim.card import load_card
from cosim.cli import main
from cosim.library import SCHEMA_VERSION, load_library, validation_to_dict

CARD = load_card()
pytestmark = pytest.mark.ngspice


@pytest.fixture(scope="module")
def validation(quick_library):
    return json.loads((quick_library.path / "validation.json").read_text())


def test_library_files_and_provenance(quick_library):
    path, report = quick_library
    for name in ("library.json", "validation.json", "arrays.npz"):
        assert (path / name).is_file()
    doc = json.loads((path / "library.json").read_text())
    assert doc["schema_version"] == SCHEMA_VERSION
    assert doc["ngspice_version"] == report.ngspice_version and doc["ngspice_version"]
    assert doc["card_hash"] == CARD.physics_hash()
    assert doc["quick"] is True and doc["seed"] == 0
    assert set(doc["blocks"]) == {"crossbar", "tia", "subtractor", "sar_adc", "sense_row"}
    for name, block in doc["blocks"].items():
        hashes = block["netlist_hashes"]
        assert hashes, f"{name} records which netlists produced its data"
        assert all(len(h) == 64 and int(h, 16) >= 0 for h in hashes.values())
    # a fresh cache: every run was simulated, none came from a cache
    assert report.runner_stats["cached"] == 0 and report.runner_stats["failed"] == 0
    assert report.runner_stats["simulated"] == sum(doc["spice_runs"].values()) > 0
    assert report.out_dir == path
    assert set(report.block_s) == set(doc["blocks"])


def test_validation_json_has_the_promised_keys(quick_library, validation):
    records = quick_library.report.validation
    assert validation == json.loads(json.dumps(validation_to_dict(records)))
    # the typed records hold the headline metrics the JSON holds
    for block in ("crossbar", "tia", "subtractor"):
        assert records[block].rms_error_lsb == validation[block]["rms_error_lsb"]
        assert records[block].max_error_lsb == validation[block]["max_error_lsb"]
    assert records["sar_adc"].code_agreement == validation["sar_adc"]["code_agreement"]
    assert records["sense_row"].bound_violations == validation["sense_row"]["bound_violations"]
    for block in ("crossbar", "tia", "subtractor"):
        v = validation[block]
        assert v["n_heldout"] >= 20
        assert v["rms_error_lsb"] >= 0 and v["max_error_lsb"] >= v["rms_error_lsb"]
    assert validation["sar_adc"]["n_heldout"] >= 20
    assert 0 <= validation["sar_adc"]["code_agreement"] <= 1
    assert validation["sense_row"]["n_heldout"] > 0
    assert isinstance(validation["sense_row"]["bound_violations"], int)


def test_crossbar_fidelity_at_64x64(validation):
    v = validation["crossbar"]
    assert v["size"] == "64x64"
    # acceptance: rms <= 0.25 LSB, max <= 1 LSB on the held-out arrays at the card's size
    assert v["rms_error_lsb"] <= 0.25
    assert v["max_error_lsb"] <= 1.0
    # the card is not kind: without the IR-drop model the same outputs miss by > 1 LSB
    assert v["ideal_model_max_error_lsb"] > 1.0
    assert v["lsb_a"] == pytest.approx(CARD.i_lsb_a, rel=1e-12)
    # fitted on other sizes than the one it is judged on
    assert "64x64" not in v["fit"]["sizes"]
    # the 2.5 ohm figures are reported, with more IR drop to model than at 1 ohm
    r2 = v["at_2p5_ohm"]
    assert r2["n_heldout"] >= 16  # the README's 16 held-out vectors
    # README: rms 0.03 LSB, max 0.14 LSB with the same fitted model. Bounds about 3x those
    # figures: the quick run fits on fewer arrays and judges few vectors, so its error
    # scatters around the full run's; a model that ignored the extra IR drop would miss by
    # tens of LSB (ideal ΣG·V: 39), far outside either bound.
    rms_bound_lsb, max_bound_lsb = 0.1, 0.5
    assert 0 < r2["rms_error_lsb"] <= rms_bound_lsb
    assert r2["rms_error_lsb"] <= r2["max_error_lsb"] <= max_bound_lsb
    # the uncompensated error the README quotes (39 LSB): at least 10x the bound above
    assert r2["ideal_model_max_error_lsb"] > 10 * max_bound_lsb
    assert r2["ideal_model_max_error_lsb"] > v["ideal_model_max_error_lsb"]


@pytest.mark.parametrize("block", ["tia", "subtractor"])
def test_tia_and_subtractor_fidelity(validation, block):
    v = validation[block]
    # acceptance: rms <= 0.1 LSB inside the linear range (the ADC's input range)
    assert v["n_linear"] >= 20
    assert v["rms_error_lsb"] <= 0.1
    # and the right clipping outside it: held-out points do clip, the surrogate's rail is
    # within a quarter LSB of SPICE's (an ADC sees any output above v_ref as full scale,
    # so a quarter LSB there is already far stricter than the codes need)
    assert v["n_clipping"] >= 5
    assert v["clip_max_error_lsb"] <= 0.25
    assert v["spice_max_output_v"] > CARD.adc.v_ref_v
    assert v["surrogate_max_output_v"] == pytest.approx(
        v["spice_max_output_v"], abs=CARD.adc_lsb_v / 4
    )


def test_sar_adc_and_sense_row_fidelity(validation):
    assert validation["sar_adc"]["code_agreement"] >= 0.995
    s = validation["sense_row"]
    assert s["bound_violations"] == 0
    th = np.asarray(s["thresholds_v"])
    assert th.shape == (CARD.sense_row.max_skip_bits,)
    assert np.all(np.diff(th) <= 0) and th[0] > 0
    assert s["mean_skipped_bits_heldout"] > 0  # the bound is useful, not just safe
    # the engine's composition (crossbar → TIA → subtractor surrogates) against SPICE's
    # whole MAC units, Monte-Carlo op-amp offsets included: well inside one ADC code
    # (measured 0.07 rms / 0.21 max; 1.43 max when the offsets' noise gain used the
    # large-signal device conductance)
    assert s["analog_chain_n_outputs"] > 100
    assert s["analog_chain_max_error_lsb"] <= 0.5
    assert s["v_sense_rms_error_lsb"] <= 0.1


def test_energy_figures(quick_library):
    e = quick_library.report.energy["adc_energy_per_conversion_j"]
    assert len(e) == CARD.adc.bits
    assert all(x > 0 for x in e) and np.all(np.diff(e) < 0)  # each skipped MSB saves energy


def test_cli_summary_from_the_cache(quick_library, quick_library_cache, tmp_path, capsys):
    """The same characterization through the CLI is served from the fixture's cache."""
    out, rep = tmp_path / "lib", tmp_path / "rep.json"
    argv = ["characterize", "--quick", "--out", str(out), "--jobs", "2", "--seed", "0"]
    argv += ["--cache-dir", str(quick_library_cache), "--json", str(rep)]
    t0 = time.perf_counter()
    assert main(argv) == 0
    wall = time.perf_counter() - t0
    text = capsys.readouterr().out
    assert "cosim characterize: card 'default-pcm-64x64', quick sweeps, 2 ngspice worker(s)" in text
    assert "errors against held-out SPICE runs, in LSB of the 8-bit ADC" in text
    for block in ("crossbar", "tia", "subtractor", "sar_adc", "sense_row"):
        assert any(line.strip().startswith(block) for line in text.splitlines()), block
    assert "at 2.5 ohm: max" in text and "bound violations 0" in text
    r = json.loads(rep.read_text())
    total = quick_library.report.runner_stats["simulated"]
    assert r["runner"]["cached"] == total and r["runner"]["simulated"] == 0
    assert f"0 runs simulated, {total} from cache" in text
    # same SPICE data, same seeded designs, deterministic fits: the same figures (BLAS
    # summation order is the only freedom left; 1e-9 relative is far above it)
    for block in ("crossbar", "tia", "subtractor"):
        assert r["validation"][block]["rms_error_lsb"] == pytest.approx(
            quick_library.report.validation[block].rms_error_lsb, rel=1e-9, abs=1e-12
        )
    assert load_library(out, CARD).card == CARD
    assert wall < 60  # fits only: a few seconds; a re-simulation would take minutes


SMALL = CARD.with_updates(
    {"array": {"rows": 16, "cols": 16}, "adc": {"bits": 4}, "sense_row": {"max_skip_bits": 2}},
    name="small-16x16",
)


def _characterize(card_path, out, cache, seed, json_path=None, **popen):
    cmd = [sys.executable, "-m", "cosim", "characterize", "--quick", "--card", str(card_path)]
    cmd += ["--out", str(out), "--jobs", "2", "--cache-dir", str(cache), "--seed", str(seed)]
    if json_path is not None:
        cmd += ["--json", str(json_path)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **popen)


def _cache_entries(cache):
    return {p.name for p in cache.rglob("*.npz") if not p.name.startswith(".")}


@pytest.mark.slow
def test_killed_characterization_resumes_from_the_cache(tmp_path):
    card_path = tmp_path / "small.toml"
    card_path.write_text(SMALL.to_toml())
    out, cache = tmp_path / "lib", tmp_path / "cache"

    # 1. a complete library from another seed sits at --out
    first = _characterize(card_path, out, cache, seed=1)
    log, _ = first.communicate(timeout=300)
    assert first.returncode == 0, log.decode()
    before = (out / "library.json").read_bytes()
    n_before = len(_cache_entries(cache))

    # 2. a new run (seed 0) is killed, worker processes and all, once it has finished
    #    some simulations of its own
    run = _characterize(card_path, out, cache, seed=0, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while len(_cache_entries(cache)) < n_before + 5:
            assert run.poll() is None, "the run finished before it could be killed"
            assert time.monotonic() < deadline, "no simulation finished within 2 minutes"
            time.sleep(0.02)
        os.killpg(run.pid, signal.SIGKILL)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
        run.communicate(timeout=60)
    assert run.returncode == -signal.SIGKILL
    done_at_kill = _cache_entries(cache)
    assert len(done_at_kill) >= n_before + 5

    # the library directory is still the complete previous one, and no half-written
    # library directory was left beside it
    assert (out / "library.json").read_bytes() == before
    assert load_library(out, SMALL).meta["seed"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "lib", "small.toml"]

    # 3. the re-run resumes: every simulation finished before the kill comes from the cache
    rep = tmp_path / "rep.json"
    rerun = _characterize(card_path, out, cache, seed=0, json_path=rep)
    log, _ = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, log.decode()
    stats = json.loads(rep.read_text())["runner"]
    assert stats["cached"] > 0
    assert stats["cached"] >= len(done_at_kill) - n_before
    assert stats["failed"] == 0
    lib = load_library(out, SMALL)
    assert lib.meta["seed"] == 0 and lib.meta["runner_stats"]["cached"] == stats["cached"]
    assert set(lib.surrogates) == {"crossbar", "tia", "subtractor", "sar_adc", "sense_row"}
    # nothing lost: a third run simulates nothing at all
    third = _characterize(card_path, tmp_path / "lib3", cache, seed=0, json_path=rep)
    log, _ = third.communicate(timeout=300)
    assert third.returncode == 0, log.decode()
    assert json.loads(rep.read_text())["runner"]["simulated"] == 0
