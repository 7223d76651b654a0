"""The package keeps its shape: imports point one way, and the pure cores import no I/O.

The layers, lowest first: errors, engine, orders, ports, service, api, app, then the two tools on
top, bench and cli. A module may import its own layer and those below it. Adapters sit beside the
layers: they import ports and below (and other adapters), and only app/ picks them; testing/ holds
helpers that start real servers and imports nothing of the package. Protobuf and gRPC stop at api/
(cli and bench are gRPC clients, so they may use the generated stubs too).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "allocation_engine"
LAYERS = (
    "errors", "engine", "orders", "ports", "service", "observability", "api", "app", "bench", "cli"
)  # fmt: skip
RANK = {name: rank for rank, name in enumerate(LAYERS)}
BELOW_ADAPTERS = {"errors", "engine", "orders", "ports", "adapters"}
PICKS_ADAPTERS = {"adapters", "app"}
SPEAKS_PROTOBUF = {"api", "app", "bench", "cli", "proto"}
IO_MODULES = {
    "grpc",
    "grpc_health",
    "grpc_reflection",
    "grpc_status",
    "google",
    "redis",
    "http",
    "urllib",
    "socket",
    "smtplib",
    "email",
    "requests",
    "jinja2",
    "subprocess",
    "threading",
    "multiprocessing",
    "asyncio",
}
PURE = {"engine", "orders"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Absolute names of every module `path` imports, wherever the import statement stands."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            found.add(target)
            # `from package import module` imports the module too
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return found


def room(module: str) -> str:
    """The top-level room of a package module: `allocation_engine.api.server` -> `api`."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def sources() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "proto" not in p.relative_to(PACKAGE).parts)


def graph() -> dict[str, set[str]]:
    """module -> package modules it imports (only names that are modules of the package)."""
    modules = {module_name(p): p for p in sources()}
    return {
        name: {m for m in imports_of(path) if m in modules and m != name}
        for name, path in modules.items()
    }


def upward_imports(edges: dict[str, set[str]]) -> list[str]:
    wrong = []
    for module, targets in edges.items():
        here = room(module)
        for target in targets:
            there = room(target)
            if here == there or there == "":
                continue
            if there == "adapters" and here not in PICKS_ADAPTERS:
                wrong.append(f"{module} -> {target}: only app/ picks adapters")
            elif here == "adapters" and there not in BELOW_ADAPTERS:
                wrong.append(f"{module} -> {target}: adapters import ports and below")
            elif here == "testing" or (there == "testing" and here not in {"bench", "app"}):
                wrong.append(f"{module} -> {target}: testing/ is for tests and benchmarks")
            elif here in RANK and there in RANK and RANK[there] > RANK[here]:
                wrong.append(f"{module} -> {target}: {here} is below {there}")
    return sorted(wrong)


def import_circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected set of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges.get(node, set()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            members = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                members.append(member)
                if member == node:
                    break
            if len(members) > 1:
                circles.append(sorted(members))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return circles


def test_no_module_imports_a_layer_above_its_own() -> None:
    """Given every module of the package, then none imports upward or picks an adapter outside
    app/."""
    assert upward_imports(graph()) == []


def test_no_import_circle() -> None:
    """Given the import graph of the package, then it has no circle (not even inside a room)."""
    assert import_circles(graph()) == []


def test_protobuf_stops_at_the_edge() -> None:
    """Given the rooms below api/, then none imports generated protobuf code or grpc."""
    wrong = defaultdict(list)
    for path in sources():
        here = room(module_name(path))
        if here in SPEAKS_PROTOBUF:
            continue
        for target in imports_of(path):
            if target.startswith("allocation_engine.proto") or target.split(".")[0] in {
                "grpc",
                "google",
            }:
                wrong[module_name(path)].append(target)
    assert dict(wrong) == {}


@pytest.mark.parametrize("core", sorted(PURE))
def test_pure_cores_import_no_io(core: str) -> None:
    """Given the pure cores (engine/, orders/), then they import no network, process or template
    library: they take data in and give data out."""
    wrong = {
        module_name(path): sorted(t for t in imports_of(path) if t.split(".")[0] in IO_MODULES)
        for path in sources()
        if room(module_name(path)) == core
    }
    assert {m: t for m, t in wrong.items() if t} == {}


def test_the_checks_see_a_violation() -> None:
    """Given made-up edges that break each rule, then the checks name every one of them (so a
    green run means the package obeys the rules, not that the checks read nothing)."""
    bad = {
        "allocation_engine.engine.solver": {"allocation_engine.service.planner"},
        "allocation_engine.service.planner": {"allocation_engine.adapters.redis.inventory"},
        "allocation_engine.adapters.wms": {"allocation_engine.service.outbox"},
        "allocation_engine.cli.a": {"allocation_engine.cli.b"},
        "allocation_engine.cli.b": {"allocation_engine.cli.a"},
    }
    assert len(upward_imports(bad)) == 3
    assert import_circles(bad) == [["allocation_engine.cli.a", "allocation_engine.cli.b"]]
    assert len(graph()) > 50, "the import graph should hold every module of the package"
