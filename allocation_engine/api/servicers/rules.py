"""`RulesService` over gRPC: read the published rule set, validate a draft (what a planner checks
before publishing) and publish one under optimistic concurrency (`expected_revision`).

Thin by design: each method calls one `Services.rules` use case and encodes the answer; errors
are raised typed and mapped to statuses by `api.errors.ErrorInterceptor`.
"""

from __future__ import annotations

from typing import Any

import grpc

from allocation_engine.api.convert.rules import problem_to_proto, rules_to_proto
from allocation_engine.api.request import fingerprint
from allocation_engine.proto.allocation.v1 import rules_pb2 as rpb
from allocation_engine.proto.allocation.v1 import rules_pb2_grpc as rpb_grpc
from allocation_engine.service import Services


class RulesServicer(rpb_grpc.RulesServiceServicer):
    def __init__(self, services: Services) -> None:
        self._services = services

    def GetRules(self, request: rpb.GetRulesRequest, context: grpc.ServicerContext) -> Any:
        published = self._services.rules.get()
        return rpb.GetRulesResponse(
            rules=rules_to_proto(published.rules, published.text, published.revision)
        )

    def ValidateRules(
        self, request: rpb.ValidateRulesRequest, context: grpc.ServicerContext
    ) -> Any:
        rules, problems = self._services.rules.validate(request.toml)
        response = rpb.ValidateRulesResponse(
            valid=rules is not None, problems=[problem_to_proto(p) for p in problems]
        )
        if rules is not None:
            response.rules.CopyFrom(rules_to_proto(rules, request.toml, 0))
        return response

    def PutRules(self, request: rpb.PutRulesRequest, context: grpc.ServicerContext) -> Any:
        expected = request.expected_revision if request.HasField("expected_revision") else None
        published = self._services.rules.put(
            request.toml, expected, request.idempotency_key, fingerprint(request)
        )
        return rpb.PutRulesResponse(
            rules=rules_to_proto(published.rules, published.text, published.revision)
        )
