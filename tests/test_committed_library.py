"""The committed test library still is what a quick characterization of the default card makes.

``tests/data/library-quick`` (``scripts/regen_test_library.sh``) serves the engine tests that
need *a* library but no fresh SPICE (the ``committed_library`` fixture). It is only as good as
its match with the code: these tests check, without running ngspice, that

* it was made for the shipped default card (card hash, schema version) by a quick
  characterization with seed 0, and loads;
* every netlist hash it stores is the hash of a netlist that the current generators emit for
  the default card: each block's characterization is run with a runner that records the jobs
  it submits and then stops the block (no simulation), so the sweep designs, seeds and
  netlist text are the pipeline's own, not a copy. A library stores the hashes of a block's
  representative netlists (10 of the SAR's 39 jobs, 12 of the crossbar's 14), not of every
  job, and nothing here checks the fitting code: a change there that moves the fitted
  numbers needs ``scripts/regen_test_library.sh`` by hand.

The sense row simulates in two stages, and the netlists of the second depend on the bound
fitted to the first's SPICE results; its first stage is checked (every netlist it emits is
stored), its second is covered by the first stage's inputs and the fitted surrogates. When a
test here fails, run ``scripts/regen_test_library.sh`` and commit the new library.

The library loader does not compare ngspice versions (``cosim/library/`` checks the schema,
the card and every number): a library made under another ngspice is read as it is. That is
what the engine tests want — a fixed, known set of surrogates — so the committed library
stays valid on machines with another ngspice; its ``ngspice_version`` is provenance.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from cosim.card import load_card
from cosim.characterize.context import CharContext
from cosim.circuits import device_model
from cosim.converters import adc_architecture
from cosim.library import SCHEMA_VERSION, load_library
from netlists.common import netlist_hash
from tests.conftest import COMMITTED_LIBRARY


class _Submitted(Exception):
    """Raised by the recording runner: the block has handed over its first batch of jobs."""


class _RecordingRunner:
    """Stands in for :class:`~cosim.spice.runner.SpiceRunner`: keeps the jobs, runs none."""

    def __init__(self) -> None:
        self.jobs: list = []

    def run(self, jobs, desc: str = ""):
        self.jobs = list(jobs)
        raise _Submitted


def _first_batch(fn, *args) -> list[str]:
    """Hashes of the netlists a block characterization submits first (the quick, seed-0 run)."""
    card = load_card()
    runner = _RecordingRunner()
    ctx = CharContext(card, device_model(card), runner, quick=True, seed=0)
    with pytest.raises(_Submitted):
        fn(ctx, *args)
    assert runner.jobs, "the block submitted no SPICE jobs"
    return [netlist_hash(j.netlist) for j in runner.jobs]


@pytest.fixture(scope="module")
def doc() -> dict:
    return json.loads((COMMITTED_LIBRARY / "library.json").read_text(encoding="utf-8"))


def test_the_committed_library_is_the_default_cards_quick_seed_0_library(doc):
    card = load_card()
    assert doc["schema_version"] == SCHEMA_VERSION
    assert doc["card_hash"] == card.physics_hash()
    assert (doc["quick"], doc["seed"]) == (True, 0)
    lib = load_library(COMMITTED_LIBRARY, card)  # every block decodes, every number finite
    assert set(lib.surrogates) == {"crossbar", "tia", "subtractor", "sar_adc", "sense_row"}


def _single_batch_blocks():
    from cosim.characterize.crossbar import characterize_crossbar
    from cosim.characterize.periphery import characterize_subtractor, characterize_tia

    arch = adc_architecture(load_card().adc.architecture)
    return {
        "crossbar": characterize_crossbar,
        "tia": characterize_tia,
        "subtractor": characterize_subtractor,
        arch.block: arch.characterize,
    }


@pytest.mark.parametrize("block", ["crossbar", "tia", "subtractor", "sar_adc"])
def test_stored_netlist_hashes_are_what_the_generators_emit_today(doc, block):
    """Blocks that submit every job at once: all their netlists are recorded."""
    emitted = _first_batch(_single_batch_blocks()[block])
    assert len(emitted) == doc["spice_runs"][block]  # the same sweep design, job for job
    expected = set(emitted)
    if block == "sar_adc":  # the library also names the converter sub-circuits themselves
        from cosim.circuits import sar_adc_params
        from netlists.sar_adc import sar_adc_subckt

        card = load_card()
        expected.add(netlist_hash(sar_adc_subckt(sar_adc_params(card))))
        expected |= {
            netlist_hash(sar_adc_subckt(sar_adc_params(card, n))) for n in range(1, card.adc.bits)
        }
    stored = doc["blocks"][block]["netlist_hashes"]
    stale = sorted(label for label, h in stored.items() if h not in expected)
    assert not stale, (
        f"{block}: netlists {stale} of the committed library are no longer what the "
        "generators emit; run scripts/regen_test_library.sh"
    )


def test_sense_row_first_stage_netlists_are_stored(doc):
    from cosim.characterize.sense_row import characterize_sense_row

    lib = load_library(COMMITTED_LIBRARY)
    transitions = np.asarray(lib.adc().thresholds(), dtype=float)
    emitted = _first_batch(
        characterize_sense_row, lib.block("crossbar"), lib.block("tia"), transitions
    )
    stored = set(doc["blocks"]["sense_row"]["netlist_hashes"].values())
    missing = [h[:12] for h in emitted if h not in stored]
    assert not missing, (
        f"sense row: {len(missing)} of {len(emitted)} first-stage netlists are not in the "
        "committed library; run scripts/regen_test_library.sh"
    )
