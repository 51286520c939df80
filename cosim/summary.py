"""One readable summary of a main-job run directory (``scripts/main.sh``).

``python -m cosim.summary DIR`` reads ``characterize.json``, ``train.json``,
``evaluate-ideal.json`` and ``evaluate.json`` from ``DIR`` and prints what a designer wants to
know first: how faithful the surrogates are, how accurate the network is in software,
ideally mapped and on the chip with every non-ideality, how well the engine agrees with
ngspice, and the energy and area per inference.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def _load(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise SystemExit(f"summary: {path} is missing; run scripts/main.sh first")
    return json.loads(path.read_text("utf-8"))


def summarize(run_dir: str | Path) -> str:
    """The summary text of a run directory."""
    d = Path(run_dir)
    ch = _load(d / "characterize.json")
    tr = _load(d / "train.json")
    ide = _load(d / "evaluate-ideal.json")["evaluation"]
    ev_doc = _load(d / "evaluate.json")
    ev = ev_doc["evaluation"]
    v = ch["validation"]
    lines = ["", "=" * 78, "cosim main job: summary", "=" * 78]
    lines.append(
        f"SPICE characterization ({ch['wall_s']:.0f} s, ngspice {ch['ngspice_version']}), "
        "held-out errors in ADC LSB:"
    )
    for b in ("crossbar", "tia", "subtractor"):
        lines.append(
            f"  {b:<11} rms {v[b]['rms_error_lsb']:.3f}  max {v[b]['max_error_lsb']:.3f}"
            f"  ({v[b]['n_heldout']} held-out)"
        )
    # the converter's block (its name follows the card's ADC architecture)
    adc = next(b for b, x in v.items() if isinstance(x, dict) and "code_agreement" in x)
    lines.append(f"  {adc:<11} code agreement {v[adc]['code_agreement']:.4f}")
    if "sense_row" in v:
        lines.append(f"  sense_row   bound violations {v['sense_row']['bound_violations']}")
    acc = tr.get("test_accuracy", tr.get("metrics", {}).get("test_accuracy"))
    lines.append("")
    lines.append("accuracy on the digits test set:")
    if acc is not None:
        lines.append(f"  trained quantized model (software)     {acc * 100:6.2f} %")
    lines.append(f"  engine, ideal mode (bit-exact check)   {ide['accuracy_mean'] * 100:6.2f} %")
    lines.append(
        f"  engine, every non-ideality on          {ev['accuracy_mean'] * 100:6.2f} % "
        f"± {ev['accuracy_std'] * 100:.2f} ({len(ev['accuracy_per_chip'])} chips)"
    )
    if "verify_spice" in ev_doc:
        vs = ev_doc["verify_spice"]
        lines.append(
            f"engine vs ngspice on {vs['n_codes']} ADC codes "
            f"({vs['n_operations']} random MAC operations, every output):"
        )
        lo, hi = vs["identical_fraction_ci95"]
        lines.append(
            f"  {vs['identical_fraction'] * 100:.1f} % identical (95 % interval "
            f"{lo * 100:.1f}-{hi * 100:.1f} %), "
            f"{vs['within_1_lsb_fraction'] * 100:.1f} % within ±1 LSB"
        )
    e = ev["energy_per_inference_j"]
    et = sum(e.values())
    lines.append(
        f"energy per inference: {et * 1e9:.3f} nJ; area: "
        f"{ev['area_m2']['total_m2'] * 1e6:.4f} mm² ({ev['area_m2']['periphery']} "
        "periphery)"
    )
    lines.append("=" * 78)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    print(summarize(args[0] if args else "cosim-run"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
