"""``--verify-spice K``: re-run K random MAC operations of an evaluation in ngspice.

An operation is (layer, tile, input vector) of chip instance 0, drawn at random from the
very inputs the engine saw: one input vector through one MAC unit (a tile with all its
output columns). ngspice simulates the whole MAC unit for each drawn vector anyway, so
**every output code of every simulated vector is compared**, not one column per draw:
K operations give up to K × (the tile's outputs) codes (32 per 64-column tile of
differential pairs), fewer where two draws hit the same tile and vector. Enough codes for
the identical rate's 95 % interval to resolve a 1 % flip rate cost K ≈ 40, not K ≈ 1000.
For each tile involved, the MAC unit of that
chip is rebuilt as netlists — the tile's *programmed* conductances (with their variation
and faults), its TIAs with their sampled offsets and the engine's transimpedance, each
pair's subtractor with its own resistor mismatch and offset, the sense line and sense TIA —
and simulated in two stages joined by an ideal sample-and-hold:

1. the analog MAC unit in a DC sweep over the chosen input vectors (the ADC samples a
   settled output; its capacitive input draws no DC current), giving each output voltage
   and ``V_sense``;
2. each output's own ADC instance (for the SAR: its capacitor values and comparator
   offset) in its architecture's testbench (:class:`cosim.converters.AdcArchitecture`), a
   transient that converts the SPICE voltages with the skip the sense comparators choose
   from the SPICE ``V_sense``.

The engine's codes for the same operations (read noise off: it is a random draw per read)
are compared code by code; the analog output voltages are compared too, in LSB. They are
the codes and voltages :meth:`cosim.engine.core.Engine.forward` computed for those vectors
(:meth:`~cosim.engine.core.Engine.trace`: the folded path, with its exact solve near the
rails), so the comparison covers the path every evaluation runs; this module reads the
engine through its public methods only.

Two ideal stages of unipolar columns are not in the netlists and are applied to the SPICE
output voltages exactly as the engine applies them: the ``g_min`` reference line's current
at the TIA input (``−gain·I_ref``, the TIA's linear transimpedance from the chain's
description, :meth:`~cosim.engine.core.Engine.chain_stages`, times the reference current
of each vector) and, for partial sums, the ``V_ref/2`` reference the ADC samples
against.

The one-netlist MAC unit (:func:`netlists.mac_unit.mac_unit_netlist`: everything in one
transient) is the reference for this split; on a small tile the two agree to ±1 LSB, the
split leaving out only the ADC's sampling kick on the subtractor output (0.05 LSB there).
A full 64×64 array in one transient would take ngspice hours per operation.
"""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from cosim.card import Card
from cosim.circuits import crossbar_params, opamp_params, subtractor_params
from cosim.engine.config import EngineConfig
from cosim.engine.core import Engine
from cosim.engine.mapping import LayerMap
from cosim.errors import CosimError
from cosim.library import SurrogateLibrary
from cosim.model import Model
from cosim.spice.runner import SpiceJob, SpiceRunner
from cosim.surrogates.sense_row import skips
from netlists.mac_unit import MacAnalogParams, mac_analog_netlist
from netlists.subtractor import SubtractorParams
from netlists.tia import TiaParams


def check_simulable(cfg: EngineConfig) -> None:
    """Refuse an engine configuration ``--verify-spice`` cannot compare like with like: the
    MAC-unit netlist always holds the card's wires and op-amps, so a run with ``ideal``, no
    IR drop or no periphery would be compared with another circuit (a 44 % "agreement" that
    means nothing). No nonlinearity (ohmic devices) and no ADC mismatch (ideal converters)
    are simulated as such."""
    off = [
        flag
        for flag, on in (
            ("--ideal", not cfg.ideal),
            ("--no-ir-drop", cfg.ir_drop),
            ("--no-periphery", cfg.periphery),
        )
        if not on
    ]
    if off:
        raise CosimError(
            f"--verify-spice simulates the card's circuit, wires and op-amps included, so "
            f"it cannot check a run with {', '.join(off)}: drop "
            f"{'it' if len(off) == 1 else 'them'} (--no-nonlinearity and --no-adc-mismatch "
            "are simulated as such)"
        )


def verifiable_layers(maps: list[LayerMap], cfg: EngineConfig) -> list[LayerMap]:
    """The layers whose MAC operations ``--verify-spice`` can rebuild as one MAC-unit netlist:
    those with one row tile, or every layer with digital partial sums (each row tile then
    converts alone). Raises :class:`CosimError` when there is none, or when ``cfg`` leaves
    out what the netlist always simulates (``ideal``, no IR drop, no periphery), so the CLI
    can refuse the flags before it evaluates."""
    check_simulable(cfg)
    eligible = [m for m in maps if m.n_row_tiles == 1 or cfg.partial_sums == "digital"]
    if not eligible:
        raise CosimError(
            "--verify-spice covers layers with one row tile or digital partial "
            "sums; use --partial-sums digital"
        )
    return eligible


def verify_spice(
    model: Model,
    library: SurrogateLibrary,
    x: np.ndarray,
    cfg: EngineConfig,
    k_ops: int,
    jobs: int = 1,
    cache_dir: str | Path | None = None,
    seed: int = 0,
    n_samples: int = 16,
    card: Card | None = None,
    cluster: Any = None,
) -> dict[str, Any]:
    """Compare ``k_ops`` engine MAC operations with ngspice (see the module docstring).

    Parameters
    ----------
    model, library, cfg, card
        What the evaluation ran (read noise is switched off, one chip: instance 0).
    x
        The evaluation's inputs; ``n_samples`` of them (drawn with ``seed``) are traced.
    k_ops
        Operations drawn, each one (layer, tile, input vector): the unit of SPICE work.
    jobs, cache_dir
        ngspice workers and the SPICE cache (``None``: the default cache).
    cluster
        A :class:`cosim.cluster.Cluster`: the ngspice runs are its tasks (``jobs`` unused).
    seed
        Key of the draws of samples and operations.

    Returns
    -------
    dict
        ``n_operations`` (= ``k_ops``); ``codes_compared`` (every output code of every
        distinct simulated (layer, tile, vector): the sum over simulated vectors of the
        tile's outputs) and ``n_codes``, its earlier name, which counted one code per
        operation before every output was compared; ``identical_rate`` and its Wilson 95 %
        interval ``identical_rate_ci95`` (also under their earlier names
        ``identical_fraction`` and ``identical_fraction_ci95``, now over every compared
        code); ``within_1_lsb_fraction``; ``analog_rms_error_lsb`` and
        ``analog_max_error_lsb`` (engine minus SPICE output voltage before the ADC, in
        LSB of the conversion's bits, over the ``analog_outputs_in_range`` outputs whose
        two voltages lie inside the ADC's input range [0, V_ref]: beyond it the code clips
        on both sides and the engine leaves the output's rail unmodelled);
        ``tiles_simulated``, ``vectors_simulated`` and ``adc_instances_simulated`` (the
        ngspice runs); ``adc_instances_ideal`` (ideal converters, as with
        ``--no-adc-mismatch``: no circuit to simulate, so SPICE's voltages go through the
        same ideal transfer); ``per_layer`` (per layer index:
        tiles, vectors, codes compared, identical, within ±1 LSB, identical rate and its
        interval); ``wall_s`` (s); ``engine_path``; ``operations``: one record per
        compared code (was: per drawn operation), with its ``vector`` (row of the layer's
        traced input).
    """
    t0 = time.perf_counter()
    if k_ops < 1:
        raise CosimError("--verify-spice needs K >= 1")
    check_simulable(cfg)
    vcfg = cfg.with_(read_noise=False, chips=1)
    eng = Engine(model, library, vcfg, card)
    card = eng.card
    chip = eng.chip(0)
    rng = np.random.default_rng([seed, 4242])
    idx = rng.choice(len(x), min(n_samples, len(x)), replace=False)
    # what the engine ran on these samples: the folded path's voltages, skips and codes
    trace = eng.trace(chip, np.asarray(x)[np.sort(idx)], np.random.default_rng(0))
    captured = {i: lay.inputs for i, lay in trace.layers.items()}
    states = {s.lmap.index: s for s in chip}
    maps = {m.index: m for m in eng.maps}
    eligible = verifiable_layers(eng.maps, vcfg)
    # draw operations; group by (layer, tile). Every output of a drawn vector is compared,
    # so a repeated (layer, tile, vector) adds no codes and no SPICE work.
    groups: dict[tuple[int, int], dict[str, Any]] = {}
    for _ in range(k_ops):
        lm = eligible[rng.integers(len(eligible))]
        ti = int(rng.integers(len(lm.tiles)))
        vec = int(rng.integers(captured[lm.index].shape[0]))
        # the output column the draw once chose: still drawn, so a seed picks the same
        # (layer, tile, vector) operations as before every output was compared
        rng.integers(len(lm.tiles[ti].outputs))
        g = groups.setdefault((lm.index, ti), {"vecs": []})
        if vec not in g["vecs"]:
            g["vecs"].append(vec)
    # engine side and netlists
    jobs_list, contexts = [], []
    for (li, ti), g in groups.items():
        lm = maps[li]
        st = states[li]
        ts = st.tiles[ti]
        t = ts.tile
        per = lm.periphery
        cols = captured[li][np.array(g["vecs"])]
        split = lm.n_row_tiles > 1 and vcfg.partial_sums == "digital"
        ob = split or lm.signed  # offset binary: sampled against V_ref/2
        v_tab = np.arange(1 << per.in_bits) * per.v_in_lsb
        u = eng.crossbar.drive(v_tab)[cols] if vcfg.nonlinearity else v_tab[cols]
        m_tia, bias_tia = ts.tia_transfer()
        # the g_min reference line's current (zero except on unipolar columns)
        i_ref = u[:, t.f0 : t.f1] @ (ts.m_eff - m_tia)[t.data_rows] + (ts.bias_current - bias_tia)
        group = trace.layers[li].group(t.col_tile, t.row_tile if split else -1)
        r_t, bits = group.r_t_ohm, group.bits
        chain = eng.chain_stages(st, t.col_tile, [ts], r_t, ob)
        # what the engine adds to a unipolar column's TIA output: -gain * I_ref, + V_ref/2
        v_adj = np.zeros((cols.shape[0], len(t.outputs)))
        uni = ~chain.pair
        v_adj[:, uni] = -chain.tia_gain_ohm[: chain.n_out][uni] * i_ref[:, chain.p_col[uni]]
        v_adj[:, uni] += chain.ref_shift_v
        rt_key = t.row_tile if split else -1
        vecs = np.array(g["vecs"])
        v_eng = group.v_out[vecs].astype(np.float64)
        codes_eng = group.codes[vecs]
        skip = None if group.skip is None else group.skip[vecs]
        th = None
        if skip is not None:
            th = eng.group_thresholds(lm, st, [ts], per.r_t_ohm, bits)
        # the same MAC unit as a netlist
        v_rows = np.zeros((cols.shape[0], card.array.rows))
        v_rows[:, t.data_rows] = v_tab[cols[:, t.f0 : t.f1]]
        v_rows[:, t.bias_rows] = t.bias_polarity * card.dac.v_read_v
        opamp = opamp_params(card)
        ratio = per.r_t_ohm / card.tia.r_feedback_ohm
        sense_tia = (
            TiaParams(card.sense_row.r_feedback_ohm * ratio * r_t / per.r_t_ohm, opamp)
            if card.sense_row.enabled
            else None
        )
        layout = tuple((p, q) for _, p, q in t.outputs)
        gain = card.subtractor.gain_v_per_v
        p = MacAnalogParams(
            crossbar_params(card),
            TiaParams(r_t / gain, opamp),  # pair columns: the subtractor supplies the gain
            sense_tia,
            subtractor_params(card),
            layout,
            TiaParams(r_t, opamp),
        )
        subs: list[SubtractorParams | None] = []
        sub_off: list[float] = []
        for m in st.sub_models[t.col_tile]:
            if m is None:
                subs.append(None)
                sub_off.append(0.0)
            else:
                subs.append(SubtractorParams(m.r1_ohm, m.r2_ohm, m.r3_ohm, m.r4_ohm, opamp))
                sub_off.append(m.opamp.offset_v)
        offs = ts.tia_offset_v.copy()
        if card.sense_row.enabled:
            offs[-1] = st.sense_offset_v
        text, vectors = mac_analog_netlist(
            p,
            eng.device if vcfg.nonlinearity else _ohmic(eng.device),
            ts.g,
            v_rows,
            offs,
            np.array(sub_off),
            title=f"cosim verify layer {li} tile {ti}",
            subtractors=subs,
            sub_ref_v=card.adc.v_ref_v / 2 if ob else 0.0,
        )
        jobs_list.append(SpiceJob(text, vectors, 1800.0, f"verify layer {li} tile {ti}"))
        contexts.append(
            dict(
                lm=lm,
                st=st,
                ts=ts,
                g=g,
                split=split,
                bits=bits,
                rt_key=rt_key,
                th=th,
                v_eng=v_eng,
                v_adj=v_adj,
                codes_eng=codes_eng,
                skip_eng=skip,
            )
        )
    cache: Any = cache_dir if cache_dir is not None else ...
    with SpiceRunner(jobs=jobs, cache_dir=cache, cluster=cluster) as runner:
        results = runner.run(jobs_list, desc="verify: MAC units")
        # stage 2: each ADC instance converts its SPICE voltages
        conv: dict[int, list[tuple[int, int, int, float, int]]] = defaultdict(list)
        adc_objs: dict[int, Any] = {}
        rows_out = []
        for gi, (ctx, res) in enumerate(zip(contexts, results, strict=True)):
            n_v = len(ctx["g"]["vecs"])
            t = ctx["ts"].tile
            v_sp = np.stack(
                [np.asarray(res[f"out{k}"])[:n_v] for k in range(len(t.outputs))], axis=1
            )
            v_sp = v_sp + ctx["v_adj"]  # the ideal stages the netlists leave out
            skip_sp = np.zeros(n_v, dtype=np.int64)
            if ctx["th"] is not None:
                vs = np.asarray(res["vsense"])[:n_v]
                skip_sp = skips(vs, ctx["th"])
            per_adc = card.adc.columns_per_adc
            adcs = ctx["st"].adcs[(ctx["rt_key"], t.col_tile)]
            for vi in range(n_v):  # every output of every simulated vector
                for oj in range(len(t.outputs)):
                    adc = adcs[oj // per_adc]
                    adc_objs[id(adc)] = adc
                    conv[id(adc)].append((gi, vi, oj, float(v_sp[vi, oj]), int(skip_sp[vi])))
            rows_out.append(v_sp)
        adc_jobs, adc_keys, ideal_keys = [], [], []
        arch = eng.adc_arch  # each instance's testbench, from the card's ADC architecture
        for key, items in conv.items():
            params = eng.adc_params.get(key)
            vin = np.array([it[3] for it in items])
            sk = np.array([it[4] for it in items])
            if params is None:
                # an ideal converter (--no-adc-mismatch, --ideal, --nva): no circuit to
                # simulate; SPICE's voltages go through the same ideal transfer
                ideal_keys.append(key)
                continue
            adc_jobs.append(
                SpiceJob(
                    arch.testbench_netlist(params, vin, sk),
                    tuple(arch.testbench_vectors()),
                    600.0,
                    "verify ADC",
                )
            )
            adc_keys.append(key)
        adc_res = runner.run(adc_jobs, desc="verify: ADCs") if adc_jobs else []
    ident = within1 = total = 0
    v_err = []
    details = []
    # per layer: codes compared, identical, within ±1 LSB
    layer_counts: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0])
    spice_codes = [
        (key, arch.decode_testbench(res, eng.adc_params[key], len(conv[key]))["codes"])
        for key, res in zip(adc_keys, adc_res, strict=True)
    ]
    for key in ideal_keys:
        items = conv[key]
        vin = np.array([it[3] for it in items])
        sk = np.array([it[4] for it in items])
        spice_codes.append((key, np.asarray(adc_objs[key].convert(vin, sk))))
    for key, codes_sp in spice_codes:
        items = conv[key]
        adc = adc_objs[key]
        for (gi, vi, oj, v_spice, sk_spice), c_sp in zip(items, codes_sp, strict=True):
            ctx = contexts[gi]
            c_eng = int(ctx["codes_eng"][vi, oj])
            # the engine's own instance converting SPICE's voltage: equal to SPICE's code
            # means a differing code comes from the analog voltage alone (a transition lies
            # between the two voltages), not from the converter model
            c_model = int(np.asarray(adc.convert(np.array([v_spice]), np.array([sk_spice])))[0])
            lsb = card.adc.v_ref_v / 2 ** ctx["bits"]
            v_engine = float(ctx["v_eng"][vi, oj])
            # the voltage error counts inside the ADC's input range only: beyond it the
            # code clips on both sides, and the engine does not model an output past the
            # range up to the op-amp's rail (1.26 V against SPICE's 1.10 V, same code)
            if 0.0 <= min(v_engine, v_spice) and max(v_engine, v_spice) <= card.adc.v_ref_v:
                v_err.append((v_engine - v_spice) / lsb)
            same, near = int(c_eng == int(c_sp)), int(abs(c_eng - int(c_sp)) <= 1)
            ident += same
            within1 += near
            total += 1
            counts = layer_counts[ctx["lm"].index]
            counts[0] += 1
            counts[1] += same
            counts[2] += near
            details.append(
                {
                    "layer": ctx["lm"].index,
                    "tile": [ctx["ts"].tile.row_tile, ctx["ts"].tile.col_tile],
                    "vector": int(ctx["g"]["vecs"][vi]),
                    "output": oj,
                    "engine_code": c_eng,
                    "spice_code": int(c_sp),
                    "v_engine": float(ctx["v_eng"][vi, oj]),
                    "v_spice": v_spice,
                    "skip_spice": sk_spice,
                    "engine_adc_code_at_spice_voltage": c_model,
                    "partial_sum": bool(ctx["split"]),
                }
            )
    ve = np.asarray(v_err)
    n_vectors = sum(len(g["vecs"]) for g in groups.values())
    per_layer = []
    for li in sorted(layer_counts):
        n, k_same, k_near = layer_counts[li]
        per_layer.append(
            {
                "layer": li,
                "tiles_simulated": sum(1 for gl, _ in groups if gl == li),
                "vectors_simulated": sum(
                    len(g["vecs"]) for (gl, _), g in groups.items() if gl == li
                ),
                "codes_compared": n,
                "identical": k_same,
                "within_1_lsb": k_near,
                "identical_rate": k_same / n,
                "identical_rate_ci95": list(wilson_interval(k_same, n)),
            }
        )
    rate = ident / max(total, 1)
    ci95 = list(wilson_interval(ident, total))
    return {
        "n_operations": k_ops,
        # every output code of every simulated vector (was: one code per operation)
        "n_codes": total,
        "codes_compared": total,
        "identical_fraction": rate,
        "identical_fraction_ci95": ci95,
        "identical_rate": rate,
        "identical_rate_ci95": ci95,
        "within_1_lsb_fraction": within1 / max(total, 1),
        "analog_rms_error_lsb": float(np.sqrt(np.mean(ve**2))) if ve.size else 0.0,
        "analog_max_error_lsb": float(np.max(np.abs(ve))) if ve.size else 0.0,
        "analog_outputs_in_range": int(ve.size),
        "tiles_simulated": len(jobs_list),
        "vectors_simulated": n_vectors,
        "adc_instances_simulated": len(adc_jobs),
        # ideal converters (no ADC mismatch): SPICE's voltages through the ideal transfer
        "adc_instances_ideal": len(ideal_keys),
        "per_layer": per_layer,
        "wall_s": time.perf_counter() - t0,
        # the engine's side: what Engine.forward computed (Engine.trace), not a re-evaluation
        "engine_path": "folded",
        "operations": details,
    }


def wilson_interval(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval of a binomial fraction ``k / n`` (95 % for the default ``z``).

    Examples
    --------
    >>> [round(x, 4) for x in wilson_interval(49, 50)]
    [0.895, 0.9965]
    >>> wilson_interval(12, 12)[1], wilson_interval(0, 12)[0]
    (1.0, 0.0)
    """
    if n <= 0:
        return (0.0, 1.0)
    p = k / n
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    # at k = 0 or k = n the bound is exactly 0 or 1; rounding must not put it inside k / n
    lo = 0.0 if k == 0 else max(0.0, float(mid - half))
    hi = 1.0 if k == n else min(1.0, float(mid + half))
    return (lo, hi)


def _ohmic(device):
    return device.as_ohmic()
