"""`allocation-engine tokens`: create prints the token once, list shows no secret, revoke
ends it; bad input names the field."""

from __future__ import annotations

import json

import pytest

from allocation_engine.adapters.redis.tokens import RedisCallers
from allocation_engine.cli.main import main
from allocation_engine.service.access import by_subjects, by_token


def test_create_list_revoke(redis_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    url = ["--redis-url", redis_url]
    assert (
        main(["tokens", "create", "--name", "shop-1", "--role", "shop", "--channel", "web", *url])
        == 0
    )
    token = capsys.readouterr().out.split("store it now): ")[1].strip()
    registry = RedisCallers.from_url(redis_url)
    caller = by_token(registry, token)
    assert caller is not None and caller.channels == ("web",)
    assert (
        main(
            [
                "tokens",
                "create",
                "--name",
                "wms-1",
                "--role",
                "wms",
                "--node",
                "N1",
                "--cert-cn",
                "wms-1",
                "--no-token",
                *url,
            ]
        )
        == 0
    )
    assert "token" not in capsys.readouterr().out.split("\n", 1)[1]
    assert by_subjects(registry, ["wms-1"]) is not None
    assert main(["tokens", "list", "--json", *url]) == 0
    listed = capsys.readouterr().out
    assert token not in listed
    assert [(r["name"], r["token"], r["revoked"]) for r in json.loads(listed)] == [
        ("shop-1", True, False),
        ("wms-1", False, False),
    ]
    assert main(["tokens", "revoke", "shop-1", *url]) == 0
    assert by_token(registry, token) is None
    assert main(["tokens", "revoke", "ghost", *url]) == 2
    assert "caller='ghost'" in capsys.readouterr().err
    assert main(["tokens", "create", "--name", "bad name", "--role", "shop", *url]) == 2
    err = capsys.readouterr().err
    assert "name='bad name'" in err and "channel=None" in err
