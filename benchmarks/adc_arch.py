"""ADC architectures side by side: the SAR and the flash at 1, 2, 3 and 4 bits.

Each architecture is characterized in ngspice (its own sweep, through the registry:
``adc_architecture(name).characterize``) on the default card with ``adc.bits`` and
``adc.architecture`` changed, from an empty SPICE cache: the nominal instance and 3
Monte-Carlo instances (``--quick``, the default) or 20 (``--full``). Printed per
architecture and resolution: energy per conversion without skipped MSBs (reference +
supply, J, from the SPICE-fitted nominal), conversion time, the nominal's largest |INL| and
|DNL| and the largest over the Monte-Carlo instances (LSB), and the held-out code
agreement of the surrogate with SPICE (over the nominal and every Monte-Carlo instance).

Usage::

    python benchmarks/adc_arch.py [--full] [--jobs N] [--json benchmarks/results/adc_arch.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BITS = (1, 2, 3, 4)
ARCHITECTURES = ("sar", "flash")


def measure(arch_name: str, bits: int, quick: bool, jobs: int) -> dict[str, Any]:
    """Characterize ``arch_name`` at ``bits`` on the default card; its headline figures."""
    from cosim.card import load_card
    from cosim.characterize.context import CharContext
    from cosim.circuits import device_model
    from cosim.converters import adc_architecture
    from cosim.spice.runner import SpiceRunner

    card = load_card().with_updates(
        {
            "adc": {"architecture": arch_name, "bits": bits},
            "sense_row": {"max_skip_bits": bits - 1},
        }
    )
    arch = adc_architecture(arch_name)
    with tempfile.TemporaryDirectory(prefix="cosim-adc-arch-") as d:
        with SpiceRunner(jobs=jobs, cache_dir=Path(d)) as runner:
            t = time.perf_counter()
            res = arch.characterize(CharContext(card, device_model(card), runner, quick=quick))
            wall = time.perf_counter() - t
    v, m = res.validation, res.surrogate
    e_skip = [float(m.energy_per_conversion_j(k)) for k in range(bits)]
    return {
        "architecture": arch_name,
        "bits": bits,
        "energy_per_conversion_j": e_skip[0],
        "energy_per_conversion_vs_skip_j": e_skip,
        "conversion_time_s": float(m.conversion_time_s),
        "inl_max_lsb": v["inl_max_lsb"],
        "dnl_max_lsb": v["dnl_max_lsb"],
        "mc_inl_max_lsb": v["mc_inl_max_lsb"],
        "mc_dnl_max_lsb": v["mc_dnl_max_lsb"],
        "mc_instances": v["mc_instances"],
        "code_agreement": v["code_agreement"],
        "n_heldout": v["n_heldout"],
        "spice_runs": res.n_spice_runs,
        "wall_s": wall,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--full", action="store_true", help="20 Monte-Carlo instances, not 3")
    ap.add_argument("--jobs", type=int, default=2, help="ngspice workers (default 2)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    rows = []
    print(
        f"{'arch':<6}{'bits':>5}{'E/conv fJ':>11}{'t_conv ns':>11}{'INL':>8}{'DNL':>8}"
        f"{'MC INL':>8}{'MC DNL':>8}{'agree':>8}{'held-out':>9}{'wall s':>8}"
    )
    for name in ARCHITECTURES:
        for bits in BITS:
            r = measure(name, bits, not args.full, args.jobs)
            rows.append(r)
            print(
                f"{name:<6}{bits:>5}{r['energy_per_conversion_j'] * 1e15:>11.1f}"
                f"{r['conversion_time_s'] * 1e9:>11.1f}{r['inl_max_lsb']:>8.3f}"
                f"{r['dnl_max_lsb']:>8.3f}{r['mc_inl_max_lsb']:>8.3f}{r['mc_dnl_max_lsb']:>8.3f}"
                f"{r['code_agreement']:>8.4f}{r['n_heldout']:>9}{r['wall_s']:>8.1f}",
                flush=True,
            )
    if args.json:
        doc = {
            "command": "python benchmarks/adc_arch.py" + (" --full" if args.full else ""),
            "card": "default card, adc.architecture and adc.bits changed",
            "machine": f"{platform.machine()}, {platform.python_version()}",
            "results": rows,
        }
        args.json.write_text(json.dumps(doc, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
