"""`CustomerService` over gRPC: a CRM creates and updates customer accounts, and reads them.

Thin by design: decode, call `service.feeds.crm.Customers`, encode; errors are raised typed and
mapped to statuses by `api.errors.ErrorInterceptor`.
"""

from __future__ import annotations

from typing import Any

import grpc

from allocation_engine.api.convert.customers import customer_from_proto, customer_to_proto
from allocation_engine.proto.allocation.v1 import customers_pb2 as kpb
from allocation_engine.proto.allocation.v1 import customers_pb2_grpc as kpb_grpc
from allocation_engine.service.feeds.crm import Customers

SERVICE_NAME = kpb.DESCRIPTOR.services_by_name["CustomerService"].full_name


class CustomerServicer(kpb_grpc.CustomerServiceServicer):
    def __init__(self, customers: Customers) -> None:
        self._customers = customers

    def UpsertCustomer(
        self, request: kpb.UpsertCustomerRequest, context: grpc.ServicerContext
    ) -> Any:
        done = self._customers.upsert(customer_from_proto(request.customer))
        return kpb.UpsertCustomerResponse(
            customer=customer_to_proto(done.customer), created=done.created, changed=done.changed
        )

    def GetCustomer(self, request: kpb.GetCustomerRequest, context: grpc.ServicerContext) -> Any:
        found = self._customers.get(request.id, request.email)
        return kpb.GetCustomerResponse(customer=customer_to_proto(found))


def register(customers: Customers, server: grpc.Server) -> str:
    """Adds CustomerService to `server`; returns its name (for health and reflection)."""
    kpb_grpc.add_CustomerServiceServicer_to_server(CustomerServicer(customers), server)
    return SERVICE_NAME
