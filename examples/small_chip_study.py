"""A designer's first study, end to end from Python: my own (small) chip, a network for it,
and how it behaves there.

1. Write a card: the default PCM card shrunk to 32×32 tiles with a 6-bit ADC.
2. Characterize it in ngspice (quick sweeps) into a surrogate library.
3. Train the digits MLP with global W4A3 quantization for that periphery.
4. Evaluate it: ideal (bit-exact), with every non-ideality on 3 chips, and the accuracy
   versus programming variation nvw.

Run: ``python examples/small_chip_study.py [OUT_DIR]`` (about a minute on 2 cores).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np


def main(out_dir: str | Path | None = None, epochs: int = 15) -> dict:
    from cosim.card import load_card
    from cosim.characterize.pipeline import run_characterization
    from cosim.datasets import load_dataset
    from cosim.engine.config import EngineConfig
    from cosim.engine.evaluate import evaluate
    from cosim.engine.sweep import SweepSpec, run_sweep
    from cosim.library import load_library
    from cosim.train.trainer import TrainConfig, train

    out = Path(out_dir) if out_dir is not None else Path(tempfile.mkdtemp(prefix="cosim-"))
    out.mkdir(parents=True, exist_ok=True)
    card = load_card().with_updates(
        {"array": {"rows": 32, "cols": 32}, "adc": {"bits": 6}, "sense_row": {"max_skip_bits": 4}},
        name="my-small-chip",
    )
    (out / "card.toml").write_text(card.to_toml())
    rep = run_characterization(card, out / "library", quick=True, jobs=2, log=print)
    library = load_library(out / "library", card)

    ds = load_dataset("digits")
    cfg = TrainConfig(model="mlp", scheme="global", w_bits=4, a_bits=3, epochs=epochs)
    model = train(cfg, ds, np.random.default_rng(0)).model

    ideal = evaluate(model, library, ds.x_test, ds.y_test, EngineConfig.ideal_mode())
    chip = evaluate(model, library, ds.x_test, ds.y_test, EngineConfig(chips=3))
    sweep = run_sweep(
        model,
        library,
        ds.x_test,
        ds.y_test,
        EngineConfig(chips=2),
        SweepSpec.parse("nvw=0:0.2:0.05"),
    )
    result = {
        "crossbar_max_error_lsb": rep.validation["crossbar"].max_error_lsb,
        "ideal_accuracy": ideal.accuracy_mean,
        "chip_accuracy": chip.accuracy_mean,
        "chip_accuracy_std": chip.accuracy_std,
        "energy_per_inference_j": sum(chip.energy_per_inference_j.values()),
        "nvw_curve": dict(zip(sweep["values"], sweep["accuracy_mean"], strict=True)),
    }
    for k, v in result.items():
        print(f"{k}: {v}")
    return result


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
