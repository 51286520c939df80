"""ADC architectures as plug-ins (cosim.converters), and the one SAR mismatch sampler.

No SPICE here: the registry, the card's ``adc.architecture``, the library decoding through
the registry (with a toy architecture registered for the test), and the proof that the
shared mismatch sampler draws exactly what the netlist and the surrogate drew before.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pytest

from cosim.card import load_card
from cosim.characterize.adc import analytic_model, characterize_adc
from cosim.characterize.context import BlockResult, CharContext
from cosim.characterize.pipeline import energy_figures
from cosim.circuits import device_model, sar_adc_params, sar_adc_sample
from cosim.converters import (
    AdcArchitecture,
    AdcInstance,
    AdcSurrogate,
    adc_architecture,
    adc_architecture_for_kind,
    adc_architecture_names,
    register_adc,
    unregister_adc,
)
from cosim.errors import CardError, CosimError, LibraryError
from cosim.library import load_library, write_library
from cosim.surrogates.adc import (
    SarAdcModel,
    ideal_codes,
    mismatch_units,
    models_by_bits,
    sample_instance,
)
from cosim.surrogates.adc.architecture import SAR
from netlists.mismatch import draw_sar_mismatch, sar_mismatch_units

CARD = load_card()


# ---------------------------------------------------------------------------------------
# a second architecture, as a plug-in would write it (ideal transfer, table energies)
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ToyAdc:
    kind: ClassVar[str] = "toy_adc"

    bits: int
    v_ref_v: float
    conversion_time_s: float = 1e-8
    e_conv_j: float = 1e-13

    def convert(self, v: Any, skip: Any = 0) -> np.ndarray:
        return ideal_codes(v, self.bits, self.v_ref_v)

    def energy_per_conversion_j(self, skip: Any = 0, codes: Any = None) -> np.ndarray:
        return self.e_conv_j * (self.bits - np.asarray(skip, dtype=float)) / self.bits

    def thresholds(self, skip: int = 0) -> np.ndarray:
        return (np.arange(1, 2 ** (self.bits - skip)) - 0.5) * self.v_ref_v / 2**self.bits

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "bits": self.bits, "v_ref_v": self.v_ref_v}


@dataclass(frozen=True)
class ToyArchitecture:
    name: str = "toy"
    block: str = "toy_adc"
    kind: str = ToyAdc.kind

    def nominal_params(self, card, bits=None):
        return {"bits": card.adc.bits if bits is None else bits}

    def subckt(self, params, name=None):
        return f".subckt {name or self.subckt_name(params)}\n.ends\n"

    def subckt_name(self, params):
        return f"toy{params['bits']}"

    def subckt_pins(self, bits):
        return SAR.subckt_pins(bits)

    def testbench_netlist(self, params, v_in, skip=0):
        raise NotImplementedError

    def testbench_vectors(self):
        return ("time",)

    def decode_testbench(self, result, params, n):
        raise NotImplementedError

    def characterize(self, ctx):
        m = ToyAdc(ctx.card.adc.bits, ctx.card.adc.v_ref_v)
        return BlockResult(surrogate=m, validation={"n_heldout": 0, "code_agreement": 1.0})

    def ideal(self, bits, v_ref_v):
        return ToyAdc(bits, v_ref_v)

    def from_dict(self, d: Mapping[str, Any]) -> ToyAdc:
        if d.get("kind") != ToyAdc.kind:
            raise LibraryError("not a toy ADC")
        return ToyAdc(int(d["bits"]), float(d["v_ref_v"]))

    def models_by_bits(self, extra, bits=None):
        return {int(n): self.from_dict(d) for n, d in extra["by_bits"].items()}

    def sample_instance(self, nominal, card, rng, bits=None):
        if isinstance(nominal, Mapping):
            nominal = nominal[card.adc.bits if bits is None else bits]
        return AdcInstance(nominal, self.nominal_params(card, nominal.bits))


@pytest.fixture
def toy():
    arch = ToyArchitecture()
    register_adc("toy", arch)
    try:
        yield arch
    finally:
        unregister_adc("toy")


# ---------------------------------------------------------------------------------------
# registry
# ---------------------------------------------------------------------------------------
def test_sar_is_registered_and_follows_the_protocol():
    assert adc_architecture_names() == ("flash", "sar")
    arch = adc_architecture("sar")
    assert arch is SAR and isinstance(arch, AdcArchitecture)
    assert (arch.name, arch.block, arch.kind) == ("sar", "sar_adc", "sar_adc")
    assert adc_architecture_for_kind("sar_adc") is SAR
    assert adc_architecture_for_kind("crossbar") is None
    m = arch.ideal(4, 1.0)
    assert isinstance(m, SarAdcModel) and isinstance(m, AdcSurrogate)
    # the surrogate's storage round trip through the architecture
    back = arch.from_dict(m.to_dict())
    np.testing.assert_array_equal(back.bit_weights_v, m.bit_weights_v)
    # its netlist side: the nominal parameters and the shared pin order
    p = arch.nominal_params(CARD, 3)
    assert p == sar_adc_params(CARD, 3)
    assert arch.subckt(p).splitlines()[0].split()[1:] == [
        arch.subckt_name(p),
        *arch.subckt_pins(3),
    ]


def test_unknown_architecture_is_a_cosim_error_listing_the_known_ones(toy):
    with pytest.raises(
        CosimError, match=r"unknown ADC architecture 'pipelined'; .*: flash, sar, toy$"
    ):
        adc_architecture("pipelined")
    with pytest.raises(CosimError, match=r"unknown ADC architecture 'pipelined'"):
        unregister_adc("pipelined")


def test_registration_is_checked():
    with pytest.raises(CosimError, match="already registered as 'sar'"):
        register_adc("sar", SAR)
    with pytest.raises(CosimError, match=r"must match \[a-z\]"):
        register_adc("Flash ADC", SAR)
    with pytest.raises(CosimError, match="calls itself 'sar'"):
        register_adc("pipelined", SAR)

    class Half:
        name = "half"
        block = kind = "half"

        def convert(self, v):
            return v

    with pytest.raises(CosimError, match=r"does not follow .* \(lacks characterize, .*\)"):
        register_adc("half", Half())
    assert "half" not in adc_architecture_names()
    with pytest.raises(CosimError, match="is not 'module:attribute'"):
        register_adc("lazy", "cosim.nothing")
    register_adc("lazy", "cosim.surrogates.adc.no_such_module:ARCH")
    try:
        assert "lazy" in adc_architecture_names()  # known before it is loaded
        with pytest.raises(CosimError, match="'lazy' cannot be loaded from"):
            adc_architecture("lazy")
    finally:
        unregister_adc("lazy")


def test_card_names_the_architecture(toy):
    assert CARD.adc.architecture == "sar"
    card = CARD.with_updates({"adc": {"architecture": "toy"}})
    assert card.adc.architecture == "toy"
    # a different architecture is a different chip
    assert card.physics_hash() != CARD.physics_hash()
    with pytest.raises(CardError, match=r"adc\.architecture = 'pipelined' is not allowed; .*'sar'"):
        CARD.with_updates({"adc": {"architecture": "pipelined"}})


def test_characterization_dispatches_on_the_card(toy):
    card = CARD.with_updates(
        {"adc": {"architecture": "toy", "bits": 3}, "sense_row": {"max_skip_bits": 2}}
    )
    ctx = CharContext(card, device_model(card), runner=None)  # type: ignore[arg-type]
    res = characterize_adc(ctx)
    assert isinstance(res.surrogate, ToyAdc) and res.surrogate.bits == 3
    # the energy figures read the architecture's block
    e = energy_figures(card, {"toy_adc": res})
    assert e["adc_energy_per_conversion_j"] == pytest.approx([1e-13, 2e-13 / 3, 1e-13 / 3])


def test_library_decodes_through_the_registry(toy, tmp_path):
    card = CARD.with_updates(
        {"adc": {"architecture": "toy", "bits": 3}, "sense_row": {"max_skip_bits": 2}}
    )
    by_bits = {str(n): ToyAdc(n, 1.0).to_dict() for n in (1, 2, 3)}
    blocks = {"toy_adc": {"surrogate": ToyAdc(3, 1.0), "extra": {"by_bits": by_bits}}}
    write_library(tmp_path / "lib", card, blocks, {"toy_adc": {"n_heldout": 0}}, {})
    lib = load_library(tmp_path / "lib", card)
    assert lib.adc_architecture is toy
    assert lib.adc() == ToyAdc(3, 1.0)
    assert lib.adc_models_by_bits() == {n: ToyAdc(n, 1.0) for n in (1, 2, 3)}
    # without the plug-in, the card in the library is not valid
    unregister_adc("toy")
    try:
        with pytest.raises(LibraryError, match=r"adc\.architecture = 'toy' is not allowed"):
            load_library(tmp_path / "lib")
    finally:
        register_adc("toy", toy)


def _sar_library(path, card=CARD):
    by_bits = {str(n): SarAdcModel.ideal(n, 1.0).to_dict() for n in range(1, card.adc.bits + 1)}
    blocks = {"sar_adc": {"surrogate": SarAdcModel.ideal(card.adc.bits, 1.0), "extra": {}}}
    blocks["sar_adc"]["extra"]["by_bits"] = by_bits
    return write_library(path, card, blocks, {"sar_adc": {"n_heldout": 0}}, {})


def test_sar_library_on_disk_is_unchanged_and_old_libraries_load(tmp_path):
    lib_dir = _sar_library(tmp_path / "lib")
    doc = json.loads((lib_dir / "library.json").read_text())
    # the block, its kind and the card hash are what cosim wrote before the registry
    assert doc["blocks"]["sar_adc"]["kind"] == "sar_adc"
    assert doc["card_hash"] == CARD.physics_hash()
    assert doc["card"]["adc"]["architecture"] == "sar"  # the one new field
    lib = load_library(lib_dir, CARD)
    assert sorted(lib.adc_models_by_bits()) == list(range(1, 9))
    assert lib.adc() is lib.block("sar_adc")
    # a library written before adc.architecture existed: its card lacks the key
    del doc["card"]["adc"]["architecture"]
    (lib_dir / "library.json").write_text(json.dumps(doc))
    old = load_library(lib_dir, CARD)
    assert old.card == CARD and old.adc_architecture is SAR
    # a library from before per-resolution models: the card's resolution only
    del doc["blocks"]["sar_adc"]["extra"]["by_bits"]
    (lib_dir / "library.json").write_text(json.dumps(doc))
    assert sorted(load_library(lib_dir, CARD).adc_models_by_bits()) == [8]


# ---------------------------------------------------------------------------------------
# one mismatch sampler
# ---------------------------------------------------------------------------------------
#: Drawn by the code before the shared sampler (cosim.circuits.sar_adc_sample and
#: cosim.surrogates.adc.sample_instance, each with its own copy of the draw order), on the
#: default card; the recipe: ``sar_adc_sample(load_card(), default_rng(seed), bits)``
#: and ``sample_instance(SarAdcModel.ideal(bits, 1.0), load_card(), default_rng(seed),
#: bits)``, printed with repr. ``next`` is the generator's next standard normal afterwards.
GOLDEN = {
    (0, 8): {
        "c_bits_f": (
            2.002514604421868e-15, 3.99626351021356e-15, 8.025616906017733e-15,
            1.6005934046734893e-14, 3.195714645014711e-14, 6.40409098104592e-14,
            1.2820864000722082e-13, 2.5621429995883563e-13,
        ),
        "c_dummy_f": 1.9859252952838605e-15,
        "c_half_f": 9.821042379352857e-16,
        "comparator_offset_v": -9.861957002988173e-05,
        "bit_weights_v": [
            0.003907960512336405, 0.007798814530650681, 0.015662204853138434,
            0.031236006009433995, 0.06236522127646693, 0.12497753882080934,
            0.25020257099858834, 0.5000090210199071,
        ],
        "shift_v": -0.0019166025418113656,
        "input_gain": 1.0000349240556512,
        "model_offset_v": -0.0004986195700298818,
        "next": 0.0413259793472436,
    },
    (7, 3): {
        "c_bits_f": (2.00002460306715e-15, 4.008449799816859e-15, 7.989034485785512e-15),
        "c_dummy_f": 1.9821881632248546e-15,
        "c_half_f": 9.935699840919533e-16,
        "comparator_offset_v": -0.00039331724399716987,
        "bit_weights_v": [0.12521074108141278, 0.25094739797351306, 0.5001503116292326],
        "shift_v": -0.06220205183157145,
        "input_gain": 1.000402548576541,
        "model_offset_v": -0.0007933172439971699,
        "next": 0.060143602597438485,
    },
    (12345, 1): {
        "c_bits_f": (1.9715234992709074e-15,),
        "c_dummy_f": 2.0252745691625826e-15,
        "c_half_f": 9.876869836193893e-16,
        "comparator_offset_v": 0.00019266141205248193,
        "bit_weights_v": [0.4948000741664578],
        "shift_v": -0.247883219717568,
        "input_gain": 1.0030902403245976,
        "model_offset_v": -0.0002073385879475181,
        "next": -0.07534330701052097,
    },
}  # fmt: skip


@pytest.mark.parametrize(("seed", "bits"), sorted(GOLDEN), ids=str)
def test_seeded_instances_are_what_the_old_code_drew(seed, bits):
    want = GOLDEN[(seed, bits)]
    rng = np.random.default_rng(seed)
    p = sar_adc_sample(CARD, rng, bits)
    # exact: the same draws in the same order through the same arithmetic
    assert p.c_bits_f == want["c_bits_f"]
    assert (p.c_dummy_f, p.c_half_f) == (want["c_dummy_f"], want["c_half_f"])
    assert p.comparator_offset_v == want["comparator_offset_v"]
    assert rng.standard_normal() == want["next"]  # bits + 3 draws, no more
    rng = np.random.default_rng(seed)
    m = sample_instance(SarAdcModel.ideal(bits, 1.0), CARD, rng, bits)
    assert m.bit_weights_v.tolist() == want["bit_weights_v"]
    assert (m.shift_v, m.input_gain) == (want["shift_v"], want["input_gain"])
    assert m.comparator_offset_v == want["model_offset_v"]
    assert rng.standard_normal() == want["next"]


def test_the_sampler_draws_in_the_documented_order():
    # an independent transcription of the order: bits + 2 capacitor normals scaled by
    # sigma / sqrt(units) (bits LSB first, dummy, half), then one offset normal
    a = CARD.adc
    for bits in (1, 4, 8):
        ref = np.random.default_rng(bits)
        z = ref.standard_normal(bits + 2)
        units = np.array([2.0**i for i in range(bits)] + [1.0, 0.5])
        d = draw_sar_mismatch(
            np.random.default_rng(bits), bits, a.cap_mismatch_sigma_rel, a.comparator_offset_sigma_v
        )
        np.testing.assert_array_equal(d.cap_rel_err, z * a.cap_mismatch_sigma_rel / np.sqrt(units))
        assert d.offset_delta_v == a.comparator_offset_sigma_v * ref.standard_normal()
        assert d.bits == bits and not d.cap_rel_err.flags.writeable
        np.testing.assert_array_equal(sar_mismatch_units(bits), units)
        np.testing.assert_array_equal(mismatch_units(bits), units)
    with pytest.raises(ValueError, match="cap_sigma_rel"):
        draw_sar_mismatch(np.random.default_rng(0), 3, -0.1, 0.0)
    with pytest.raises(ValueError, match="for 3 bits cannot apply to a 4-bit"):
        sar_adc_params(CARD, 4).with_mismatch(
            draw_sar_mismatch(np.random.default_rng(0), 3, 0.01, 0.0)
        )


@pytest.mark.parametrize("bits", [1, 3, 8])
def test_netlist_and_surrogate_instances_agree_from_equal_seeds(bits):
    # the fitted nominal stands in as the capacitor-ratio model of the nominal netlist
    nom = analytic_model(sar_adc_params(CARD, bits))
    table = {bits: nom}
    for seed in range(5):
        p = sar_adc_sample(CARD, np.random.default_rng(seed), bits)
        m = sample_instance(table, CARD, np.random.default_rng(seed), bits)
        truth = analytic_model(p)
        # one draw, two routes to the weights: the netlist's capacitors over their total and
        # the surrogate's rescaled nominal fractions; they differ by rounding only (1e-12)
        np.testing.assert_allclose(m.bit_weights_v, truth.bit_weights_v, rtol=1e-12)
        assert m.shift_v == pytest.approx(truth.shift_v, rel=1e-12)
        assert m.input_gain == pytest.approx(truth.input_gain, rel=1e-12)
        assert m.comparator_offset_v == p.comparator_offset_v  # nominal + the same delta
        # the architecture builds both from one call
        rng = np.random.default_rng(seed)
        inst = SAR.sample_instance(table, CARD, rng, bits)
        assert inst.params == p
        np.testing.assert_array_equal(inst.surrogate.bit_weights_v, m.bit_weights_v)
        assert inst.surrogate.comparator_offset_v == m.comparator_offset_v


def test_one_call_replaces_the_copied_generator():
    """What the engine did (a deep copy of the generator, the surrogate's draw from one and
    the netlist's from the other) and ``SAR.sample_instance`` give the same instance and
    leave the generator in the same state."""
    by_bits = models_by_bits(
        {"by_bits": {str(n): SarAdcModel.ideal(n, 1.0).to_dict() for n in range(1, 9)}}
    )
    old_rng, new_rng = np.random.default_rng([3, 1]), np.random.default_rng([3, 1])
    for bits in (8, 4, 8, 2):
        twin = copy.deepcopy(old_rng)
        old_model = sample_instance(by_bits, CARD, old_rng, bits)
        old_params = sar_adc_sample(CARD, twin, bits)
        inst = SAR.sample_instance(by_bits, CARD, new_rng, bits)
        assert inst.params == old_params
        np.testing.assert_array_equal(inst.surrogate.bit_weights_v, old_model.bit_weights_v)
        for key in ("shift_v", "input_gain", "comparator_offset_v"):
            assert getattr(inst.surrogate, key) == getattr(old_model, key)
        assert new_rng.bit_generator.state == old_rng.bit_generator.state
