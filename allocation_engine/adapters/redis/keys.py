"""Every Redis key name the two stores use, built in one place.

The hash tags are the design, so they are chosen here and nowhere else. Redis Cluster puts a key
in one of 16,384 slots by the CRC16 of its hash tag (the part between the first `{` and the next
`}`; the whole name when there is none), and a Lua script or FUNCTION may only touch keys of one
slot. Keys that one FUNCTION changes together therefore share a tag; keys that should spread over
the shards carry tags that differ:

* Inventory, tagged by node (`inv:{N}:...`): a node's positions, holds, hold expiries, change
  counter, applied adjustment keys and incoming lots live in one slot, so a shipment (one node,
  several skus, shelf and incoming units) is held atomically by one FUNCTION, and nodes spread
  over the cluster. A plan over several nodes is a saga (see `service/reservations.py`), not
  one script.
* Planning views, tagged by sku (`view:{S}`): planning reads each sku across all nodes in one
  pipelined round trip. They live in other slots than any node, so on Cluster the store writes
  them in a second step, grouped by slot (see `inventory.py`).
* Incoming lots per sku (`lots:{S}`): which nodes to read for a sku's lots (the lots themselves
  live with their node); written beside the node's step, like the views.
* Reservation records (`res:{R}`) and idempotency keys (`idem:{K}`), tagged by their own id: each
  is compare-and-set on its own, and they spread too.
* Shared metadata, tagged `{meta}`: the network, the rules and their versions, the snapshot
  version, the expiry index of reservations, the node lists of staged snapshots and the index
  of which node holds each incoming lot. Small and
  rarely written; one slot. (A staged snapshot's lines live with their node, tagged by node.)
* The shipments view (`ships:{view}`): one hash, node -> shipments spent today, read with every
  planning read; on Cluster a second step writes it, as the sku views.
* Order workflow, tagged `{wf}`: every order, timeline, listing, customer, external-id key, the
  event stream and the delivery receipts share one slot and one shard. That is a deliberate trade:
  PlaceOrder must check the external id, the customer's e-mail and the order in one atomic step,
  and the lists by customer and state must change with the order; across slots that would take a
  saga per order. Orders arrive at hundreds per second where stock reads arrive at thousands, and
  one shard takes tens of thousands of such writes per second; the inventory keys, which do need
  to scale out, are spread by node.

Ids are put into key names as they are; none of them may contain `}` (a node id with `}` would
end the tag early: still one slot per node, but the name would no longer be this layout).
"""

from __future__ import annotations

from typing import NamedTuple

from allocation_engine.orders.machines import OrderState

# Shared metadata: one slot.
META = "{meta}"
NODES = f"{META}:nodes"  # hash: node id -> node JSON
NODES_VERSION = f"{META}:nodes_version"  # counter
RULES = f"{META}:rules"  # string: the published TOML
RULES_REVISION = f"{META}:rules_revision"  # counter
SNAPSHOT_VERSION = f"{META}:snapshot_version"  # the newest snapshot version admitted
RESERVATION_EXPIRY = f"{META}:res_expiry"  # zset: reservation id by expires_at (ms)
LOT_INDEX = f"{META}:lots"  # hash: lot id -> "node US sku" (which node's slot holds the lot)
LOTS_DONE = f"{META}:lots_done"  # zset: lot id by when it was received in full (ms)


SHIPMENTS_VIEW = "ships:{view}"  # hash: node id -> "day:used:seq", shipments spent per node
SNAPSHOT_STAGE_TTL = 6 * 3600  # seconds a staged snapshot outlives the stream that left it


class NodeKeys(NamedTuple):
    """The keys of one node's stock, all in the node's slot (see `inventory.lua` for types)."""

    pos: str  # hash: sku -> "on_hand:reserved:safety_stock:snapshot_version" (the authority)
    holds: str  # hash: reservation id -> hold JSON
    exp: str  # zset: reservation id by expires_at (ms), for holds not yet pinned
    seq: str  # counter bumped by every change at the node


def node_shipments(node_id: str) -> str:
    """hash: day, used: the shipments the node spent on its current UTC day."""
    return f"{node_tag(node_id)}:ships"


def node_lots(node_id: str) -> str:
    """hash: lot id -> lot JSON, the node's incoming supply (in its slot: a hold takes shelf
    and lot units of the node in one atomic step)."""
    return f"{node_tag(node_id)}:lots"


def node_answers(node_id: str) -> str:
    """hash: key -> the answer of a supply receipt or revision at the node under that key."""
    return f"{node_tag(node_id)}:answers"


def node_stage(node_id: str, stage: str) -> str:
    """hash: sku -> "on_hand US safety_stock" of one staged snapshot at this node."""
    return f"{node_tag(node_id)}:stage:{stage}"


def snapshot_stage(stage: str) -> str:
    """set: the nodes a staged snapshot has lines for."""
    return f"{META}:stage:{stage}"


def node_tag(node_id: str) -> str:
    return f"inv:{{{node_id}}}"


def node_keys(node_id: str) -> NodeKeys:
    tag = node_tag(node_id)
    return NodeKeys(f"{tag}:pos", f"{tag}:holds", f"{tag}:exp", f"{tag}:seq")


def node_applied(node_id: str) -> str:
    """zset: adjustment keys the node applied, by when (ms); the node's adjustments idempotency."""
    return f"{node_tag(node_id)}:applied"


def view(sku: str) -> str:
    """hash: node id -> "on_hand:reserved:safety_stock:seq", the per-sku planning view."""
    return f"view:{{{sku}}}"


def sku_lots(sku: str) -> str:
    """hash: lot id -> node id, the lots of a sku not yet received in full (planning lists
    them per sku; tagged by sku, as its view)."""
    return f"lots:{{{sku}}}"


def reservation(reservation_id: str) -> str:
    """string: the reservation record as JSON."""
    return f"res:{{{reservation_id}}}"


def idempotency(key: str) -> str:
    """hash: fingerprint (and result, once the first call finished) of an idempotency key."""
    return f"idem:{{{key}}}"


# Order workflow: one slot.
WF = "{wf}"
ORDER_LOG = f"{WF}:log"  # stream: one entry per event (field e = event JSON); the outbox reads it
ORDER_SEQUENCE = f"{WF}:order-seq"  # counter behind new order ids
ALL_ORDERS = f"{WF}:orders"  # zset: order id by created_at


def order(order_id: str) -> str:
    """hash: version, state, doc (the order as JSON)."""
    return f"{WF}:order:{order_id}"


def timeline(order_id: str) -> str:
    """list: the order's events as JSON, oldest first."""
    return f"{WF}:timeline:{order_id}"


def external(channel: str, external_id: str) -> str:
    """string: the order id placed under (channel, external id); the channel's length comes
    first so that no two (channel, external id) pairs share a name."""
    return f"{WF}:ext:{len(channel)}:{channel}:{external_id}"


def customer(customer_id: str) -> str:
    """string: the customer as JSON."""
    return f"{WF}:customer:{customer_id}"


def email(address: str) -> str:
    """string: the id of the customer with this e-mail address."""
    return f"{WF}:email:{address}"


def customer_orders(customer_id: str) -> str:
    """zset: the customer's order ids by created_at."""
    return f"{WF}:customer-orders:{customer_id}"


def orders_in_state(state: OrderState) -> str:
    """zset: ids of the orders in `state` by created_at."""
    return f"{WF}:state:{state.value}"


def delivered(receipt: str) -> str:
    """string: a delivery receipt of the outbox (a receiver already did `receipt`)."""
    return f"{WF}:delivered:{receipt}"
