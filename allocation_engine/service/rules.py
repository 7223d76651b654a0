"""The published rule set: read it, check a candidate, publish a new revision.

A published rule set takes effect on the next request of every server process: each stock read
returns the current revision and the planner re-parses only when it changed.
"""

from __future__ import annotations

from dataclasses import dataclass

from allocation_engine.engine import FieldProblem, InvalidInput, RuleSet, parse_rules
from allocation_engine.engine.rules import default_rules_text
from allocation_engine.ports.inventory import InventoryStore
from allocation_engine.service.planner import Planner


@dataclass(frozen=True)
class PublishedRules:
    rules: RuleSet
    text: str
    revision: int  # 0 = nothing published: the server's default


class RulesAdmin:
    def __init__(self, store: InventoryStore, planner: Planner, default_text: str | None = None):
        self._store = store
        self._planner = planner
        self._default_text = default_text or default_rules_text()

    def get(self) -> PublishedRules:
        stored = self._store.get_rules()
        if stored is None:
            return PublishedRules(self._planner.rules(0).rules, self._default_text, 0)
        return PublishedRules(parse_rules(stored.text), stored.text, stored.revision)

    @staticmethod
    def validate(text: str) -> tuple[RuleSet | None, tuple[FieldProblem, ...]]:
        """Every problem of a candidate rule set; changes nothing."""
        try:
            return parse_rules(text), ()
        except InvalidInput as bad:
            return None, bad.problems

    def put(
        self, text: str, expected_revision: int | None, key: str, fingerprint: str
    ) -> PublishedRules:
        """Publishes `text` (validated first); a retry with the same key answers the same."""
        rules = parse_rules(text)
        if key:
            claim = self._store.claim_key(f"put_rules:{key}", fingerprint)
            if claim.result is not None:
                return PublishedRules(rules, text, int(claim.result))
        revision = self._store.put_rules(text, expected_revision)
        if key:
            self._store.complete_key(f"put_rules:{key}", str(revision))
        return PublishedRules(rules, text, revision)
