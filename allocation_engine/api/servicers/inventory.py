"""`InventoryService` over gRPC: the network (UpsertNodes, ListNodes) and stock feeds from the
ERP/WMS (ApplySnapshot streamed chunk by chunk, AdjustInventory), availability reads, and
incoming supply (PutSupply, ListSupply, ReceiveSupply, ReviseSupply, GetAvailableToPromise over
`Services.supply`).

Thin by design: each method decodes the request (`convert`), calls the `Services.inventory`
use case and encodes the answer; sizes and ranges were checked before (`api.bounds`, each chunk
of a stream as it arrives). Errors are raised typed and mapped to
statuses by `api.errors.ErrorInterceptor` (the streamed ApplySnapshot too); the use case names
bad fields within one chunk (`positions[4].on_hand`) and `fields_under` adds which chunk.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc

from allocation_engine.api.convert.common import level_to_proto, node_to_proto, nodes_from_proto
from allocation_engine.api.convert.inventory import (
    adjustment_from_proto,
    adjustment_to_proto,
    availability_to_proto,
    promise_to_proto,
    received_to_proto,
    revised_to_proto,
    revision_from_proto,
    snapshot_line_from_proto,
    supply_lot_to_proto,
    supply_lots_from_proto,
)
from allocation_engine.api.request import Limits, check_limit, fields_under, fingerprint
from allocation_engine.engine import InvalidInput
from allocation_engine.engine.supply import MAX_SUPPLY_DAYS
from allocation_engine.proto.allocation.v1 import inventory_pb2 as ipb
from allocation_engine.proto.allocation.v1 import inventory_pb2_grpc as ipb_grpc
from allocation_engine.service import Services


class InventoryServicer(ipb_grpc.InventoryServiceServicer):
    def __init__(self, services: Services, limits: Limits) -> None:
        self._services = services
        self._limits = limits

    def UpsertNodes(self, request: ipb.UpsertNodesRequest, context: grpc.ServicerContext) -> Any:
        nodes = nodes_from_proto(request.nodes)
        version = self._services.inventory.upsert_nodes(
            request.idempotency_key, fingerprint(request), nodes
        )
        return ipb.UpsertNodesResponse(nodes_version=version, upserted=len(nodes))

    def ListNodes(self, request: ipb.ListNodesRequest, context: grpc.ServicerContext) -> Any:
        record = self._services.inventory.nodes()
        return ipb.ListNodesResponse(
            nodes_version=record.version, nodes=[node_to_proto(n) for n in record.nodes]
        )

    def ApplySnapshot(
        self, request_iterator: Iterator[ipb.SnapshotChunk], context: grpc.ServicerContext
    ) -> Any:
        """Stages chunk by chunk as they arrive (in the store: nothing of the stream is held
        here beyond one chunk) and applies the whole snapshot at the end; a stream refused
        anywhere is aborted and changes nothing, and so is one cut short, whenever the client
        said how many chunks it sends (`total_chunks`)."""
        feed, chunks, total = None, 0, 0
        try:
            for chunk in request_iterator:
                if chunk.total_chunks and total and chunk.total_chunks != total:
                    raise InvalidInput.one(
                        f"chunks[{chunks}].total_chunks",
                        chunk.total_chunks,
                        f"differs from the {total} an earlier chunk gave",
                    )
                total = total or chunk.total_chunks
                check_limit(
                    f"chunks[{chunks}].positions",
                    len(chunk.positions),
                    self._limits.max_positions_per_chunk,
                )
                if feed is not None and chunk.version != feed.version:
                    raise InvalidInput.one(
                        f"chunks[{chunks}].version",
                        chunk.version,
                        f"differs from the first ({feed.version})",
                    )
                lines = [snapshot_line_from_proto(p) for p in chunk.positions]
                with fields_under(f"chunks[{chunks}]."):
                    if feed is None:
                        feed = self._services.inventory.begin_snapshot(chunk.version)
                    feed.add(lines)
                chunks += 1
            # A caller who hung up can look like a stream that ended; `total_chunks` tells.
            if not context.is_active() or (total and chunks != total):
                raise InvalidInput.one(
                    "total_chunks", total, f"the stream was cut short after {chunks} chunks"
                )
            if feed is None:
                raise InvalidInput.one("chunks", 0, "a snapshot needs at least one chunk")
            outcome = feed.commit()
        except BaseException:
            if feed is not None:
                feed.abort()
            raise
        return ipb.ApplySnapshotResponse(
            version=feed.version,
            positions_applied=outcome.applied,
            positions_skipped=outcome.skipped,
            chunks=chunks,
        )

    def AdjustInventory(
        self, request: ipb.AdjustInventoryRequest, context: grpc.ServicerContext
    ) -> Any:
        outcome = self._services.inventory.adjust(
            request.idempotency_key,
            fingerprint(request),
            [adjustment_from_proto(a) for a in request.adjustments],
        )
        return ipb.AdjustInventoryResponse(
            positions=[level_to_proto(lv) for lv in outcome.levels],
            clamped=[adjustment_to_proto(a) for a in outcome.clamped],
        )

    def GetAvailability(
        self, request: ipb.GetAvailabilityRequest, context: grpc.ServicerContext
    ) -> Any:
        found = self._services.inventory.availability(list(request.skus), list(request.node_ids))
        return ipb.GetAvailabilityResponse(
            skus=[availability_to_proto(sku, levels) for sku, levels in found.items()]
        )

    def PutSupply(self, request: ipb.PutSupplyRequest, context: grpc.ServicerContext) -> Any:
        lots = self._services.supply.put(
            request.idempotency_key, fingerprint(request), supply_lots_from_proto(request.lots)
        )
        return ipb.PutSupplyResponse(lots=[supply_lot_to_proto(lot) for lot in lots])

    def ListSupply(self, request: ipb.ListSupplyRequest, context: grpc.ServicerContext) -> Any:
        lots = self._services.supply.lots(list(request.skus), request.node_id)
        return ipb.ListSupplyResponse(lots=[supply_lot_to_proto(lot) for lot in lots])

    def ReceiveSupply(
        self, request: ipb.ReceiveSupplyRequest, context: grpc.ServicerContext
    ) -> Any:
        outcome = self._services.supply.receive(
            request.idempotency_key, fingerprint(request), request.lot_id, request.units
        )
        return received_to_proto(outcome)

    def ReviseSupply(self, request: ipb.ReviseSupplyRequest, context: grpc.ServicerContext) -> Any:
        units, expected = revision_from_proto(request)
        outcome = self._services.supply.revise(
            request.idempotency_key, fingerprint(request), request.lot_id, units, expected
        )
        return revised_to_proto(outcome)

    def GetAvailableToPromise(
        self, request: ipb.GetAvailableToPromiseRequest, context: grpc.ServicerContext
    ) -> Any:
        horizon = request.horizon_days if request.HasField("horizon_days") else MAX_SUPPLY_DAYS
        found = self._services.supply.available_to_promise(request.sku, request.node_id, horizon)
        return promise_to_proto(request.sku, found)
