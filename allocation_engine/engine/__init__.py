"""The pure allocation engine: domain types, rules, and `allocate`.

No I/O here: no gRPC, Redis, SMTP or protobuf. Adapters and the server sit around it.
"""

from allocation_engine.engine.allocator import METHODS, allocate
from allocation_engine.engine.budget import Budget
from allocation_engine.engine.inventory import Inventory, InventoryPosition
from allocation_engine.engine.network import Network, Node, NodeType
from allocation_engine.engine.order import CustomerType, DeliveryMode, Order, OrderLine, ShipTo
from allocation_engine.engine.plan import Explanation, Plan, Shipment, ShipmentLine, Status
from allocation_engine.engine.problem import Reason
from allocation_engine.engine.rules import (
    Backorders,
    RuleSet,
    default_rules,
    load_rules,
    parse_rules,
)
from allocation_engine.engine.supply import IncomingLot, LotTake
from allocation_engine.errors import (
    AllocationError,
    FieldProblem,
    InsufficientStock,
    InvalidInput,
    Shortfall,
)

__all__ = [
    "METHODS",
    "AllocationError",
    "Backorders",
    "Budget",
    "CustomerType",
    "DeliveryMode",
    "Explanation",
    "FieldProblem",
    "IncomingLot",
    "InsufficientStock",
    "InvalidInput",
    "Inventory",
    "InventoryPosition",
    "LotTake",
    "Network",
    "Node",
    "NodeType",
    "Order",
    "OrderLine",
    "Plan",
    "Reason",
    "RuleSet",
    "ShipTo",
    "Shipment",
    "ShipmentLine",
    "Shortfall",
    "Status",
    "allocate",
    "default_rules",
    "load_rules",
    "parse_rules",
]
