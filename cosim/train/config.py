"""What defines a training run: :class:`TrainConfig`, checked once when it is made."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from cosim.errors import CosimError
from cosim.quant import DEFAULT_HI, DEFAULT_W_MAX, GridError, check_bits
from cosim.train.network import (
    IMPORTED,
    UNIPOLAR_SCOPES,
    check_architecture,
    has_convolutions,
)
from cosim.train.optim import OPTIMIZERS
from cosim.train.scheme import SCHEMES


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run (the seed included).

    Parameters
    ----------
    model
        Architecture: ``mlp``, ``lenet5`` or ``cnn6`` (``imported``: a network imported from
        ONNX, passed to :func:`~cosim.train.trainer.train` as ``init``).
    scheme
        ``float``, ``per-layer``, ``global`` or ``fixed`` (Bao et al.'s fixed ranges: inputs
        in ``[0, 1]``, hidden activations clipped at ``hi``, weights at ``+-w_max``).
    w_bits, a_bits
        Weight and activation precision, 1..8 (ignored by ``float``).
    in_bits
        Input DAC precision, 1..8.
    b_bits
        Bias precision (sign included); ``None``: ``w_bits + 2``.
    epochs, batch_size
        Training length and mini-batch size.
    optimizer, lr, momentum
        ``adam`` or ``sgd`` (momentum); peak learning rate (cosine schedule, one epoch of
        warm-up capped at 200 steps).
    unipolar_fraction
        Fraction of the candidate filters (``unipolar_scope``) made unipolar, 0..1.
    unipolar_scope
        Which filters the unipolar search chooses among and the fraction counts:
        ``hidden`` (every hidden filter) or ``conv`` (the convolution filters only, as
        García-Redondo et al. count them; a model with convolutions only).
    hi, w_max
        Target (initial) activation and weight ranges.
    range_penalty, unipolar_penalty
        Base strengths of the global scheme's range loss and of the unipolar loss.
    control_fraction
        Fraction of the epochs during which global control updates the ranges.
    seed
        Seed of the generator (recorded; :func:`~cosim.train.trainer.train` takes the
        generator itself).
    act_l1
        Strength of the activation L1 term, >= 0 (0: off, and then left out of
        :meth:`to_dict` so existing configurations keep their keys): adds
        ``act_l1 * sum_l sum_j y_lj / hi_l`` averaged over the batch, the hidden activations
        in units of their layer's range per sample (docs/training.md). Useful values
        1e-5 .. 1e-2 (LeNet-5 has ~6500 hidden activations per sample, the digits MLP ~100).
    """

    model: str = "mlp"
    scheme: str = "global"
    w_bits: int = 4
    a_bits: int = 3
    in_bits: int = 8
    b_bits: int | None = None
    epochs: int = 30
    batch_size: int = 64
    optimizer: str = "adam"
    lr: float = 2e-3
    momentum: float = 0.9
    unipolar_fraction: float = 0.0
    hi: float = DEFAULT_HI
    w_max: float = DEFAULT_W_MAX
    range_penalty: float = 1.0
    unipolar_penalty: float = 1.0
    control_fraction: float = 0.6
    seed: int = 0
    act_l1: float = 0.0
    unipolar_scope: str = "hidden"

    def __post_init__(self) -> None:
        if self.model != IMPORTED:  # an imported network (cosim import) brings its layers
            check_architecture(self.model)
        if self.unipolar_scope not in UNIPOLAR_SCOPES:
            raise CosimError(
                f"unknown --unipolar-scope {self.unipolar_scope!r}: choose one of "
                f"{', '.join(UNIPOLAR_SCOPES)}"
            )
        if (
            self.unipolar_scope == "conv"
            and self.model != IMPORTED
            and not has_convolutions(self.model)
        ):
            raise CosimError(
                f"--unipolar-scope conv needs a model with convolution layers; {self.model} "
                "has none: use --unipolar-scope hidden or a convolutional model"
            )
        if self.unipolar_scope != "hidden" and self.unipolar_fraction == 0:
            raise CosimError(
                f"--unipolar-scope {self.unipolar_scope} has nothing to choose with "
                "--unipolar-fraction 0: set a fraction above 0 or leave the scope at hidden"
            )
        if self.scheme not in SCHEMES:
            raise CosimError(f"unknown scheme {self.scheme!r}: choose one of {', '.join(SCHEMES)}")
        if self.optimizer not in OPTIMIZERS:
            raise CosimError(
                f"unknown optimizer {self.optimizer!r}: choose one of {', '.join(OPTIMIZERS)}"
            )
        check_bits(self.w_bits, "--w-bits")
        check_bits(self.a_bits, "--a-bits")
        check_bits(self.in_bits, "--in-bits")
        if self.b_bits is not None:
            check_bits(self.b_bits, "--b-bits", 2, 16)
        if not 0.0 <= self.unipolar_fraction <= 1.0:
            raise GridError(f"--unipolar-fraction {self.unipolar_fraction} must lie in 0..1")
        for name in ("epochs", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise CosimError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("lr", "hi", "w_max"):
            v = float(getattr(self, name))
            if not (math.isfinite(v) and v > 0):
                raise CosimError(f"{name} must be a positive number, got {v}")

        if not 1e-3 <= float(self.hi) <= 1e3:
            # far below, the range losses' 1 / hi**2 overflows (a ZeroDivisionError at 1e-300,
            # a "diverged" blamed on --lr at 1e-30)
            raise CosimError(
                f"hi (--hi) must lie in [0.001, 1000], got {self.hi}: it is the activation "
                "range (default 2)"
            )
        a = float(self.act_l1)
        if not (math.isfinite(a) and a >= 0):
            raise CosimError(
                f"act_l1 (--act-l1) must be a finite number >= 0, got {self.act_l1}; 0 turns the "
                "activation L1 term off, 1e-5 .. 1e-2 are useful strengths"
            )

    def to_dict(self) -> dict[str, Any]:
        """All fields; fields added later are left out at their default (cache keys of
        existing configurations stay as they were)."""
        d = asdict(self)
        if d["act_l1"] == 0.0:
            del d["act_l1"]
        if self.unipolar_scope == "hidden":
            del d["unipolar_scope"]
        return d


#: Named training recipes: TrainConfig fields a paper's conditions fix (``cosim train
#: --recipe NAME``, or ``StudyContext.model(..., **RECIPES[NAME])`` in the study).
#:
#: ``bao``: Bao et al. 2022 (Front. Electron. 3:954661, section 2): fixed ranges (inputs in
#: [0, 1], activations clipped at ``hi``, weights clipped at +-0.25), SGD, learning rate
#: 0.01, batch 200. Where we differ: the paper states neither momentum nor a schedule; we
#: keep the trainer's momentum 0.9 and cosine schedule with warm-up (plain SGD at 0.01 for
#: the study's 2 epochs would be far from the paper's 300 training cycles), and the paper's
#: 300 cycles are the caller's ``epochs``.
RECIPES: dict[str, dict[str, Any]] = {
    "bao": {
        "scheme": "fixed",
        "optimizer": "sgd",
        "lr": 0.01,
        "batch_size": 200,
        "w_max": 0.25,
    },
}


def recipe(name: str) -> dict[str, Any]:
    """The TrainConfig fields of recipe ``name`` (a copy), or a CosimError naming the
    known ones.

    Examples
    --------
    >>> recipe("bao")["scheme"]
    'fixed'
    """
    if name not in RECIPES:
        raise CosimError(f"unknown recipe {name!r}: choose one of {', '.join(RECIPES)}")
    return dict(RECIPES[name])
