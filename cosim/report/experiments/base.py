"""What every experiment is: named tasks declared, their results assembled into sections."""

from __future__ import annotations

from typing import Any, ClassVar

from cosim.report.context import StudyContext
from cosim.report.tasks import Task

Results = dict[str, dict[str, Any]]


def precision_name(w: int, a: int) -> str:
    return f"W{w}A{a}"


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
