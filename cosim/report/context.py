"""The study context: builds the tasks experiments ask for, with their cache keys.

A task's key hashes everything its result depends on:

* train: the dataset's content hash, the training-sample limit and the full
  :class:`~cosim.train.trainer.TrainConfig` (seed included);
* evaluate / sweep: the model's key, the test samples, the engine configuration, the
  physics hash of the (what-if) card and the surrogate library's content hash;
* activations: the model's key and the test samples;

and, for all, cosim's version and :data:`cosim.report.cache.REPORT_VERSION` (plus
:data:`~cosim.report.cache.ENGINE_VERSION` for what the engine computes). Two
experiments asking for the same model or evaluation get the same task (it runs once).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cosim.card import Card
from cosim.engine.config import EFFECTS_OFF, EngineConfig
from cosim.errors import CosimError
from cosim.quant import DEFAULT_HI
from cosim.report.cache import ENGINE_VERSION, REPORT_VERSION, stable_hash
from cosim.report.plan import StudyPlan
from cosim.report.tasks import Task

#: Every engine non-ideality off (Bao et al. study one variation at a time).
ALL_OFF: dict[str, Any] = EFFECTS_OFF


@dataclass
class StudyContext:
    """Plan, card and content hashes of one study, and the registry of its tasks.

    Attributes
    ----------
    plan
        The study's settings.
    card
        The study card (the library's, or a what-if variant of it).
    library_digest
        Content hash of the surrogate library (:func:`cosim.report.cache.library_digest`).
    dataset_digests
        Content hash of every dataset the plan uses, by spec.
    has_sense_row
        Whether the library characterized a sense row (experiment 5 needs it).
    adc_libraries
        Content hash of the library of each other ADC architecture the study compares
        (experiment 8: a variant of the card with ``adc.architecture`` set to it), by name.
    """

    plan: StudyPlan
    card: Card
    library_digest: str
    dataset_digests: dict[str, str]
    has_sense_row: bool = True
    tasks: dict[str, Task] = field(default_factory=dict)
    adc_libraries: dict[str, str] = field(default_factory=dict)

    @property
    def versions(self) -> dict[str, Any]:
        from cosim import __version__

        return {"cosim": __version__, "report": REPORT_VERSION}

    @property
    def engine_versions(self) -> dict[str, Any]:
        """:attr:`versions` plus the engine's (keys of everything the engine computes)."""
        return {**self.versions, "engine": ENGINE_VERSION}

    def _add(self, task: Task) -> Task:
        return self.tasks.setdefault(task.key, task)

    # -- models ---------------------------------------------------------------------------
    def model(
        self,
        dataset: str,
        arch: str,
        *,
        epochs: int,
        batch_size: int,
        lr: float,
        scheme: str = "global",
        w_bits: int = 4,
        a_bits: int = 3,
        unipolar: float = 0.0,
        hi: float = DEFAULT_HI,
        train_limit: int | None = None,
        seed: int | None = None,
        **train: Any,
    ) -> Task:
        """The train task of one model (shared by every experiment that asks for it).

        ``seed``: the training seed (``None``: the plan's); ``train``: any other
        :class:`~cosim.train.config.TrainConfig` field (a recipe's optimizer, ranges)."""
        from cosim.train.trainer import TrainConfig

        cfg = TrainConfig(
            model=arch,
            scheme=scheme,
            w_bits=w_bits,
            a_bits=a_bits,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            unipolar_fraction=unipolar,
            hi=hi,
            seed=self.plan.seed if seed is None else int(seed),
            **train,
        )
        payload = {"dataset": dataset, "train_limit": train_limit, "config": cfg.to_dict()}
        key = "m-" + stable_hash(
            {"train": payload, "data": self.dataset_digests[dataset], **self.versions}
        )
        what = "float" if scheme == "float" else f"{scheme} W{w_bits}A{a_bits}"
        if unipolar:
            what += f" unipolar {unipolar:g}"
        if hi != DEFAULT_HI:
            what += f" hi={hi:g}"
        what += "".join(f" {k}={v}" for k, v in sorted(train.items()))
        if cfg.seed != self.plan.seed:
            what += f" seed {cfg.seed}"
        label = f"train {arch} {what} on {dataset} ({epochs} epochs)"
        return self._add(Task("train", key, payload, (), label))

    def main_model(self, w_bits: int = 4, a_bits: int = 3, **kw: Any) -> Task:
        """A model of the main experiments (the plan's dataset, architecture and epochs)."""
        p = self.plan
        kw.setdefault("epochs", p.epochs)
        return self.model(
            p.dataset,
            p.arch,
            batch_size=p.batch_size,
            lr=p.lr,
            w_bits=w_bits,
            a_bits=a_bits,
            train_limit=p.train_limit,
            **kw,
        )

    # -- hardware -------------------------------------------------------------------------
    def level_updates(self, w_bits: int) -> dict[str, dict[str, Any]]:
        """What-if updates so the card holds ``w_bits``-bit weights: 8-bit device levels
        when the card's devices have fewer levels than the weights."""
        if w_bits > self.card.device.level_bits:
            return {"device": {"level_bits": 8}}
        return {}

    def _hw_key(self, kind: str, payload: dict[str, Any]) -> str:
        card = (
            self.card.with_updates(payload["card_updates"])
            if payload["card_updates"]
            else self.card
        )
        return f"{kind[0]}-" + stable_hash(
            {
                kind: payload,
                "data": self.dataset_digests[payload["dataset"]],
                "card": card.physics_hash(),
                "library": (
                    self.adc_libraries[payload["library"]]
                    if "library" in payload
                    else self.library_digest
                ),
                **self.engine_versions,
            }
        )

    def _hw_payload(
        self,
        model: Task,
        config: dict[str, Any],
        limit: int,
        card_updates: dict[str, dict[str, Any]] | None,
    ) -> dict[str, Any]:
        """What an engine run of ``model`` depends on besides the card and library."""
        return {
            "model": model.key,
            "dataset": model.payload["dataset"],
            "limit": limit,
            "config": EngineConfig(seed=self.plan.seed, **config).describe(),
            "card_updates": card_updates or {},
        }

    def evaluation(
        self,
        model: Task,
        config: dict[str, Any],
        *,
        limit: int,
        card_updates: dict[str, dict[str, Any]] | None = None,
        label: str = "",
        adc_architecture: str | None = None,
    ) -> Task:
        """An engine evaluation of ``model`` (``config``: :class:`EngineConfig` fields).

        ``adc_architecture``: on the library of that other ADC architecture
        (:attr:`adc_libraries`; its card is the study card's variant) instead of the
        study's; ``None`` or the card's own: the study's library."""
        payload = self._hw_payload(model, config, limit, card_updates)
        if adc_architecture is not None and adc_architecture != self.card.adc.architecture:
            if adc_architecture not in self.adc_libraries:
                raise CosimError(f"the study has no library for ADC {adc_architecture!r}")
            payload["library"] = adc_architecture
        key = self._hw_key("evaluate", payload)
        return self._add(Task("evaluate", key, payload, (model.key,), f"evaluate {label}"))

    def sweep(
        self,
        model: Task,
        param: str,
        values: tuple[float, ...],
        config: dict[str, Any],
        *,
        limit: int,
        drop: float,
        card_updates: dict[str, dict[str, Any]] | None = None,
        label: str = "",
    ) -> Task:
        """Accuracy versus ``param`` (``nvw`` or ``nva``) until it drops by ``drop``."""
        payload = {
            **self._hw_payload(model, config, limit, card_updates),
            "param": param,
            "values": list(values),
            "drop": drop,
        }
        key = self._hw_key("sweep", payload)
        return self._add(Task("sweep", key, payload, (model.key,), f"sweep {param} {label}"))

    def activations(self, model: Task, *, limit: int, label: str = "") -> Task:
        """Histograms of the hidden layers' output codes of ``model``."""
        payload = {"model": model.key, "dataset": model.payload["dataset"], "limit": limit}
        key = "a-" + stable_hash(
            {
                "activations": payload,
                "data": self.dataset_digests[payload["dataset"]],
                **self.versions,  # integer_forward's codes: the engine is not involved
            }
        )
        return self._add(
            Task("activations", key, payload, (model.key,), f"activation codes {label}")
        )
