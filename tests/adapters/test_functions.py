"""The Redis FUNCTION loader both stores share (allocation_engine/adapters/redis/functions.py),
on a real redis-server: it loads a library once, loads it again (once) when Redis lost it, and
raises every other error as it is."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from allocation_engine.adapters.redis.functions import Call, FunctionLibrary

CODE = """#!lua name=ae_test
redis.register_function('t_incr', function(keys, args)
  return redis.call('INCRBY', keys[1], args[1])
end)
redis.register_function('t_boom', function(keys, args)
  return error('boom')
end)
"""


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    """A client of an empty Redis without functions (FLUSHALL keeps them, so flush them too)."""
    with redis.Redis.from_url(redis_url, decode_responses=True) as open_client:
        open_client.function_flush()
        yield open_client


def test_the_library_is_loaded_once_and_then_just_called(client: redis.Redis) -> None:
    """Given a fresh Redis, when a library's function is called twice, then the library was
    loaded once and both calls ran."""
    library = FunctionLibrary(client, CODE)
    assert library.name == "ae_test"
    assert library.call("t_incr", ["n"], [2]) == 2
    assert library.call("t_incr", ["n"], [3]) == 5
    assert library.loads == 1


def test_code_already_on_the_server_is_not_loaded_again(client: redis.Redis) -> None:
    """Given a library one process loaded, when another process starts with the same code, then
    it calls without loading; with other code under the same name, it replaces it."""
    FunctionLibrary(client, CODE).load()
    same = FunctionLibrary(client, CODE)
    assert same.call("t_incr", ["n"], [1]) == 1
    assert same.loads == 0
    changed = FunctionLibrary(client, CODE.replace("INCRBY", "DECRBY"))
    assert changed.call("t_incr", ["n"], [1]) == 0
    assert changed.loads == 1


def test_a_flushed_library_is_loaded_again_and_the_call_repeated_once(
    client: redis.Redis,
) -> None:
    """Given a loaded library, when Redis forgets it (FUNCTION FLUSH, as after a restart
    without persistence), then the next call loads it again and succeeds, having run once."""
    library = FunctionLibrary(client, CODE)
    assert library.call("t_incr", ["n"], [1]) == 1
    client.function_flush()
    assert library.call("t_incr", ["n"], [1]) == 2
    assert library.loads == 2


def test_a_flushed_library_is_reloaded_for_a_batch_behind_other_commands(
    client: redis.Redis,
) -> None:
    """Given commands queued before the calls in one round trip, when the library is gone,
    then only the calls are repeated: the commands ran once and their replies lead."""
    library = FunctionLibrary(client, CODE)
    library.load()
    client.function_flush()
    pipe = client.pipeline(transaction=False)
    pipe.incr("other")
    replies = library.call_many([Call("t_incr", ["n"], [1]), Call("t_incr", ["m"], [5])], pipe)
    assert replies == [1, 1, 5]
    assert client.get("other") == "1"


def test_a_script_error_is_raised_and_not_taken_for_a_lost_library(client: redis.Redis) -> None:
    """Given a loaded library, when a function fails, then its error is raised as it is and
    the library is not loaded again."""
    library = FunctionLibrary(client, CODE)
    library.load()
    with pytest.raises(redis.ResponseError, match="boom"):
        library.call("t_boom", [])
    client.set("n", "not a number")
    with pytest.raises(redis.ResponseError, match="not an integer"):
        library.call("t_incr", ["n"], [1])
    assert library.loads == 1


def test_a_function_still_missing_after_the_reload_is_raised(client: redis.Redis) -> None:
    """Given a call of a function the library does not have, when it is made, then the loader
    reloads once and raises instead of looping."""
    library = FunctionLibrary(client, CODE)
    with pytest.raises(redis.ResponseError, match="Function not found"):
        library.call("t_nope", [])
    assert library.loads == 2


def test_library_code_must_name_the_library(client: redis.Redis) -> None:
    with pytest.raises(ValueError, match="#!lua name="):
        FunctionLibrary(client, "redis.register_function('f', function() end)")


def test_both_shipped_libraries_load(client: redis.Redis) -> None:
    """The stores' two .lua files are shipped in the package and load as named libraries."""
    for filename in ("inventory.lua", "orders.lua"):
        FunctionLibrary.shipped(client, filename).load()
    names = {entry[1] for entry in client.function_list()}
    assert names == {"allocation_engine", "allocation_orders"}
