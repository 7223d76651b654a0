"""Typed errors the engine raises; each carries the data a caller needs to react.

The gRPC edge maps them to status codes in one place, so they stay free of any transport concern.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


class AllocationError(Exception):
    """Base class of every error the engine raises on purpose."""


@dataclass(frozen=True)
class FieldProblem:
    """One bad value: the dotted path of the field, the value seen and what is wrong with it."""

    field: str
    value: object
    problem: str

    def __str__(self) -> str:
        return f"{self.field}={self.value!r}: {self.problem}"


class InvalidInput(AllocationError):
    """Bad input, reported with every problem found, not just the first."""

    def __init__(self, problems: Sequence[FieldProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(str(p) for p in self.problems))

    @classmethod
    def one(cls, field: str, value: object, problem: str) -> InvalidInput:
        return cls([FieldProblem(field, value, problem)])


class ProblemCollector:
    """Collects field problems so validation can report all of them at once."""

    def __init__(self) -> None:
        self.problems: list[FieldProblem] = []

    def add(self, field: str, value: object, problem: str) -> None:
        self.problems.append(FieldProblem(field, value, problem))

    def extend(self, problems: Iterable[FieldProblem]) -> None:
        self.problems.extend(problems)

    def raise_if_any(self) -> None:
        if self.problems:
            raise InvalidInput(self.problems)


@dataclass(frozen=True)
class Shortfall:
    """A sku the order cannot get in full: units requested against the most the fences allow."""

    sku: str
    requested: int
    available: int


class InsufficientStock(AllocationError):
    """Not enough stock under the fences; carries one shortfall per short sku."""

    def __init__(self, shortfalls: Sequence[Shortfall]) -> None:
        self.shortfalls = tuple(shortfalls)
        super().__init__(
            "insufficient stock: "
            + ", ".join(
                f"{s.sku} requested {s.requested}, available {s.available}" for s in self.shortfalls
            )
        )
