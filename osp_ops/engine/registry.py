"""Operation kinds, built and passed in by ``build_context`` (never filled by imports).

A ``Kind`` is an ordered list of named, idempotent steps, with the phase it moves the
tenant into first, the phase a failure leaves it in, and its retry policy. The
``Registry`` holds the kinds and their step functions; ``load_kinds`` builds one by
calling ``register(registry)`` of every module of ``KIND_MODULES``, whatever was
imported before, so two contexts never share (or miss) a kind.

Adding a kind: a module under ``engine/kinds/`` with a ``register(registry)`` function,
named in ``KIND_MODULES``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from osp_ops.domain.phases import Phase

# The step context type (``engine/steps.py::StepContext``); generic here so that this
# module, which ``engine/context.py`` imports, imports nothing above it.
C = TypeVar("C")


@dataclass(frozen=True)
class StepResult:
    """What a step returns: its text for people, and JSON data for later steps.

    The runner stores both in the step record; later steps read ``data``, never parse
    ``output``.
    """

    output: str | None = None
    data: Mapping[str, Any] | None = None


StepOutput = StepResult | str | None


def as_result(value: StepOutput) -> StepResult:
    """A step's return value as a ``StepResult`` (a plain string is its output)."""
    if isinstance(value, StepResult):
        return value
    return StepResult(output=value)


@dataclass(frozen=True)
class RetryPolicy:
    """How often a step raising ``TemporaryError`` runs, and the first delay between
    attempts (doubling after each); None takes the operator settings'
    (``step_max_attempts``, ``retry_base_delay``)."""

    max_attempts: int | None = None
    base_delay: float | None = None

    def attempts(self, default: int) -> int:
        """The number of attempts, ``default`` when the kind sets none."""
        return default if self.max_attempts is None else self.max_attempts

    def delay(self, default: float) -> float:
        """The first delay, ``default`` when the kind sets none."""
        return default if self.base_delay is None else self.base_delay


@dataclass(frozen=True)
class Undo:
    """What undoes a kind that failed past its gates (an upgrade's rollback); the
    runner's part is ``engine/undo.py``."""

    steps: tuple[str, ...]
    # Given each step's (name, status): the failed or cut-off step to undo for, or None
    # when the operation stops (or, resumed, goes on) as it is.
    blame: Callable[[Sequence[tuple[str, str]]], str | None]
    # Told when the undo failed too; may name {tenant} and {operation}.
    hint: str = ""
    # A step run, as best it can, when an undo step fails (an upgrade's rollback puts
    # the maintenance page back up).
    contain: str | None = None


@dataclass(frozen=True)
class Kind:
    """An operation kind: its steps, the phase it enters and the phase a failure leaves."""

    name: str
    steps: tuple[str, ...]
    failure_phase: Phase | None = Phase.failed
    # Steps that only check or copy (a backup gate): when one fails before any other
    # step ran, the tenant keeps its phase; nothing of it was touched.
    gates: frozenset[str] = frozenset()
    # The phase the kind moves the tenant into first; a request is refused before
    # anything is recorded when the tenant's phase cannot move there.
    entry_phase: Phase | None = None
    retry: RetryPolicy = RetryPolicy()
    # Steps run when a step outside the gates fails, or the operation resumes past its
    # point of no return (``Undo.blame``); None: a failure stops the operation.
    undo: Undo | None = None


@dataclass
class Registry(Generic[C]):
    """The operation kinds of one context and the functions of their steps."""

    kinds: dict[str, Kind] = field(default_factory=dict)
    steps: dict[str, Callable[[C], StepOutput]] = field(default_factory=dict)

    def register(self, kind: Kind | None, steps: Mapping[str, Callable[[C], StepOutput]]) -> None:
        """Add (or replace) a kind and step functions; ``kind`` None adds steps only."""
        self.steps.update(steps)
        if kind is not None:
            self.kinds[kind.name] = kind

    def kind(self, name: str) -> Kind:
        """The kind ``name`` (KeyError when unknown)."""
        return self.kinds[name]

    def entry_phase(self, name: str) -> Phase | None:
        """The phase kind ``name`` enters first (None for unknown kinds and kinds that
        keep the tenant's phase)."""
        kind = self.kinds.get(name)
        return kind.entry_phase if kind else None

    def step(self, name: str) -> Callable[[C], StepOutput]:
        """The function of step ``name`` (``deploy@0.28.4`` is ``deploy``'s)."""
        return self.steps[name.partition("@")[0]]

    def has_step(self, name: str) -> bool:
        """Whether a function is registered for step ``name``."""
        return name.partition("@")[0] in self.steps

    def check(self) -> None:
        """ValueError naming every kind whose steps have no function."""
        missing = {
            k.name: [
                s
                for s in (*k.steps, *(k.undo.steps if k.undo else ()), *_contain(k))
                if not self.has_step(s)
            ]
            for k in self.kinds.values()
        }
        problems = [
            f"kind {name}: steps without functions: {s}" for name, s in missing.items() if s
        ]
        if problems:
            raise ValueError("; ".join(problems))


def _contain(kind: Kind) -> tuple[str, ...]:
    return (kind.undo.contain,) if kind.undo and kind.undo.contain else ()


# Every module that registers kinds, in order (later ones may replace steps of earlier).
KIND_MODULES = (
    "osp_ops.engine.kinds.lifecycle",
    "osp_ops.engine.kinds.backup",
    "osp_ops.engine.kinds.restore",
    "osp_ops.engine.kinds.drill",
    "osp_ops.engine.kinds.prune",
    "osp_ops.engine.kinds.upgrade",
    "osp_ops.engine.kinds.rotation",
)


def load_kinds(modules: tuple[str, ...] = KIND_MODULES) -> Registry[Any]:
    """A fresh registry with the kinds of ``modules`` (each module's ``register``)."""
    registry: Registry[Any] = Registry()
    for name in modules:
        importlib.import_module(name).register(registry)
    registry.check()
    return registry
