"""An independent brute-force oracle for small sourcing problems.

It re-derives fences, distances and costs from the raw inputs (not from the engine's arrays) and
enumerates every set of shipping nodes; for a fixed set the cheapest assignment is separable per
line and per ship-together group, so a sort by unit cost gives it exactly.

Click & collect, written from the rule's text: the pickup store's own stock costs only its
handling per unit (no package, distance 0); transfers from other nodes are priced by the formula
with the distance to the store. Under `own_stock_first` the best plan takes the most units from
the store's own stock, and among those the cheapest: for a fixed node set that is again
separable, the store's stock first, then the cheapest others.
"""

from __future__ import annotations

import math
from itertools import combinations

from allocation_engine.engine import DeliveryMode, Network, Order, RuleSet

R = 6371.0088


def haversine(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = (
        math.sin((p2 - p1) / 2) ** 2
        + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    )
    return 2 * R * math.asin(math.sqrt(min(1.0, a)))


def eligible(order: Order, network: Network, available: dict, rules: RuleSet) -> dict:
    """node id -> (fixed cost, unit cost) for every node that passes every fence and holds stock."""
    to = order.ship_to
    lat, lon, country = to.latitude, to.longitude, to.country
    pickup = None
    if order.delivery_mode is DeliveryMode.CLICK_AND_COLLECT:
        pickup = network.node(order.pickup_store_id)
        lat, lon, country = pickup.latitude, pickup.longitude, pickup.country
    allowed = rules.allowed_node_types(order.customer_type, order.channel)
    out = {}
    for node in network.nodes:
        if not node.active or node.capacity == 0:
            continue
        if pickup is not None:
            if node.id != pickup.id and node.type not in rules.click_collect_transfer_types:
                continue
            if node.id != pickup.id and node.type not in allowed:
                continue
        elif node.type not in allowed:
            continue
        if node.ships_to and country not in node.ships_to:
            continue
        if not any(available.get((node.id, line.sku), 0) > 0 for line in order.lines):
            continue
        d = haversine(node.latitude, node.longitude, lat, lon)
        if rules.max_distance_km is not None and d > rules.max_distance_km:
            continue
        fixed = rules.shipment_cost + node.shipment_surcharge + rules.shipment_distance_cost * d
        unit = rules.unit_cost + node.unit_handling_cost + rules.unit_distance_cost * d
        if pickup is not None and node.id == pickup.id:
            fixed, unit = 0.0, node.unit_handling_cost
        out[node.id] = (fixed, unit)
    return out


def pickup_first(order: Order, rules: RuleSet) -> str | None:
    """The store whose own stock every plan takes first, if the rules say so."""
    if (
        order.delivery_mode is DeliveryMode.CLICK_AND_COLLECT
        and rules.click_collect_own_stock_first
    ):
        return order.pickup_store_id
    return None


def optimum(order: Order, network: Network, available: dict, rules: RuleSet) -> float | None:
    """The least total cost over all valid plans (under own-stock-first, over those taking the
    most from the pickup store), or None when no valid plan exists."""
    best = optimum_key(order, network, available, rules)
    return None if best is None else best[1]


def plan_key(plan, order: Order, rules: RuleSet) -> tuple[int, float]:
    """What the engine minimises, from a plan: (-units from the pickup store's own stock when
    the rules put it first, else 0; the plan's cost)."""
    store = pickup_first(order, rules)
    own = sum(s.units for s in plan.shipments if s.node_id == store)
    return -own, plan.total_cost


def optimum_key(
    order: Order, network: Network, available: dict, rules: RuleSet
) -> tuple[int, float] | None:
    """The least `plan_key` over all valid plans, or None when no valid plan exists."""
    nodes = eligible(order, network, available, rules)
    limit = 1 if rules.ship_complete else rules.max_shipments
    groups: dict[str, list] = {}
    items = []  # (lines, whole?)
    for line in order.lines:
        if line.ship_group is not None:
            groups.setdefault(line.ship_group, []).append(line)
        elif rules.allow_line_split and not rules.ship_complete:
            items.append(([line], False))
        else:
            items.append(([line], True))
    items += [(lines, True) for lines in groups.values()]
    penalty = rules.unfilled_unit_penalty if rules.allow_partial else None
    store = pickup_first(order, rules)
    best = None  # (-units from the pickup store's own stock, cost)
    ids = sorted(nodes)
    for size in range(0, len(ids) + 1):
        if limit is not None and size > limit:
            break
        for chosen in combinations(ids, size):
            key = (0, sum(nodes[n][0] for n in chosen))
            for lines, whole in items:
                part = _item_cost(lines, whole, chosen, nodes, available, penalty, store)
                if part is None:
                    key = None
                    break
                key = (key[0] - part[0], key[1] + part[1])
            if key is not None and (best is None or key < best):
                best = key
    return best


def _item_cost(lines, whole, chosen, nodes, available, penalty, store):
    """(units from the pickup store's own stock, cost) of the best way to ship one item from
    the nodes `chosen`, or None when they cannot."""
    own = store if store in chosen else None
    if whole:
        units = sum(line.quantity for line in lines)
        holders = [
            n
            for n in chosen
            if all(available.get((n, line.sku), 0) >= line.quantity for line in lines)
        ]
        if own in holders:
            return units, nodes[own][1] * units
        options = [nodes[n][1] * units for n in holders]
        if penalty is not None:
            options.append(penalty * units)
        return (0, min(options)) if options else None
    (line,) = lines
    left, cost, from_store = line.quantity, 0.0, 0
    if own is not None:
        from_store = min(left, available.get((own, line.sku), 0))
        cost, left = from_store * nodes[own][1], left - from_store
    for n in sorted((n for n in chosen if n != own), key=lambda n: nodes[n][1]):
        if penalty is not None and nodes[n][1] >= penalty:
            break
        take = min(left, available.get((n, line.sku), 0))
        cost += take * nodes[n][1]
        left -= take
    if left and penalty is None:
        return None
    return from_store, cost + (penalty or 0.0) * left


def violations(plan, order: Order, network: Network, available: dict, rules: RuleSet) -> list[str]:
    """Every fence the plan breaks, checked from the raw inputs; empty when the plan is valid."""
    found = []
    nodes = eligible(order, network, available, rules)
    quantity = {line.sku: line.quantity for line in order.lines}
    shipped: dict[str, int] = {}
    sender: dict[str, set] = {}
    for s in plan.shipments:
        if s.node_id not in nodes:
            found.append(f"{s.node_id} is fenced out")
        for line in s.lines:
            if line.quantity > available.get((s.node_id, line.sku), 0):
                found.append(f"{s.node_id} ships {line.quantity} x {line.sku}, more than available")
            shipped[line.sku] = shipped.get(line.sku, 0) + line.quantity
            sender.setdefault(line.sku, set()).add(s.node_id)
    limit = 1 if rules.ship_complete else rules.max_shipments
    if limit is not None and len(plan.shipments) > limit:
        found.append(f"{len(plan.shipments)} shipments > limit {limit}")
    for sku, units in shipped.items():
        if units > quantity[sku]:
            found.append(f"{sku}: {units} shipped > {quantity[sku]} ordered")
    if plan.status.value != "INFEASIBLE" and not rules.allow_partial:
        for sku, q in quantity.items():
            if shipped.get(sku, 0) != q:
                found.append(f"{sku}: {shipped.get(sku, 0)} shipped, {q} ordered")
    groups: dict[str, list] = {}
    for line in order.lines:
        whole = line.ship_group is not None or not rules.allow_line_split or rules.ship_complete
        if whole and len(sender.get(line.sku, ())) > 1:
            found.append(f"{line.sku} split across {sorted(sender[line.sku])}")
        if whole and line.sku in shipped and shipped[line.sku] != line.quantity:
            found.append(f"{line.sku} must ship whole")
        if line.ship_group is not None:
            groups.setdefault(line.ship_group, []).append(line.sku)
    for group, skus in groups.items():
        senders = {frozenset(sender.get(sku, ())) for sku in skus}
        if len(senders) > 1:
            found.append(f"group {group} not shipped together: {senders}")
    return found
