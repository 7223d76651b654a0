"""The Redis `InventoryStore`: several server processes share one Redis and agree.

Two layouts of the same stock, for two kinds of access:

* Per node (`inv:{node}:pos`, with the node's holds beside it) is the **authority**. Every
  check-and-hold is one Redis FUNCTION over one node's keys (see `inventory.lua`), so it is
  atomic, and since a node's keys share one hash slot (`keys.py` says how and why), it runs
  unchanged on Redis Cluster. A hold is either taken whole at a node or refused; nothing is read,
  changed and written back from Python.
* Per sku (`view:{sku}`, node -> on_hand:reserved:safety_stock:seq) is the **planning view**.
  Planning an order needs each of its skus across every node, and that is one pipelined round
  trip of HGETALLs here, where the per-node layout would need one read per node.

The choice: plan optimistically from the view and let the per-node function be the authority.
The planner reads the view; when a node refuses a hold (stock moved since the read), the
reservation saga gives back what it took and plans again from fresh numbers. The view cannot make
us oversell; at worst it costs a re-plan. Every state written into the view carries the node's
sequence number and only replaces an older one, so late or repeated writes never roll it back.

On a single Redis the node function also writes the views of every sku it changes, in the same
atomic step, so view and authority agree at every moment (and a hold costs one round trip). The
caller names the skus it expects (a hold's lines, a reservation's plan); a hold function that
would touch another (an expired hold it sweeps on the way) changes nothing and answers which, and
is called again with those view keys too: every key a function touches is still in its KEYS.
On Redis Cluster the views live in other hash slots, which no function may touch together with a
node's keys, so they are written in a second step (`ae_view_merge`, grouped by slot); a process
that dies between the two steps leaves a position stale in the view until its node changes again
or `reconcile_views` (run by `allocation-engine repair`) rewrites it from the authority, which
costs re-plans but never an oversell. The shipments each node spent today (node capacity, see
`ports/inventory.py`) have the same two layouts: `inv:{node}:ships` is the authority, moved by
the hold functions, and `ships:{view}` the planning view. `cluster_layout=True` runs the
Cluster path on a single Redis (the shared store tests do).

Incoming supply (see `ports/inventory.py`) lives with its node (`inv:{node}:lots`), so the hold
functions check and move shelf and lot units in one atomic step, Cluster or not; receiving and
revising a lot are node functions too, idempotent by key, their answers kept beside the node's
applied keys. Two indexes sit beside them, written in steps of their own: `{meta}:lots` (which
node holds a lot id: receipts and revisions name only the lot) and `lots:{sku}` (the lots of a
sku still expected, so planning reads only the nodes that have some). A crash between steps
leaves an index entry without its lot, which readers skip.

Everything else lives here too, so any server process can serve any request: nodes, rules,
reservation records (compare-and-set in a FUNCTION) and idempotency keys. Holds carry their
expiry in the data (`inv:{node}:exp`), and every node function drops expired holds before it
looks at stock, so an expired hold stops counting at once; an expiry index of reservations lets
any process find those whose time is up and sweep them. Every key name comes from `keys.py`,
every FUNCTION call goes through `functions.py` (which reloads the library when Redis lost it).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import date
from typing import Any, cast

import redis
from redis.cluster import RedisCluster
from redis.crc import key_slot

from allocation_engine.adapters.redis import keys
from allocation_engine.adapters.redis.connection import guarded, open_client
from allocation_engine.adapters.redis.functions import Call, FunctionLibrary
from allocation_engine.adapters.redis.records import (
    node_from_json,
    node_to_json,
    reservation_from_json,
    reservation_to_json,
)
from allocation_engine.engine.limits import MAX_UNITS
from allocation_engine.engine.network import Node
from allocation_engine.errors import (
    IdempotencyConflict,
    InvalidInput,
    NotFound,
    StoreContention,
    VersionConflict,
)
from allocation_engine.ports.inventory import (
    EXPIRING_STATES,
    LOT_BELOW_HELD,
    LOT_OF_OTHER,
    OPEN_STATES,
    SWEPT_STATES,
    Adjustment,
    AdjustOutcome,
    Hold,
    HoldOutcome,
    KeyClaim,
    Level,
    NetworkRecord,
    ReceiveOutcome,
    ReservationRecord,
    ReservationState,
    ReviseOutcome,
    SnapshotLine,
    SnapshotOutcome,
    StagedSnapshot,
    StockRead,
    StoredRules,
    SupplyKind,
    SupplyLot,
)

US, RS = "\x1f", "\x1e"  # unit and record separators of the bulk arguments (ids never hold them)
NEED_VIEWS = -2  # a hold function's answer: give me these view keys too (it changed nothing)
MAX_VIEW_ROUNDS = 8
STAGE_NODES_PER_TRIP = 20  # nodes of a staged snapshot committed per round trip
DAY_MS = 86_400_000  # node capacity counts shipments per UTC day
# How long finished reservations and idempotency keys (requests' and adjustments') are kept.
KEEP_SECONDS = 7 * 24 * 3600


def _ms(seconds: float | None) -> int:
    return 0 if seconds is None else round(seconds * 1000)


def _unpack(value: str) -> tuple[int, int, int]:
    on_hand, reserved, safety, _ = value.split(":")
    return int(on_hand), int(reserved), int(safety)


def _view_levels(sku: str, view: dict[str, str]) -> list[Level]:
    """Levels of one sku from its view hash, by node id (the hot path of every planning read)."""
    out = []
    for node_id in sorted(view):
        on_hand, reserved, safety, _ = view[node_id].split(":")
        out.append(Level(node_id, sku, int(on_hand), int(reserved), int(safety)))
    return out


def _shipments(view: dict[str, str], day: int) -> dict[str, int]:
    """node id -> shipments spent on `day`, from the shipments view."""
    out = {}
    for node_id, value in view.items():
        spent_day, used, _ = value.split(":")
        if int(spent_day) == day and int(used):
            out[node_id] = int(used)
    return out


def _lot(lot_id: str, node_id: str, raw: str) -> SupplyLot:
    """A lot from its JSON in `inv:{node}:lots`."""
    data = json.loads(raw)
    return SupplyLot(
        lot_id,
        node_id,
        data["n"],
        int(data["u"]),
        date.fromisoformat(data["d"]),
        SupplyKind(data["k"]),
        int(data["h"]),
    )


def _ids(value: Any) -> tuple[str, ...]:
    """A list of ids from Lua's JSON (which writes an empty list as `{}`)."""
    return tuple(value or ())


def _levels(node_id: str, tail: Sequence[Any]) -> tuple[Level, ...]:
    """Levels from a node function's `{S1, view1, ...}` reply tail."""
    return tuple(Level(node_id, tail[i], *_unpack(tail[i + 1])) for i in range(0, len(tail), 2))


class RedisStore:
    """`InventoryStore` on Redis 7 (single server or Cluster); see the module docstring."""

    def __init__(
        self, client: redis.Redis | RedisCluster, *, cluster_layout: bool | None = None
    ) -> None:
        """`cluster_layout` (default: whether `client` is a cluster client) writes the per-sku
        views in a second step, grouped by hash slot, as Redis Cluster requires; the tests run
        that path on a single Redis too."""
        self._redis = client
        self._cluster = (
            isinstance(client, RedisCluster) if cluster_layout is None else cluster_layout
        )
        self._library = FunctionLibrary.shipped(client, "inventory.lua")

    @classmethod
    def from_url(cls, url: str, *, cluster_layout: bool | None = None) -> RedisStore:
        """A store on the Redis or Redis Cluster `url` names (see `connection.open_client`)."""
        return cls(open_client(url, socket_timeout=5.0), cluster_layout=cluster_layout)

    def _inline(self, skus: Iterable[str]) -> list[str]:
        """View keys a node function writes itself: all of `skus` on one Redis, none on Cluster."""
        return [] if self._cluster else [keys.view(sku) for sku in skus]

    def _merge_views(
        self,
        updates: Iterable[tuple[str, Sequence[Any]]],
        written: Iterable[tuple[str, str]] = (),
        *,
        force: bool = False,
    ) -> None:
        """Writes node replies `(node id, {S1, view1, ...})` into the per-sku views, but for
        the (node id, sku) pairs in `written`, which the node functions wrote themselves
        (`force`: whatever the layout, as reconciling does)."""
        done = set() if self._cluster or force else set(written)
        grouped = self._cluster or force
        by_group: dict[int, tuple[list[str], dict[str, int], list[str]]] = {}
        for node_id, tail in updates:
            for i in range(0, len(tail), 2):
                if (node_id, tail[i]) in done:
                    continue
                key = keys.view(tail[i])
                group = key_slot(key.encode()) if grouped else 0
                views, index, records = by_group.setdefault(group, ([], {}, []))
                if key not in index:
                    index[key] = len(views) + 1
                    views.append(key)
                records.append(f"{index[key]}{US}{node_id}{US}{tail[i + 1]}")
        if by_group:
            self._library.call_many(
                Call("ae_view_merge", views, [RS.join(records)])
                for views, _, records in by_group.values()
            )

    # network
    @guarded
    def upsert_nodes(self, nodes: Sequence[Node]) -> int:
        args = [x for node in nodes for x in (node.id, node_to_json(node))]
        version = self._library.call("ae_upsert_nodes", [keys.NODES, keys.NODES_VERSION], args)
        return int(version)

    @guarded
    def load_nodes(self) -> NetworkRecord:
        pipe = self._redis.pipeline(transaction=False)
        pipe.get(keys.NODES_VERSION)
        pipe.hgetall(keys.NODES)
        version, raw = pipe.execute()
        nodes = tuple(node_from_json(raw[node_id]) for node_id in sorted(raw))
        return NetworkRecord(int(version or 0), nodes)

    # rules
    @guarded
    def get_rules(self) -> StoredRules | None:
        pipe = self._redis.pipeline(transaction=False)
        pipe.get(keys.RULES)
        pipe.get(keys.RULES_REVISION)
        text, revision = pipe.execute()
        return None if text is None else StoredRules(int(revision), text)

    @guarded
    def put_rules(self, text: str, expected_revision: int | None = None) -> int:
        expected = "" if expected_revision is None else str(expected_revision)
        revision = self._library.call(
            "ae_put_rules", [keys.RULES, keys.RULES_REVISION], [text, expected]
        )
        if revision <= 0:
            raise VersionConflict("expected_revision", expected_revision or 0, -revision)
        return int(revision)

    # stock
    @guarded
    def stock(self, skus: Sequence[str], now: float) -> StockRead:
        pipe = self._redis.pipeline(transaction=False)
        if skus:
            pipe.hgetall(keys.SHIPMENTS_VIEW)
        for sku in skus:
            pipe.hgetall(keys.view(sku))
        pipe.get(keys.NODES_VERSION)
        pipe.get(keys.RULES_REVISION)
        pipe.zrangebyscore(keys.RESERVATION_EXPIRY, "-inf", _ms(now), start=0, num=1)
        *views, nodes_version, rules_revision, due = pipe.execute()
        shipments = _shipments(views.pop(0) if skus else {}, _ms(now) // DAY_MS)
        levels = {sku: _view_levels(sku, view) for sku, view in zip(skus, views, strict=True)}
        return StockRead(
            levels, int(nodes_version or 0), int(rules_revision or 0), bool(due), shipments
        )

    @guarded
    def node_stock(self, node_id: str) -> tuple[Level, ...]:
        raw = cast(dict[str, str], self._redis.hgetall(keys.node_keys(node_id).pos))
        return tuple(Level(node_id, sku, *_unpack(raw[sku])) for sku in sorted(raw))

    @guarded
    def apply_snapshot(self, version: int, lines: Sequence[SnapshotLine]) -> SnapshotOutcome:
        current = self._library.call("ae_snapshot_version", [keys.SNAPSHOT_VERSION], [version])
        if int(current) > version:
            raise VersionConflict("version", version, int(current))
        by_node: dict[str, tuple[list[str], list[str]]] = {}
        for line in lines:
            safety = "" if line.safety_stock is None else line.safety_stock
            skus, records = by_node.setdefault(line.node_id, ([], []))
            skus.append(line.sku)
            records.append(f"{line.sku}{US}{line.on_hand}{US}{safety}")
        replies = self._library.call_many(
            Call(
                "ae_snapshot",
                [*keys.node_keys(node_id), *self._inline(skus)],
                [node_id, version, RS.join(records)],
            )
            for node_id, (skus, records) in by_node.items()
        )
        self._merge_views((node_id, r[3:]) for node_id, r in zip(by_node, replies, strict=True))
        return SnapshotOutcome(sum(r[0] for r in replies), sum(r[1] for r in replies))

    @guarded
    def stage_snapshot(self, version: int) -> StagedSnapshot:
        current = int(cast(str | None, self._redis.get(keys.SNAPSHOT_VERSION)) or 0)
        if current > version:
            raise VersionConflict("version", version, current)
        return RedisStage(self, version, uuid.uuid4().hex)

    def _stage_lines(self, stage: str, lines: Sequence[SnapshotLine]) -> None:
        by_node: dict[str, dict[Any, Any]] = {}
        for line in lines:
            safety = "" if line.safety_stock is None else str(line.safety_stock)
            by_node.setdefault(line.node_id, {})[line.sku] = f"{line.on_hand}{US}{safety}"
        pipe = self._redis.pipeline(transaction=False)
        for node_id, mapping in by_node.items():
            key = keys.node_stage(node_id, stage)
            pipe.hset(key, mapping=mapping)
            pipe.expire(key, keys.SNAPSHOT_STAGE_TTL)
        if by_node:
            pipe.sadd(keys.snapshot_stage(stage), *by_node)
            pipe.expire(keys.snapshot_stage(stage), keys.SNAPSHOT_STAGE_TTL)
        pipe.execute()

    def _commit_stage(self, stage: str, version: int) -> SnapshotOutcome:
        current = self._library.call("ae_snapshot_version", [keys.SNAPSHOT_VERSION], [version])
        if int(current) > version:
            self._abort_stage(stage)
            raise VersionConflict("version", version, int(current))
        node_ids = sorted(cast(set[str], self._redis.smembers(keys.snapshot_stage(stage))))
        applied = skipped = 0
        for first in range(0, len(node_ids), STAGE_NODES_PER_TRIP):
            batch = node_ids[first : first + STAGE_NODES_PER_TRIP]
            pipe = self._redis.pipeline(transaction=False)
            for node_id in batch:
                pipe.hkeys(keys.node_stage(node_id, stage))
            staged: list[list[str]] = pipe.execute()
            replies = self._library.call_many(
                Call(
                    "ae_snapshot_commit",
                    [
                        *keys.node_keys(node_id),
                        keys.node_stage(node_id, stage),
                        *self._inline(skus),
                    ],
                    [node_id, version, RS.join(skus)],
                )
                for node_id, skus in zip(batch, staged, strict=True)
            )
            self._merge_views((n, r[3:]) for n, r in zip(batch, replies, strict=True))
            applied += sum(int(r[0]) for r in replies)
            skipped += sum(int(r[1]) for r in replies)
        self._redis.delete(keys.snapshot_stage(stage))
        return SnapshotOutcome(applied, skipped)

    def _abort_stage(self, stage: str) -> None:
        node_ids = cast(set[str], self._redis.smembers(keys.snapshot_stage(stage)))
        pipe = self._redis.pipeline(transaction=False)
        for node_id in node_ids:
            pipe.delete(keys.node_stage(node_id, stage))
        pipe.delete(keys.snapshot_stage(stage))
        pipe.execute()

    @guarded
    def adjust(self, key: str, adjustments: Sequence[Adjustment]) -> AdjustOutcome:
        by_node: dict[str, list[Adjustment]] = {}
        for a in adjustments:
            by_node.setdefault(a.node_id, []).append(a)
        now_ms = self._server_ms()
        replies = self._library.call_many(
            Call(
                "ae_adjust",
                [
                    *keys.node_keys(node_id),
                    keys.node_applied(node_id),
                    *self._inline(a.sku for a in mine),
                ],
                [node_id, key, now_ms, KEEP_SECONDS * 1000, MAX_UNITS]
                + [
                    x
                    for a in mine
                    for x in (
                        a.sku,
                        a.on_hand_delta,
                        "" if a.safety_stock is None else a.safety_stock,
                    )
                ],
            )
            for node_id, mine in by_node.items()
        )
        levels: dict[tuple[str, str], Level] = {}
        clamped: list[Adjustment] = []
        tails = []
        for (node_id, mine), reply in zip(by_node.items(), replies, strict=True):
            count = int(reply[0])
            short = set(reply[1 : 1 + count])
            clamped += [a for a in mine if a.sku in short]
            tail = reply[2 + count :]
            tails.append((node_id, tail))
            levels |= {(level.node_id, level.sku): level for level in _levels(node_id, tail)}
        self._merge_views(tails, written=((a.node_id, a.sku) for a in adjustments))
        ordered = dict.fromkeys((a.node_id, a.sku) for a in adjustments)
        return AdjustOutcome(tuple(levels[k] for k in ordered if k in levels), tuple(clamped))

    def _server_ms(self) -> int:
        seconds, micros = self._redis.time()
        return int(seconds) * 1000 + int(micros) // 1000

    # holds
    def _hold_calls(
        self, function: str, calls: Sequence[tuple[str, Sequence[str], Sequence[Any]]], now: float
    ) -> list[Any]:
        """Runs hold functions: `calls` are (node id, the skus the call is expected to touch,
        the function's own ARGV). On a single Redis each call gets the view keys of its skus;
        a call that would touch others answers which (changing nothing) and is sent again with
        those too. Returns the replies `{code, {}, shipments value, S1, view1, ...}`."""
        now_ms = _ms(now)
        guesses = [list(dict.fromkeys(skus)) for _, skus, _ in calls]
        replies: list[Any] = [None] * len(calls)
        pending = list(range(len(calls)))
        for _ in range(MAX_VIEW_ROUNDS):
            batch = self._library.call_many(
                Call(
                    function,
                    self._hold_keys(calls[i][0], guesses[i]),
                    [calls[i][0], now_ms, RS.join(guesses[i]), *calls[i][2]],
                )
                for i in pending
            )
            again = []
            for i, reply in zip(pending, batch, strict=True):
                if reply[0] == NEED_VIEWS:
                    guesses[i] += [sku for sku in reply[1] if sku not in guesses[i]]
                    again.append(i)
                else:
                    replies[i] = reply
            pending = again
            if not pending:
                break
        else:
            raise StoreContention(f"{function}: the views it needs kept changing; retry")
        if self._cluster:
            self._merge_views((calls[i][0], r[3:]) for i, r in enumerate(replies))
            self._merge_shipments((calls[i][0], r[2]) for i, r in enumerate(replies))
        return replies

    def _hold_keys(self, node_id: str, skus: Sequence[str]) -> list[str]:
        node = [*keys.node_keys(node_id), keys.node_shipments(node_id), keys.node_lots(node_id)]
        if self._cluster:
            return node
        return [*node, keys.SHIPMENTS_VIEW, *(keys.view(sku) for sku in skus)]

    def _merge_shipments(self, updates: Iterable[tuple[str, str]]) -> None:
        records = [f"1{US}{node_id}{US}{value}" for node_id, value in updates if value]
        if records:
            self._library.call("ae_view_merge", [keys.SHIPMENTS_VIEW], [RS.join(records)])

    @guarded
    def hold(self, holds: Sequence[Hold], now: float) -> list[HoldOutcome]:
        replies = self._hold_calls(
            "ae_hold",
            [
                (
                    h.node_id,
                    list(h.lines),
                    [
                        h.reservation_id,
                        _ms(h.expires_at),
                        "" if h.capacity is None else h.capacity,
                        RS.join(f"{lot_id}{US}{units}" for lot_id, units in h.lots.items()),
                        *(x for sku, units in h.lines.items() for x in (sku, units)),
                    ],
                )
                for h in holds
            ],
            now,
        )
        out = []
        for h, r in zip(holds, replies, strict=True):
            levels = {lv.sku: lv for lv in _levels(h.node_id, r[3:])}
            mine = tuple(levels[sku] for sku in h.lines if sku in levels)
            free = {r[1][i]: int(r[1][i + 1]) for i in range(0, len(r[1]), 2)}
            out.append(HoldOutcome(r[0] == 1, mine, no_capacity=r[0] == 2, lots_free=free))
        return out

    def _drop(
        self,
        function: str,
        node_ids: Sequence[str],
        reservation_id: str,
        expected: Mapping[str, Iterable[str]] | None,
    ) -> None:
        guess = expected or {}
        self._hold_calls(
            function,
            [(node_id, list(guess.get(node_id, ())), [reservation_id]) for node_id in node_ids],
            time.time(),  # unused: a hold gives its shipment back to the day it spent it on
        )

    @guarded
    def release(
        self,
        node_ids: Sequence[str],
        reservation_id: str,
        expected: Mapping[str, Iterable[str]] | None = None,
    ) -> None:
        self._drop("ae_release", node_ids, reservation_id, expected)

    @guarded
    def fulfil(
        self,
        node_ids: Sequence[str],
        reservation_id: str,
        expected: Mapping[str, Iterable[str]] | None = None,
    ) -> None:
        self._drop("ae_fulfil", node_ids, reservation_id, expected)

    @guarded
    def pin(self, node_ids: Sequence[str], reservation_id: str, now: float) -> list[bool]:
        replies = self._hold_calls(
            "ae_pin", [(node_id, [], [reservation_id]) for node_id in node_ids], now
        )
        return [r[0] == 1 for r in replies]

    @guarded
    def node_holds(self, node_id: str) -> tuple[Hold, ...]:
        raw = cast(dict[str, str], self._redis.hgetall(keys.node_keys(node_id).holds))
        out = []
        for rid in sorted(raw):
            data = json.loads(raw[rid])
            expires = int(data.get("e") or 0)
            lines = {sku: int(units) for sku, units in dict(data.get("l") or {}).items()}
            lots = {lot: int(units) for lot, units in dict(data.get("t") or {}).items()}
            out.append(Hold(node_id, rid, lines, expires / 1000 if expires else None, lots=lots))
        return tuple(out)

    # incoming supply
    @guarded
    def put_supply(self, key: str, lots: Sequence[SupplyLot]) -> tuple[SupplyLot, ...]:
        now_ms = self._server_ms()
        index = self._library.call(
            "ae_lot_index",
            [keys.LOT_INDEX, keys.LOTS_DONE],
            [now_ms, KEEP_SECONDS * 1000]
            + [x for lot in lots for x in (lot.id, f"{lot.node_id}{US}{lot.sku}")],
        )
        if index[0]:
            i = int(index[0]) - 1
            node_id, sku = str(index[1]).split(US)
            raise InvalidInput.one(f"lots[{i}].id", lots[i].id, LOT_OF_OTHER.format(node_id, sku))
        by_node: dict[str, list[int]] = {}
        for i, lot in enumerate(lots):
            by_node.setdefault(lot.node_id, []).append(i)
        pipe = self._redis.pipeline(transaction=False)
        for lot in lots:
            pipe.hset(keys.sku_lots(lot.sku), lot.id, lot.node_id)
        pipe.execute()
        replies = self._library.call_many(
            Call(
                "ae_supply_put",
                [
                    keys.node_lots(node_id),
                    keys.node_applied(node_id),
                    keys.node_answers(node_id),
                ],
                [key, now_ms, KEEP_SECONDS * 1000]
                + [
                    x
                    for i in mine
                    for x in (
                        lots[i].id,
                        lots[i].sku,
                        lots[i].units,
                        lots[i].expected.isoformat(),
                        lots[i].kind.value,
                    )
                ],
            )
            for node_id, mine in by_node.items()
        )
        stored: dict[int, SupplyLot] = {}
        for (node_id, mine), reply in zip(by_node.items(), replies, strict=True):
            if reply[0] == -1:
                i = mine[int(reply[1]) - 1]
                raise InvalidInput.one(
                    f"lots[{i}].units", lots[i].units, LOT_BELOW_HELD.format(lots[i].id, reply[2])
                )
            for i, raw in zip(mine, reply[1:], strict=True):
                stored[i] = (
                    _lot(lots[i].id, node_id, raw) if raw else replace(lots[i], units=0, held=0)
                )
        return tuple(stored[i] for i in range(len(lots)))

    @guarded
    def list_supply(
        self, skus: Sequence[str] | None = None, node_id: str | None = None
    ) -> tuple[SupplyLot, ...]:
        if skus is None:
            index = cast(dict[str, str], self._redis.hgetall(keys.LOT_INDEX))
            owners = {lot_id: owner.split(US)[0] for lot_id, owner in index.items()}
        else:
            pipe = self._redis.pipeline(transaction=False)
            for sku in dict.fromkeys(skus):
                pipe.hgetall(keys.sku_lots(sku))
            owners = {lot_id: nid for found in pipe.execute() for lot_id, nid in found.items()}
        by_node: dict[str, list[str]] = {}
        for lot_id, nid in owners.items():
            if node_id is None or nid == node_id:
                by_node.setdefault(nid, []).append(lot_id)
        node_ids = sorted(by_node)
        pipe = self._redis.pipeline(transaction=False)
        for nid in node_ids:
            pipe.hmget(keys.node_lots(nid), sorted(by_node[nid]))
        out = []
        for nid, raws in zip(node_ids, pipe.execute(), strict=True):
            for lot_id, raw in zip(sorted(by_node[nid]), raws, strict=True):
                lot = None if raw is None else _lot(lot_id, nid, raw)
                if lot is not None and (lot.units or lot.held):  # None: received in full
                    out.append(lot)
        return tuple(out)

    def _lot_owner(self, lot_id: str) -> tuple[str, str]:
        owner = cast(str | None, self._redis.hget(keys.LOT_INDEX, lot_id))
        if owner is None:
            raise NotFound("lot_id", lot_id)
        node_id, sku = owner.split(US)
        return node_id, sku

    @guarded
    def receive_supply(self, key: str, lot_id: str, units: int, now: float) -> ReceiveOutcome:
        node_id, sku = self._lot_owner(lot_id)
        node = keys.node_keys(node_id)
        reply = self._library.call(
            "ae_supply_receive",
            [
                *node,
                keys.node_lots(node_id),
                keys.node_applied(node_id),
                keys.node_answers(node_id),
                *self._inline([sku]),
            ],
            [node_id, key, self._server_ms(), KEEP_SECONDS * 1000, lot_id, units, MAX_UNITS],
        )
        if reply[0] == -1:
            raise NotFound("lot_id", lot_id)
        answer = json.loads(reply[1])
        if reply[0] == 1:
            self._merge_views([(node_id, reply[3:])], written=[(node_id, sku)])
            if not answer["lot"]:  # received in full: unlisted now, forgotten after KEEP
                pipe = self._redis.pipeline(transaction=False)
                pipe.hdel(keys.sku_lots(sku), lot_id)
                pipe.zadd(keys.LOTS_DONE, {lot_id: self._server_ms()})
                pipe.execute()
        on_hand, reserved, safety = (int(x) for x in answer["lv"].split(":"))
        return ReceiveOutcome(
            Level(node_id, sku, on_hand, reserved, safety),
            _lot(lot_id, node_id, answer["lot"]) if answer["lot"] else None,
            _ids(answer["r"]),
            _ids(answer["s"]),
        )

    @guarded
    def revise_supply(
        self, key: str, lot_id: str, units: int | None = None, expected: date | None = None
    ) -> ReviseOutcome:
        node_id, _ = self._lot_owner(lot_id)
        reply = self._library.call(
            "ae_supply_revise",
            [
                keys.node_lots(node_id),
                keys.node_keys(node_id).holds,
                keys.node_applied(node_id),
                keys.node_answers(node_id),
            ],
            [
                key,
                self._server_ms(),
                KEEP_SECONDS * 1000,
                lot_id,
                "" if units is None else units,
                "" if expected is None else expected.isoformat(),
            ],
        )
        if reply[0] == -1:
            raise NotFound("lot_id", lot_id)
        answer = json.loads(reply[1])
        return ReviseOutcome(_lot(lot_id, node_id, answer["lot"]), _ids(answer["b"]))

    @guarded
    def reconcile_views(self, node_id: str) -> int:
        node = keys.node_keys(node_id)
        state = self._library.call(
            "ae_node_state", [node.pos, node.seq, keys.node_shipments(node_id)], []
        )
        ships, tail = state[1], state[2:]
        pipe = self._redis.pipeline(transaction=False)
        for i in range(0, len(tail), 2):
            pipe.hget(keys.view(tail[i]), node_id)
        pipe.hget(keys.SHIPMENTS_VIEW, node_id)
        *seen, seen_ships = pipe.execute()
        stale = [
            (tail[i], tail[i + 1])
            for i, old in zip(range(0, len(tail), 2), seen, strict=True)
            if old is None or old.rsplit(":", 1)[0] != tail[i + 1].rsplit(":", 1)[0]
        ]
        fixed = len(stale)
        if stale:
            self._merge_views([(node_id, [x for pair in stale for x in pair])], force=True)
        if ships and (seen_ships or "").rsplit(":", 1)[0] != ships.rsplit(":", 1)[0]:
            self._merge_shipments([(node_id, ships)])
            fixed += 1
        return fixed

    # reservation records
    @guarded
    def create_reservation(self, record: ReservationRecord) -> ReservationRecord:
        pipe = self._redis.pipeline(transaction=False)
        pipe.zadd(keys.RESERVATION_EXPIRY, {record.id: _ms(record.expires_at)}, nx=True)
        pipe.set(keys.reservation(record.id), reservation_to_json(record), nx=True, get=True)
        _, existing = pipe.execute()
        return record if existing is None else reservation_from_json(existing)

    @guarded
    def get_reservation(self, reservation_id: str) -> ReservationRecord | None:
        raw = cast(str | None, self._redis.get(keys.reservation(reservation_id)))
        return None if raw is None else reservation_from_json(raw)

    @guarded
    def replace_reservation(
        self, record: ReservationRecord, expected: ReservationState, expected_attempt: int
    ) -> bool:
        # Scheduled before the swap (same pipeline, in order), never unscheduled: the sweeper
        # drops entries of records that are no longer open, so a crash leaves nothing unswept.
        pipe = self._redis.pipeline(transaction=False)
        if record.state in EXPIRING_STATES:
            pipe.zadd(keys.RESERVATION_EXPIRY, {record.id: _ms(record.expires_at)})
        elif record.state is ReservationState.RELEASING:  # due at once: whoever sweeps finishes it
            pipe.zadd(keys.RESERVATION_EXPIRY, {record.id: 0})
        replies = self._library.call_many(
            [
                Call(
                    "ae_replace_reservation",
                    [keys.reservation(record.id)],
                    [
                        expected.value,
                        expected_attempt,
                        reservation_to_json(record),
                        0 if record.state in OPEN_STATES else KEEP_SECONDS,
                    ],
                )
            ],
            pipeline=pipe,
        )
        return bool(replies[-1])

    @guarded
    def due_reservations(self, now: float, limit: int) -> list[str]:
        due = cast(
            list[str],
            self._redis.zrangebyscore(
                keys.RESERVATION_EXPIRY, "-inf", _ms(now), start=0, num=limit
            ),
        )
        still_open = []
        for rid in due:
            record = self.get_reservation(rid)
            if record is not None and record.state in SWEPT_STATES:
                still_open.append(rid)
            else:
                self._redis.zrem(keys.RESERVATION_EXPIRY, rid)
        return still_open

    # idempotency keys
    @guarded
    def claim_key(self, key: str, fingerprint: str) -> KeyClaim:
        reply = self._library.call(
            "ae_claim_key", [keys.idempotency(key)], [fingerprint, KEEP_SECONDS]
        )
        if reply[0] == -1:
            raise IdempotencyConflict(key)
        return KeyClaim(reply[0] == 1, reply[1] if len(reply) > 1 else None)

    @guarded
    def complete_key(self, key: str, result: str) -> None:
        self._redis.hset(keys.idempotency(key), "result", result)

    @guarded
    def ping(self) -> None:
        self._redis.ping()


class RedisStage:
    """A snapshot staged in Redis (`inv:{node}:stage:<id>` per node, `{meta}:stage:<id>` the
    nodes): the server process keeps nothing of it, so a stream of millions of positions costs
    it one chunk of memory; stock is untouched until `commit`. A stream that dies without
    commit or abort leaves the stage to expire (`keys.SNAPSHOT_STAGE_TTL`)."""

    def __init__(self, store: RedisStore, version: int, stage: str) -> None:
        self._store, self._version, self.stage = store, version, stage

    @guarded
    def add(self, lines: Sequence[SnapshotLine]) -> None:
        self._store._stage_lines(self.stage, lines)

    @guarded
    def commit(self) -> SnapshotOutcome:
        return self._store._commit_stage(self.stage, self._version)

    @guarded
    def abort(self) -> None:
        self._store._abort_stage(self.stage)
