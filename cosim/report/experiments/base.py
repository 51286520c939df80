"""What every experiment is: named tasks declared, their results assembled into sections."""

from __future__ import annotations

from typing import Any, ClassVar

from cosim.report.context import StudyContext
from cosim.report.tasks import Task

Results = dict[str, dict[str, Any]]


def precision_name(w: int, a: int) -> str:
    return f"W{w}A{a}"


def other_seeds(ctx: StudyContext) -> list[int]:
    """The plan's seeds besides its own (:attr:`StudyPlan.seed`), in plan order."""
    return [s for s in ctx.plan.seeds if s != ctx.plan.seed]


def seeded(name: str, seed: int, ctx: StudyContext) -> str:
    """A task's name for ``seed``: ``name`` for the plan's own seed (the name it had before
    experiments were repeated over seeds, so cached experiments keep their keys), else
    ``name s{seed}``."""
    return name if seed == ctx.plan.seed else f"{name} s{seed}"


class Experiment:
    """Base class: ``name`` (cache and figure name), ``title`` and the two steps."""

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    #: Dataset specs beyond the plan's that the experiment trains or evaluates on (the study
    #: loads and hashes them before declaring).
    datasets: ClassVar[tuple[str, ...]] = ()

    def declare(self, ctx: StudyContext) -> dict[str, Task]:
        """Named tasks this experiment needs."""
        raise NotImplementedError

    def settings(self, ctx: StudyContext) -> dict[str, Any]:
        """Settings used only while assembling (part of the experiment's cache key)."""
        return {}

    def assemble(self, ctx: StudyContext, r: Results) -> dict[str, Any]:
        """Sections of report.json from the named task results ``r``."""
        raise NotImplementedError
