"""`allocation-engine tokens`: register callers (API tokens, client certificate subjects),
revoke them, list them.

`tokens create` prints a new caller's token once: only its SHA-256 is stored, so it cannot be
shown again (revoke and create another). `--cert-cn NAME` registers the subject of an mTLS
client certificate; with `--no-token` the caller has only the certificate.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from allocation_engine.app.access import open_registry
from allocation_engine.cli.common import UsageError, add_redis_options, redis_url
from allocation_engine.ports.access import Caller
from allocation_engine.service.access import ROLES, SCOPES
from allocation_engine.service.access import register as register_caller


def register(sub: Any) -> None:
    parser = sub.add_parser("tokens", help="API tokens and mTLS callers", description=__doc__)
    commands = parser.add_subparsers(dest="tokens_command", required=True)

    create = commands.add_parser("create", help="register a caller; prints its token once")
    add_redis_options(create, required=True)
    create.add_argument("--name", required=True)
    create.add_argument("--role", choices=sorted(ROLES))
    create.add_argument("--scope", action="append", default=[], choices=sorted(SCOPES))
    create.add_argument("--channel", action="append", default=[], help="bind to a channel")
    create.add_argument("--node", action="append", default=[], help="bind to a node id")
    create.add_argument("--cert-cn", default="", help="client certificate CN or SAN (mTLS)")
    create.add_argument("--no-token", action="store_true", help="certificate only")
    create.add_argument("--rate", type=float, help="calls per second (default: the server's)")
    create.add_argument("--burst", type=int, help="bucket size (default: the server's)")
    create.set_defaults(func=_create)

    revoke = commands.add_parser("revoke", help="revoke a caller by name or id")
    add_redis_options(revoke, required=True)
    revoke.add_argument("caller", metavar="NAME-or-ID")
    revoke.set_defaults(func=_revoke)

    listing = commands.add_parser("list", help="every caller (no secrets)")
    add_redis_options(listing, required=True)
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=_list)


def _create(args: argparse.Namespace) -> int:
    issued = register_caller(
        open_registry(redis_url(args)),
        name=args.name,
        role=args.role,
        scopes=args.scope,
        channels=args.channel,
        nodes=args.node,
        cert_subject=args.cert_cn,
        rate=args.rate,
        burst=args.burst,
        now=time.time(),
        with_token=not args.no_token,
    )
    caller = issued.caller
    print(f"caller {caller.name} (id {caller.id}): {' '.join(sorted(caller.scopes))}")
    if issued.token:
        print(f"token (shown once, store it now): {issued.token}")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    revoked = open_registry(redis_url(args)).revoke(args.caller)
    if revoked is None:
        raise UsageError(f"caller={args.caller!r}: no caller has that name or id")
    print(f"revoked {revoked.name} (id {revoked.id})")
    return 0


def _row(caller: Caller) -> dict[str, Any]:
    return {
        "id": caller.id,
        "name": caller.name,
        "scopes": sorted(caller.scopes),
        "channels": list(caller.channels),
        "nodes": list(caller.nodes),
        "token": bool(caller.token_hash),
        "cert_subject": caller.cert_subject,
        "revoked": caller.revoked,
    }


def _list(args: argparse.Namespace) -> int:
    rows = [_row(c) for c in open_registry(redis_url(args)).callers()]
    if args.json:
        print(json.dumps(rows))
        return 0
    for row in rows:
        state = "revoked" if row["revoked"] else "live"
        binds = ",".join(row["channels"] + row["nodes"]) or "-"
        how = " ".join(
            (["token"] if row["token"] else [])
            + ([f"cn={row['cert_subject']}"] if row["cert_subject"] else [])
        )
        fields = [row["name"], row["id"], state, how, binds, " ".join(row["scopes"])]
        print("\t".join(fields))
    return 0
