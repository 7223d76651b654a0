"""Channels as data: which shops and marketplaces are connected, read from `channels.toml`.

    [[channel]]
    name = "shopify-de"                 # the channel on every order it places
    kind = "shopify"                    # the platform (see `allocation-engine channels kinds`)
    base_url = "https://acme-de.myshopify.com"
    workflow = "b2c-prepaid"            # optional; absent = the workflow file chooses
    node_types = ["warehouse", "store"] # optional; which node types may serve it
    poll_seconds = 60                   # importers only: how often to poll
    [channel.credentials]               # role -> NAME of the environment variable
    webhook_secret = "SHOPIFY_DE_WEBHOOK_SECRET"
    access_token = "SHOPIFY_DE_ADMIN_TOKEN"
    [channel.skus]                      # the platform's sku or variant id -> ours
    "MUG-WHT-350" = "SKU-0001"
    [channel.options]                   # platform-specific (store_hash, marketplace_id, ...)

Secrets never live in the file: it names environment variables, which the server reads when it
starts (`app.channels`). Validation reads the whole file and names every problem (the
channel, the key, the value), like the workflow and rules files, so a bad file is refused before
any order arrives.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from allocation_engine.engine.limits import MAX_ID_CHARS
from allocation_engine.engine.network import NODE_TYPES
from allocation_engine.errors import InvalidInput, ProblemCollector
from allocation_engine.ports.channels import ChannelSettings

NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
ENV_VAR = re.compile(r"^[A-Z_][A-Z0-9_]{0,127}$")
KEYS = frozenset(
    {"name", "kind", "base_url", "workflow", "node_types", "skus", "credentials", "options"}
    | {"poll_seconds"}
)


@dataclass(frozen=True)
class PlatformSpec:
    """What a platform's adapter needs of its channel: the secret roles, its options (name ->
    required), and whether it takes an API base URL."""

    credentials: tuple[str, ...]
    options: Mapping[str, bool]
    needs_base_url: bool = True


@dataclass(frozen=True)
class Channels:
    """A validated channel file, by channel name."""

    channels: tuple[ChannelSettings, ...] = ()

    def get(self, name: str) -> ChannelSettings | None:
        return next((c for c in self.channels if c.name == name), None)

    def __iter__(self) -> Any:
        return iter(self.channels)


def parse_channels(
    text: str, platforms: Mapping[str, PlatformSpec], workflows: Collection[str]
) -> Channels:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as bad:
        raise InvalidInput.one("channels.toml", str(bad)[:80], "is not valid TOML") from None
    problems = ProblemCollector()
    for key in sorted(set(data) - {"channel"}):
        problems.add(key, data[key], "unknown key: the file holds [[channel]] tables")
    tables = data.get("channel", [])
    if not isinstance(tables, list):
        problems.add("channel", tables, "must be [[channel]] tables")
        tables = []
    out: list[ChannelSettings] = []
    seen: set[str] = set()
    for i, table in enumerate(tables):
        where = f"channel[{i}]"
        if not isinstance(table, dict):
            problems.add(where, table, "must be a table")
            continue
        name = table.get("name")
        if isinstance(name, str) and NAME.match(name):
            where = f"channel[{name}]"
            if name in seen:
                problems.add(f"{where}.name", name, "is used by an earlier channel")
            seen.add(name)
        settings = _channel(table, where, platforms, workflows, problems)
        if settings is not None:
            out.append(settings)
    problems.raise_if_any()
    return Channels(tuple(out))


def _channel(
    table: Mapping[str, Any],
    where: str,
    platforms: Mapping[str, PlatformSpec],
    workflows: Collection[str],
    problems: ProblemCollector,
) -> ChannelSettings | None:
    for key in sorted(set(table) - KEYS):
        problems.add(f"{where}.{key}", table[key], f"unknown key; one of {sorted(KEYS)}")
    before = len(problems.problems)
    name = table.get("name")
    if not isinstance(name, str) or not NAME.match(name):
        problems.add(f"{where}.name", name, "1 to 64 lower-case letters, digits, '.', '_' or '-'")
    kind = table.get("kind")
    spec = platforms.get(kind) if isinstance(kind, str) else None
    if spec is None:
        problems.add(f"{where}.kind", kind, f"one of {sorted(platforms)}")
    base_url = table.get("base_url", "")
    if not isinstance(base_url, str) or (base_url and not re.match(r"^https?://\S+$", base_url)):
        problems.add(f"{where}.base_url", base_url, "an http:// or https:// URL")
    elif spec is not None and spec.needs_base_url and not base_url:
        problems.add(f"{where}.base_url", base_url, f"{kind} needs the platform's API URL")
    workflow = table.get("workflow", "")
    if not isinstance(workflow, str) or (workflow and workflow not in workflows):
        problems.add(f"{where}.workflow", workflow, f"one of {sorted(workflows)}")
    node_types = table.get("node_types", [])
    names = [t.value for t in NODE_TYPES]
    if not isinstance(node_types, list) or not all(t in names for t in node_types):
        problems.add(f"{where}.node_types", node_types, f"a list of {names}")
    elif len(node_types) != len(set(node_types)) or (node_types == [] and "node_types" in table):
        problems.add(f"{where}.node_types", node_types, "distinct node types, at least one")
    poll = table.get("poll_seconds", 60)
    if isinstance(poll, bool) or not isinstance(poll, int | float) or not 1 <= poll <= 86400:
        problems.add(f"{where}.poll_seconds", poll, "a number of seconds from 1 to 86400")
    skus = _strings(table.get("skus", {}), f"{where}.skus", MAX_ID_CHARS, problems)
    theirs: dict[str, str] = {}
    for platform_sku, ours in skus.items():
        if ours in theirs:
            problems.add(
                f"{where}.skus.{platform_sku}",
                ours,
                f"{theirs[ours]!r} maps to {ours} too: a shipped {ours} could not be told back "
                "to the platform as the right one",
            )
        theirs.setdefault(ours, platform_sku)
    credentials = _strings(table.get("credentials", {}), f"{where}.credentials", 128, problems)
    for role, var in credentials.items():
        if not ENV_VAR.match(var):
            problems.add(f"{where}.credentials.{role}", var, "the NAME of an environment variable")
    options = table.get("options", {})
    if not isinstance(options, dict):
        problems.add(f"{where}.options", options, "must be a table")
        options = {}
    if spec is not None:
        for role in spec.credentials:
            if role not in credentials:
                problems.add(f"{where}.credentials.{role}", None, f"{kind} needs this secret")
        for role in sorted(set(credentials) - set(spec.credentials)):
            problems.add(
                f"{where}.credentials.{role}", credentials[role], f"one of {list(spec.credentials)}"
            )
        for option, required in spec.options.items():
            if required and option not in options:
                problems.add(f"{where}.options.{option}", None, f"{kind} needs this option")
        for option in sorted(set(options) - set(spec.options)):
            problems.add(
                f"{where}.options.{option}", options[option], f"one of {sorted(spec.options)}"
            )
    if len(problems.problems) > before:
        return None
    return ChannelSettings(
        name=str(name),
        kind=str(kind),
        base_url=str(base_url),
        workflow=str(workflow),
        node_types=tuple(node_types),
        skus=skus,
        credentials=credentials,
        options=dict(options),
        poll_seconds=float(poll),
    )


def _strings(table: object, where: str, longest: int, problems: ProblemCollector) -> dict[str, str]:
    """A table of non-empty strings to non-empty strings, each problem named."""
    if not isinstance(table, dict):
        problems.add(where, table, "must be a table of strings")
        return {}
    out: dict[str, str] = {}
    for key, value in table.items():
        if not isinstance(value, str) or not 0 < len(value) <= longest:
            problems.add(f"{where}.{key}", value, f"a string of 1 to {longest} characters")
        elif not 0 < len(key) <= MAX_ID_CHARS:
            problems.add(f"{where}.{key[:40]}", key, f"keys have 1 to {MAX_ID_CHARS} characters")
        else:
            out[key] = value
    return out
