"""Run the whole design-space study and write ``report.md``, ``report.json`` and figures.

Steps: resolve the surrogate library (``--library``, a matching ``DIR/library`` from an
earlier run, or a new characterization of the card into ``DIR/library``); load the
datasets and hash their content; build the plan and every experiment's tasks; read back
what the cache under ``DIR/cache`` already holds; run the rest (one progress bar over the
whole study); assemble the experiments; draw the figures; write the report.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cosim.card import Card
from cosim.errors import LibraryError
from cosim.report.tasks import Task


@dataclass(frozen=True)
class StudyOptions:
    """What ``cosim report`` was asked for.

    Attributes
    ----------
    out
        Output directory (report, figures, ``cache/``, and ``library/`` when characterized).
    card
        Hardware card TOML (None: the library's card, or the default card).
    dataset
        Dataset spec of the main experiments (None: digits when quick, else Fashion-MNIST).
    quick
        The reduced study (and a quick characterization when one is needed).
    library
        An existing surrogate library directory (None: characterize into ``out/library``).
    jobs
        Worker processes for training/evaluation and ngspice workers.
    scheduler
        A Dask scheduler's address (:func:`cosim.cluster.scheduler_address`): the study's
        tasks and any characterization run there instead (``jobs`` unused).
    command
        The command line, recorded in the report.
    """

    out: Path
    card: Path | None = None
    dataset: str | None = None
    quick: bool = False
    library: Path | None = None
    jobs: int = 1
    command: str = "cosim report"
    scheduler: str | None = None


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def resolve_library(
    opts: StudyOptions,
    log: Callable[[str], None],
    check: Callable[[Card], None] | None = None,
    cluster: Any = None,
) -> tuple[Path, Card, dict[str, Any]]:
    """``(library path, study card, library info)``; characterizes when needed.

    With ``--library`` and ``--card`` together the card must be a what-if variant of the
    library's (:func:`cosim.engine.core.what_if_card`). Without ``--library``, an earlier
    ``DIR/library`` of the same card is reused when it is a full characterization or the
    study is quick; otherwise the card is characterized (the SPICE cache makes a rerun
    cheap). ``check(card)`` runs on the study card before any characterization, which
    runs on ``cluster`` when one is given.
    """
    from cosim.card import load_card
    from cosim.engine.core import what_if_card
    from cosim.library import load_library

    t0 = time.perf_counter()
    if opts.library is not None:
        lib = load_library(opts.library)
        card = what_if_card(lib, load_card(opts.card)) if opts.card is not None else lib.card
        path, how = Path(opts.library), "given"
        if check is not None:
            check(card)
    else:
        card = load_card(opts.card)
        if check is not None:
            check(card)
        path = opts.out / "library"
        lib, how = _reused_or_characterized(
            card, path, opts.quick, opts.jobs, log, f"card '{card.name}'", cluster
        )
    assert lib is not None  # given, reused or characterized above
    info = {
        "path": str(path),
        "how": how,
        "quick": bool(lib.meta.get("quick")),
        "card_hash": lib.meta.get("card_hash"),
        "validated_array": f"{lib.card.array.rows}x{lib.card.array.cols}",
        "ngspice_version": lib.meta.get("ngspice_version"),
        "blocks": sorted(lib.surrogates),
        "seconds": time.perf_counter() - t0,
    }
    return path, card, info


def _reused_or_characterized(
    card: Card,
    path: Path,
    quick: bool,
    jobs: int,
    log: Callable[[str], None],
    what: str,
    cluster: Any = None,
) -> tuple[Any, str]:
    """``(library, "reused" or "characterized")``: the library at ``path`` when it loads for
    ``card`` (and is a full one unless ``quick``), else a characterization of ``card`` there
    (``what`` names the card in the log line)."""
    from cosim.library import load_library

    if (path / "library.json").is_file():
        lib = None
        try:
            lib = load_library(path, card=card)
        except LibraryError as exc:
            log(f"cosim report: not reusing {path}: {exc}")
        if lib is not None and lib.meta.get("quick") and not quick:
            log(f"cosim report: {path} is a quick characterization; characterizing in full")
            lib = None
        if lib is not None:
            return lib, "reused"
    from cosim.characterize.pipeline import run_characterization

    log(f"cosim report: characterizing {what} into {path}")
    run_characterization(card, path, quick=quick, jobs=jobs, log=log, cluster=cluster)
    return load_library(path, card=card), "characterized"


def adc_variant(card: Card, name: str) -> Card:
    """The study card with ``adc.architecture = name`` (experiment 8), its resolution
    capped at the most the architecture is built for (:func:`cosim.converters.adc_max_bits`:
    4 for the flash; the sense row's ``max_skip_bits`` below it)."""
    from cosim.converters import adc_max_bits

    cap = adc_max_bits(name)
    upd: dict[str, Any] = {"architecture": name}
    updates: dict[str, dict[str, Any]] = {"adc": upd}
    if cap is not None and card.adc.bits > cap:
        upd["bits"] = int(cap)
        if card.sense_row.max_skip_bits >= cap:  # the sense row skips below the top bit
            updates["sense_row"] = {"max_skip_bits": int(cap) - 1}
    return card.with_updates(updates)


def resolve_adc_libraries(
    opts: StudyOptions,
    card: Card,
    names: tuple[str, ...],
    quick_library: bool,
    log: Callable[[str], None],
    cluster: Any = None,
) -> dict[str, tuple[Path, Card]]:
    """``{name: (library path, card variant)}`` of every ADC architecture of ``names`` other
    than the study card's: ``DIR/library-<name>`` reused when it holds that variant's
    library (and is a full one, unless the study library is quick), else characterized
    there (the SPICE cache makes every block but the converter and the sense row, which
    reads the converter's transitions, cheap)."""
    out: dict[str, tuple[Path, Card]] = {}
    for name in names:
        if name == card.adc.architecture:
            continue
        variant = adc_variant(card, name)
        path = opts.out / f"library-{name}"
        _reused_or_characterized(
            variant,
            path,
            quick_library,
            opts.jobs,
            log,
            f"the {name} ADC variant of the card",
            cluster,
        )
        out[name] = (path, variant)
    return out


def with_dependencies(needed: dict[str, Task], known: dict[str, Task]) -> list[Task]:
    """``needed`` plus every task they depend on, transitively (from ``known``, by key).

    An experiment names the tasks it reads; the models its evaluations need may be named
    only by another experiment, cached whole or not, so they are added here.
    """
    out = dict(needed)
    stack = list(out.values())
    while stack:
        for d in stack.pop().deps:
            if d not in out:
                out[d] = known[d]
                stack.append(out[d])
    return list(out.values())


def run_study(opts: StudyOptions, log: Callable[[str], None] = _stderr) -> dict[str, Any]:
    """Run the study of ``opts``; returns the ``report.json`` dictionary.

    ``opts.out`` must be missing, an empty directory or an earlier report
    (:func:`cosim.fileio.check_output_dir` with :data:`~cosim.fileio.REPORT_MARKER`, which
    is written into it first). If the study fails before anything else was written there,
    what it created is removed again (never a directory that existed before).

    Raises
    ------
    CosimError
        ``opts.out`` is not cosim's to write (a file, a link, a foreign directory), or the
        study itself failed deliberately (dataset, library, card).
    """
    from cosim.cluster import maybe_connect
    from cosim.fileio import REPORT_MARKER, output_directory

    with (
        output_directory(opts.out, kind="report", marker=REPORT_MARKER),
        maybe_connect(opts.scheduler, log) as cluster,
    ):
        return _run_study(opts, log, cluster)


def _run_study(
    opts: StudyOptions, log: Callable[[str], None], cluster: Any = None
) -> dict[str, Any]:
    from cosim import __version__
    from cosim.datasets import load_dataset
    from cosim.fileio import write_json_atomic, write_text_atomic
    from cosim.progress import Bar, progress_enabled
    from cosim.report import figures, markdown
    from cosim.report.cache import (
        ASSEMBLY_VERSION,
        REPORT_VERSION,
        ResultCache,
        array_digest,
        library_digest,
    )
    from cosim.report.cache import stable_hash as h
    from cosim.report.context import StudyContext
    from cosim.report.experiments import EXPERIMENTS
    from cosim.report.plan import check_card, check_plan, make_plan
    from cosim.report.references import REFERENCES
    from cosim.report.runner import run_tasks
    from cosim.report.verdicts import judge

    t_start = time.perf_counter()
    out = Path(opts.out)
    spec = (
        opts.dataset if opts.dataset is not None else ("digits" if opts.quick else "fashion-mnist")
    )
    datasets = {spec: load_dataset(spec)}  # a wrong dataset fails before any characterization
    plan = make_plan(opts.quick, spec, datasets[spec].preprocessing.input_shape)
    check_plan(plan)
    lib_path, card, lib_info = resolve_library(opts, log, lambda c: check_card(plan, c), cluster)
    if plan.mlp_dataset not in datasets:
        datasets[plan.mlp_dataset] = load_dataset(plan.mlp_dataset)
    for spec_x in (s for exp in EXPERIMENTS for s in exp.datasets):
        if spec_x not in datasets:
            datasets[spec_x] = load_dataset(spec_x)
    digests = {
        s: array_digest(d.x_train, d.y_train, d.x_test, d.y_test) for s, d in datasets.items()
    }
    del datasets
    adc_libs = resolve_adc_libraries(
        opts, card, plan.adc_architectures, lib_info["quick"], log, cluster
    )
    ctx = StudyContext(
        plan,
        card,
        library_digest(lib_path),
        digests,
        "sense_row" in lib_info["blocks"],
        adc_libraries={n: library_digest(p) for n, (p, _) in adc_libs.items()},
    )
    cache = ResultCache(out / "cache")
    env = {
        "cache_dir": str(cache.root),
        "library": str(lib_path),
        "card": card.to_dict(),
        "adc_libraries": {
            n: {"library": str(p), "card": c.to_dict()} for n, (p, c) in adc_libs.items()
        },
    }

    # experiments: cached whole, or their tasks
    declared: dict[str, dict[str, Task]] = {}
    exp_keys: dict[str, str] = {}
    sections: dict[str, dict[str, Any]] = {}
    for exp in EXPERIMENTS:
        named = exp.declare(ctx)
        declared[exp.name] = named
        exp_keys[exp.name] = f"{exp.name}-" + h(
            {
                "experiment": exp.name,
                "tasks": {n: t.key for n, t in named.items()},
                "settings": exp.settings(ctx),
                "assembly": ASSEMBLY_VERSION,
                **ctx.versions,
            }
        )
        hit = cache.get("experiment", exp_keys[exp.name])
        if hit is not None:
            sections[exp.name] = hit
    exp_cached = set(sections)
    needed = {
        t.key: t for name, named in declared.items() if name not in sections for t in named.values()
    }
    tasks = with_dependencies(needed, ctx.tasks)
    counts = {"run": 0, "cached": 0}
    compute: dict[str, float] = {}  # task key -> its own seconds (now or in an earlier run)
    verbose = not progress_enabled()
    t_tasks = time.perf_counter()
    with Bar(total=len(tasks) + len(EXPERIMENTS), desc="cosim report") as bar:
        bar.update(len(sections))

        def on_done(task, result, cached: bool, seconds: float) -> None:
            counts["cached" if cached else "run"] += 1
            compute[task.key] = float(result.get("task_seconds", seconds))
            bar.update(1)
            if verbose and not cached:
                acc = result.get("test_accuracy", result.get("accuracy_mean"))
                what = f"{acc * 100:.2f} %, " if isinstance(acc, float) else ""
                log(f"  [{sum(counts.values())}/{len(tasks)}] {task.label}: {what}{seconds:.1f} s")

        results = run_tasks(
            tasks, cache, env, jobs=max(1, opts.jobs), on_done=on_done, cluster=cluster
        )
        for exp in EXPERIMENTS:
            if exp.name in sections:
                continue
            outputs = {n: results[t.key] for n, t in declared[exp.name].items()}
            sections[exp.name] = exp.assemble(ctx, outputs)
            cache.put("experiment", exp_keys[exp.name], sections[exp.name])
            bar.update(1)
    t_tasks = time.perf_counter() - t_tasks
    # the whole study's task graph (an experiment read back whole still names its tasks and,
    # through them, the models they need), each task with its own seconds, computed now or
    # in an earlier run: what a cluster of any size would have to run (benchmarks/scaleout.py)
    graph = with_dependencies(
        {t.key: t for named in declared.values() for t in named.values()}, ctx.tasks
    )
    for t in graph:
        if t.key not in compute:
            hit = cache.get("model" if t.kind == "train" else "task", t.key)
            compute[t.key] = float(hit.get("task_seconds", 0.0)) if hit else 0.0

    report: dict[str, Any] = {
        "cosim_version": __version__,
        "report_version": REPORT_VERSION,
        "command": opts.command,
        "plan": plan.to_dict(),
        "card": card.to_dict(),
        "card_hash": card.physics_hash(),
        "library": lib_info,
        "adc_libraries": {n: str(p) for n, (p, _) in adc_libs.items()},
        "datasets": digests,
    }
    for exp in EXPERIMENTS:
        report.update(sections[exp.name])
    from cosim.engine.results import energy_sources_for

    # where every energy component of the study card's evaluations comes from: simulated in
    # SPICE, computed by the engine, or the card's design figure (the evaluations carry it too)
    report["energy_provenance"] = {
        k: {"source": src, "figures": fig} for k, (src, fig) in energy_sources_for(card).items()
    }
    report["references"] = REFERENCES
    report["verdicts"] = judge(report)
    report["timing"] = {
        "library_s": lib_info["seconds"],
        "tasks_s": t_tasks,
        "tasks": len(tasks),
        "tasks_run": counts["run"],
        "tasks_cached": counts["cached"],
        # every task's own seconds, including those an earlier (interrupted) run computed
        # and cached: the whole study's compute cost in worker-seconds
        "task_compute_s": sum(compute[t.key] for t in graph),
        "experiments": len(EXPERIMENTS),
        "experiments_cached": len(exp_cached),
        "task_graph": [
            {"key": t.key, "kind": t.kind, "deps": list(t.deps), "seconds": compute[t.key]}
            for t in graph
        ],
    }
    t_fig = time.perf_counter()
    drawn = figures.draw_all(report, out)
    report["figures"] = drawn
    report["timing"]["figures_s"] = time.perf_counter() - t_fig
    report["timing"]["total_s"] = time.perf_counter() - t_start
    write_text_atomic(out / "report.md", markdown.render(report, drawn))
    write_json_atomic(out / "report.json", report)
    return report
