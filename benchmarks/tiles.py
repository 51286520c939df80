"""Cost of one tile's exact transfer against array size (issue 14, items 3 and 5).

For n = 64, 128, 256, 512 rows (n + 1 lines: the sense line, as the engine programs a tile)
on the default card (R_wl = R_bl = 1 Ω, R_drv = 100 Ω, devices on the 16 levels of
0.1–25 µS), times :meth:`cosim.nodal.CrossbarNetwork.transfer_full` with the row-by-row
block elimination (``blocks``) and with nested dissection (``nested``, the default from
128×128 devices on: ``cosim.nodal.NESTED_MIN``), each the fastest of ``--repeat`` runs on one
BLAS thread (with the machine's load average before and after), and the largest difference
between the two: per entry of ``m`` relative to its column's full-scale transfer
and for ``y`` relative to its largest diagonal entry (both exact: rounding only). Writes a
JSON and a PNG and prints the table.

With ``--spice N`` it also checks an N×N tile with its sense line (ohmic devices on the
card's levels, one column at g_max, two held-out input vectors) in ngspice against ``V @ m``
from both transfers: the largest error in LSB of the default card's 8-bit ADC, the IR drop
(largest ideal-minus-ngspice column current, LSB) and ngspice's wall time, stored under
``"spice"`` (the test suite runs the same check at 96×96; 128×128 takes ngspice ~100 s).
Without it, a ``"spice"`` entry already in ``--out`` is kept.

Usage::

    python benchmarks/tiles.py [--repeat 3] [--spice 128] [--out benchmarks/results/tiles.json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

SIZES = (64, 128, 256, 512)


def _time(net, method: str, repeat: int) -> float:
    best = math.inf
    for _ in range(repeat):
        t = time.perf_counter()
        net.transfer_full(method=method)
        best = min(best, time.perf_counter() - t)
    return best


def measure(sizes: tuple[int, ...], repeat: int) -> list[dict]:
    """One row per size: times (s) of both methods and their largest differences."""
    from cosim.blas import single_thread
    from cosim.card import load_card
    from cosim.nodal import CrossbarNetwork

    card = load_card()
    levels = np.linspace(card.device.g_min_s, card.device.g_max_s, 2**card.device.level_bits)
    rng = np.random.default_rng(0)
    rows = []
    for n in sizes:
        g = rng.choice(levels, (n, n + 1))
        net = CrossbarNetwork(
            g, card.array.r_wire_wl_ohm, card.array.r_wire_bl_ohm, card.dac.r_out_ohm, True
        )
        with single_thread():
            # the block elimination takes ~7 s at 512: one run is enough to rank it there
            t_blk = _time(net, "blocks", 1 if n >= 512 else repeat)
            t_nd = _time(net, "nested", repeat)
        m0, y0 = net.transfer_full(method="blocks")
        m1, y1 = net.transfer_full(method="nested")
        rows.append(
            {
                "n": n,
                "blocks_s": t_blk,
                "nested_s": t_nd,
                "speedup": t_blk / t_nd,
                "max_m_err_rel_full_scale": float(np.max(np.abs(m1 - m0) / m0.sum(axis=0))),
                "max_y_err_rel_diag": float(np.max(np.abs(y1 - y0)) / np.max(np.diagonal(y0))),
            }
        )
        print(
            f"{n:4d}x{n + 1:<4d} blocks {t_blk:8.4f} s  nested {t_nd:8.4f} s  "
            f"x{t_blk / t_nd:5.1f}  m err {rows[-1]['max_m_err_rel_full_scale']:.1e}  "
            f"y err {rows[-1]['max_y_err_rel_diag']:.1e}",
            flush=True,
        )
    return rows


def spice_check(n: int) -> dict:
    """An n×n tile (with its sense line) in ngspice against both transfers (see above)."""
    import tempfile

    from cosim.card import load_card
    from cosim.circuits import crossbar_params, device_model
    from cosim.nodal import CrossbarNetwork
    from cosim.spice import SpiceJob, SpiceRunner
    from netlists.crossbar import column_currents, crossbar_netlist, crossbar_vectors

    card = load_card()
    dev = device_model(card.with_updates({"device": {"technology": "ideal"}}))
    p = crossbar_params(card, n, n, sense=True)
    rng = np.random.default_rng(128)
    g = dev.level_conductance(rng.integers(0, dev.n_levels, (n, n)))
    g[:, 0] = dev.g_max_s
    v_fs = card.dac.v_read_v
    v = np.stack(
        [
            rng.uniform(0, v_fs, n),
            np.where(rng.random(n) < 0.7, 0.0, rng.uniform(0, v_fs, n)),
        ]
    )
    job = SpiceJob(crossbar_netlist(p, dev, g, v), crossbar_vectors(p), timeout_s=900)
    with tempfile.TemporaryDirectory() as tmp, SpiceRunner(jobs=1, cache_dir=Path(tmp)) as runner:
        t = time.perf_counter()
        (res,) = runner.run([job], desc=f"{n}x{n} crossbar")
        t_spice = time.perf_counter() - t
    i_spice = column_currents(res, p, v.shape[0])
    lsb_a = card.adc.v_ref_v / 2**card.adc.bits / card.tia.r_feedback_ohm
    net = CrossbarNetwork(
        p.with_g_matrix(g), p.r_wire_wl_ohm, p.r_wire_bl_ohm, p.r_driver_ohm, sense_first=True
    )
    out: dict = {"n": n, "n_lines": net.n_lines, "inputs": int(v.shape[0])}
    for method in ("blocks", "nested"):
        m, _ = net.transfer_full(method=method)
        out[f"{method}_max_err_lsb"] = float(np.max(np.abs(v @ m - i_spice)) / lsb_a)
    out["ir_drop_max_lsb"] = float(np.max(np.abs(v @ p.with_g_matrix(g) - i_spice)) / lsb_a)
    out["ngspice_wall_s"] = t_spice
    print(
        f"ngspice {n}x{n}: blocks err {out['blocks_max_err_lsb']:.1e} LSB, nested err "
        f"{out['nested_max_err_lsb']:.1e} LSB, IR drop {out['ir_drop_max_lsb']:.1f} LSB, "
        f"ngspice {t_spice:.0f} s",
        flush=True,
    )
    return out


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cosim.fileio import atomic_path, png_metadata

    n = [r["n"] for r in rows]
    fig, ax = plt.subplots(figsize=(5.5, 4))
    ax.loglog(n, [r["blocks_s"] for r in rows], "o-", label="row-by-row block elimination")
    ax.loglog(n, [r["nested_s"] for r in rows], "s-", label="nested dissection")
    ax.loglog(n, [0.1 if k == 256 else 1.0 if k == 512 else np.nan for k in n], "k_", ms=14)
    ax.set_xticks(n, [str(k) for k in n])
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # only the sizes
    ax.set_xlabel("rows n (n + 1 lines with the sense line)")
    ax.set_ylabel("one tile's transfer (s, 1 BLAS thread)")
    ax.set_title("Exact crossbar transfer cost (default card)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, metadata=png_metadata())
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=3, help="timed runs of each (the fastest)")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/tiles.json"))
    ap.add_argument("--spice", type=int, metavar="N", help="also check an NxN tile against ngspice")
    ap.add_argument(
        "--spice-only", action="store_true", help="only the ngspice check (keep the timings)"
    )
    args = ap.parse_args(argv)
    old = json.loads(args.out.read_text()) if args.out.exists() else {}
    if args.spice_only and ("rows" not in old or not args.spice):
        ap.error("--spice-only needs --spice N and an --out with timings")
    result = {"command": old.get("command"), "rows": old.get("rows")}
    for key in ("load_before", "load_after"):
        if key in old:
            result[key] = old[key]
    if not args.spice_only:
        result["command"] = f"python benchmarks/tiles.py --repeat {args.repeat}"
        result["load_before"] = os.getloadavg()
        result["rows"] = measure(SIZES, args.repeat)
        result["load_after"] = os.getloadavg()
    if args.spice:
        result["spice"] = {
            "command": f"python benchmarks/tiles.py --spice {args.spice}",
            **spice_check(args.spice),
        }
    elif "spice" in old:
        result["spice"] = old["spice"]
    rows = result["rows"]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    plot(rows, args.out.with_suffix(".png"))
    print(f"wrote {args.out} and {args.out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
