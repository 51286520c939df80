"""``cosim report``: rerun the literature's design-space study on a hardware card.

The study reproduces seven experiments of Bao et al. (Front. Electron. 2022) and
García-Redondo et al. (IJCNN 2020) with cosim's trainer and analog engine: accuracy over
weight x activation bits, the activation clip bound, robustness to weight (``nvw``) and
converter (``nva``) variation, activation-code distributions, the sparsity-aware ADC versus
array size, shared periphery with unipolar weights, and the unipolar-filter trade-off; an
eighth compares the ADC plug-ins (SAR, flash) at low activation precisions. It
writes ``report.md`` (every figure beside the published value it reproduces),
``report.json`` and PNG figures, caching every model and result under ``DIR/cache``.

Modules: :mod:`~cosim.report.command` (CLI), :mod:`~cosim.report.study` (the run),
:mod:`~cosim.report.plan` (settings), :mod:`~cosim.report.context` and
:mod:`~cosim.report.tasks` (units of work and their cache keys),
:mod:`~cosim.report.runner` (parallel execution), :mod:`~cosim.report.experiments`,
:mod:`~cosim.report.figures`, :mod:`~cosim.report.markdown`,
:mod:`~cosim.report.references` (published values). Importing this package is light.
"""
