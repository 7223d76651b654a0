"""Protobuf <-> domain for `rules.proto`: rule sets and the problems found validating one.

A rule set travels as its TOML text (the one source of truth a planner edits); name, version and
the store's revision ride along outbound so clients need not parse it. Problems only leave the
server (ValidateRules), so they have a writer alone.
"""

from __future__ import annotations

from allocation_engine.engine import FieldProblem, RuleSet
from allocation_engine.proto.allocation.v1 import rules_pb2 as rpb


def rules_to_proto(rules: RuleSet, text: str, revision: int) -> rpb.RuleSet:
    return rpb.RuleSet(toml=text, name=rules.name, version=rules.version, revision=revision)


def rules_text_from_proto(message: rpb.RuleSet) -> str:
    """Only the TOML of a rule set travels inward; name and version are read from it."""
    return message.toml


def problem_to_proto(problem: FieldProblem) -> rpb.RuleProblem:
    return rpb.RuleProblem(field=problem.field, value=repr(problem.value), problem=problem.problem)
