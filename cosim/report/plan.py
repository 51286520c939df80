"""What the study runs: datasets, architectures, grids, epochs and sample counts.

:func:`make_plan` turns the command line (``--quick``, ``--dataset``) into a frozen
:class:`StudyPlan`. Everything an experiment's numbers depend on is in the plan (and so in
every cache key built from it); change a value here and only what depends on it reruns.

Two sizes:

``quick``
    The digits MLP everywhere (or the ``--dataset`` given), few epochs, a 4 x 4 bit grid,
    all 360 digits test samples: minutes on 2 cores.
``full``
    LeNet-5 on Fashion-MNIST for the CNN experiments (the architecture follows the
    dataset's input shape) and the digits MLP for the MLP experiments, the full 8 x 8 bit
    grid with short training (the grid is a relative comparison; see docs/report.md).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from cosim.card import Card
from cosim.converters import adc_architecture_names
from cosim.errors import CosimError

#: Weight/activation precisions the two experiments of Bao et al. single out.
DESIGN_POINT = (4, 3)
HIGH_PRECISION = (8, 8)


@dataclass(frozen=True)
class StudyPlan:
    """Every setting of one study (see the module docstring).

    Attributes
    ----------
    quick
        The reduced study.
    dataset, arch
        Dataset spec and architecture of the main (CNN) experiments 1-5 and 7.
    mlp_dataset
        Dataset of the MLP half of experiment 6 (the digits MLP unless the main dataset is
        itself a feature-vector dataset).
    epochs
        Training epochs of the bit-grid and clip-bound models.
    unipolar_epochs
        Epochs of the unipolar/periphery models on the main dataset (the unipolar schedule
        needs at least 4: search after a quarter, a transition, then training on the grid).
    mlp_epochs
        Epochs of the MLP models of experiment 6.
    batch_size, lr, mlp_batch_size, mlp_lr
        Mini-batch size and peak learning rate (``cosim train``'s defaults per architecture).
    train_limit
        Train on the first N training samples (None: all).
    w_bits, a_bits
        The accuracy grid.
    clip_his
        Activation clip upper bounds ``hi`` of experiment 2 (real units of activation).
    nvw_a_bits
        Activation precision at which ``nvw`` robustness is measured per weight precision.
    nvw_w_bits
        Weight precision at which ``nvw`` robustness is measured per activation precision
        (Bao et al.'s Fig. 3B).
    nva_w_bits
        Weight precisions at which ``nva`` robustness is measured per activation precision.
    nvw_values, nva_values
        Swept variations (normalized: sigma / (G_max - G_min) and sigma / V_ref).
    robust_drop
        Robustness criterion: the largest variation whose mean accuracy over chips stays
        within this many (absolute, 0..1) of the model's noiseless accuracy.
    robust_chips, robust_limit
        Monte-Carlo chips and test samples per robustness point.
    rows
        Array rows (and columns) of experiment 5's what-if cards.
    energy_limit
        Test samples of every energy/area evaluation (experiments 5-7).
    cdf_limit
        Test samples whose activation codes make experiment 4's distributions.
    unipolar_fractions
        Fractions of hidden filters made unipolar in experiment 7.
    proposed_unipolar_mlp, proposed_unipolar_cnn
        Unipolar fraction of the proposed design in experiment 6 (MLP: all filters, as the
        paper's HAR network; CNN: 0.4, the paper's competitive CIFAR-10 point).
    adc_architectures
        ADC plug-ins compared in experiment 8 (each on a variant of the study card with
        ``adc.architecture`` set to it); empty: only the card's own.
    adc_bits
        Activation (and conversion) precisions of experiment 8, at W4.
    seed
        Seed of every training run and chip instance of the experiments run once.
    seeds
        Training seeds of the experiments whose effects are small (headline, clip bound,
        the nvw and nva trends at the design point's precisions, global versus per-layer,
        unipolar fractions): each is repeated per seed and reported with a 95 % interval
        over the seeds (:mod:`cosim.report.stats`).
    headline_epochs
        Epochs of the headline's float, W4A3 and W8A8 models (``cosim train``'s default:
        trained to convergence, unlike the grid's short training).
    headline_limit
        Test samples of the headline's evaluations on the chip.
    """

    quick: bool
    dataset: str
    arch: str
    mlp_dataset: str
    epochs: int
    unipolar_epochs: int
    mlp_epochs: int
    batch_size: int
    lr: float
    mlp_batch_size: int
    mlp_lr: float
    train_limit: int | None
    w_bits: tuple[int, ...]
    a_bits: tuple[int, ...]
    clip_his: tuple[float, ...]
    nvw_a_bits: int
    nva_w_bits: tuple[int, ...]
    nvw_values: tuple[float, ...]
    nva_values: tuple[float, ...]
    robust_drop: float
    robust_chips: int
    robust_limit: int
    rows: tuple[int, ...]
    energy_limit: int
    cdf_limit: int
    unipolar_fractions: tuple[float, ...]
    proposed_unipolar_mlp: float
    proposed_unipolar_cnn: float
    nvw_w_bits: int = DESIGN_POINT[0]
    adc_architectures: tuple[str, ...] = ()
    adc_bits: tuple[int, ...] = (2, 3)
    seed: int = 0
    seeds: tuple[int, ...] = (0,)
    headline_epochs: int = 1
    headline_limit: int = 360

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def has_cnn(self) -> bool:
        """Whether the main experiments run a different network than the MLP ones."""
        return self.arch != "mlp" or self.dataset != self.mlp_dataset


NVW_VALUES = (
    0.0, 0.01, 0.02, 0.03, 0.04, 0.05, 0.065, 0.08, 0.1, 0.13, 0.16, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6
)  # fmt: skip
NVA_VALUES = (
    0.0,
    0.002,
    0.004,
    0.006,
    0.01,
    0.015,
    0.02,
    0.03,
    0.04,
    0.06,
    0.08,
    0.1,
    0.13,
    0.16,
    0.2,
    0.3,
    0.4,
    0.5,
)


def arch_for_shape(shape: tuple[int, ...]) -> str:
    """The architecture for samples of ``shape``: LeNet-5 for 1x28x28, the 6-conv CNN for
    3x32x32, the MLP otherwise.

    Examples
    --------
    >>> arch_for_shape((1, 28, 28)), arch_for_shape((3, 32, 32)), arch_for_shape((561,))
    ('lenet5', 'cnn6', 'mlp')
    """
    shape = tuple(shape)
    if shape == (1, 28, 28):
        return "lenet5"
    if shape == (3, 32, 32):
        return "cnn6"
    return "mlp"


def make_plan(quick: bool, dataset: str | None, input_shape: tuple[int, ...] | None) -> StudyPlan:
    """The plan for ``--quick`` and ``--dataset`` (``None``: digits when quick, else
    Fashion-MNIST); ``input_shape`` is that dataset's sample shape.

    Examples
    --------
    >>> p = make_plan(True, None, (1, 8, 8))
    >>> p.arch, p.dataset, p.w_bits, p.a_bits
    ('mlp', 'digits', (1, 2, 4, 8), (1, 2, 3, 8))
    """
    from cosim.train.command import DEFAULTS

    spec = dataset if dataset is not None else ("digits" if quick else "fashion-mnist")
    arch = arch_for_shape(input_shape) if input_shape is not None else "mlp"
    mlp_dataset = spec if arch == "mlp" else "digits"
    _, batch, lr = DEFAULTS[arch]
    _, mlp_batch, mlp_lr = DEFAULTS["mlp"]
    common: dict[str, Any] = {
        "dataset": spec,
        "arch": arch,
        "mlp_dataset": mlp_dataset,
        "batch_size": batch,
        "lr": lr,
        "mlp_batch_size": mlp_batch,
        "mlp_lr": mlp_lr,
        "nvw_a_bits": DESIGN_POINT[1],
        "nvw_values": NVW_VALUES,
        "nva_values": NVA_VALUES,
        "robust_drop": 0.05,
        "rows": (32, 64, 128, 256, 512),
        "proposed_unipolar_mlp": 1.0,
        "proposed_unipolar_cnn": 0.4,
    }
    if quick:
        mlp_epochs = 10
        return StudyPlan(
            quick=True,
            epochs=mlp_epochs if arch == "mlp" else 1,
            unipolar_epochs=mlp_epochs if arch == "mlp" else 4,
            mlp_epochs=mlp_epochs,
            train_limit=None if arch == "mlp" else 5000,
            w_bits=(1, 2, 4, 8),
            a_bits=(1, 2, 3, 8),
            clip_his=(0.5, 1.0, 2.0, 4.0, 8.0),
            nva_w_bits=(2, 8),
            robust_chips=2,
            robust_limit=500,
            energy_limit=360,
            cdf_limit=1000,
            unipolar_fractions=(0.0, 0.25, 0.5, 0.75, 1.0),
            seeds=(0, 1),
            headline_epochs=mlp_epochs if arch == "mlp" else 1,
            headline_limit=360,
            **common,
        )
    if arch == "mlp":
        epochs = unipolar_epochs = DEFAULTS["mlp"][0]
    elif arch == "lenet5":
        epochs, unipolar_epochs = 2, 5
    else:
        epochs, unipolar_epochs = 2, 4
    return StudyPlan(
        quick=False,
        epochs=epochs,
        unipolar_epochs=unipolar_epochs,
        mlp_epochs=DEFAULTS["mlp"][0],
        train_limit=None,
        w_bits=tuple(range(1, 9)),
        a_bits=tuple(range(1, 9)),
        clip_his=(0.5, 1.0, 2.0, 4.0, 8.0),
        nva_w_bits=(2, 4, 8),
        robust_chips=3,
        robust_limit=2000,
        energy_limit=1000,
        cdf_limit=10000,
        unipolar_fractions=(0.0, 0.2, 0.4, 0.6, 0.8, 1.0),
        adc_architectures=adc_architecture_names(),
        adc_bits=(1, 2, 3, 4),
        seeds=(0, 1, 2),
        headline_epochs=DEFAULTS[arch][0],
        headline_limit=10000,
        **common,
    )


def check_card(plan: StudyPlan, card: Card) -> None:
    """Refuse a study card whose converter cannot run the plan's bit grid (before any
    characterization or training): every activation precision of the grid, the W8A8
    reference of experiments 4 and 5 among them, converts at its own bits.

    Examples
    --------
    >>> from cosim.card import load_card
    >>> flash = load_card().with_updates(
    ...     {"adc": {"architecture": "flash", "bits": 3}, "sense_row": {"max_skip_bits": 2}}
    ... )
    >>> try:
    ...     check_card(make_plan(True, None, (1, 8, 8)), flash)
    ... except CosimError as exc:
    ...     print(str(exc)[:46])
    the study's bit grid needs 8-bit conversions (
    """
    need = max(plan.a_bits)
    if card.adc.bits < need:
        other = [n for n in plan.adc_architectures if n != card.adc.architecture]
        hint = (
            f" (experiment 8 compares the {card.adc.architecture} against it)"
            if card.adc.architecture != "sar" or other
            else ""
        )
        raise CosimError(
            f"the study's bit grid needs {need}-bit conversions (activations up to A{need}, "
            f"the W8A8 reference of experiments 4 and 5), but card '{card.name}' has a "
            f"{card.adc.bits}-bit {card.adc.architecture} ADC; run the study on a card with "
            f"adc.bits >= {need}{hint}"
        )


def check_plan(plan: StudyPlan) -> None:
    """Refuse plans that cannot run the experiments (both reference precisions in the grid)."""
    for w, a in (DESIGN_POINT, HIGH_PRECISION):
        if w not in plan.w_bits or a not in plan.a_bits:
            raise CosimError(f"the bit grid must contain W{w}A{a} (experiments 4 and 5 use it)")
    for b in plan.adc_bits:
        if b not in plan.a_bits or DESIGN_POINT[0] not in plan.w_bits:
            raise CosimError(f"the bit grid lacks W{DESIGN_POINT[0]}A{b} for experiment 8")
    for name in plan.adc_architectures:
        if name not in adc_architecture_names():
            raise CosimError(
                f"unknown ADC architecture {name!r} in the plan; the registered ones are: "
                + ", ".join(adc_architecture_names())
            )
    if plan.nvw_w_bits not in plan.w_bits:
        raise CosimError(f"the bit grid lacks W{plan.nvw_w_bits} for the nvw sweep over A")
    if plan.seed not in plan.seeds:
        raise CosimError(f"the plan's seed {plan.seed} must be one of its seeds {plan.seeds}")
    if plan.nvw_a_bits not in plan.a_bits:
        raise CosimError(f"the bit grid lacks A{plan.nvw_a_bits} for the nvw robustness sweep")
