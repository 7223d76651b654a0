"""The pure allocation engine: domain types, rules, and `allocate`.

No I/O here: no gRPC, Redis, SMTP or protobuf. Adapters and the server sit around it.
"""

from .allocator import METHODS, allocate
from .errors import AllocationError, FieldProblem, InsufficientStock, InvalidInput, Shortfall
from .inventory import Inventory, InventoryPosition
from .network import Network, Node, NodeType
from .order import CustomerType, DeliveryMode, Order, OrderLine, ShipTo
from .plan import Explanation, Plan, Shipment, ShipmentLine, Status
from .problem import Reason
from .rules import RuleSet, default_rules, load_rules, parse_rules

__all__ = [
    "METHODS",
    "AllocationError",
    "CustomerType",
    "DeliveryMode",
    "Explanation",
    "FieldProblem",
    "InsufficientStock",
    "InvalidInput",
    "Inventory",
    "InventoryPosition",
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
