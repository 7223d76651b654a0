"""Rebuilding a gRPC method handler around its behaviour, once for every interceptor.

grpcio's server interceptors can only wrap a call by building a new `RpcMethodHandler` of the
same kind (unary or streamed, each way) around the old behaviour; the error and bounds
interceptors both do it, through `rewrapped`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc

Behavior = Callable[..., Any]
Wrap = Callable[[Behavior, bool, bool], Behavior]
"""(behaviour, requests streamed, responses streamed) -> the behaviour to run instead."""

_KINDS = (
    ("unary_unary", grpc.unary_unary_rpc_method_handler, False, False),
    ("unary_stream", grpc.unary_stream_rpc_method_handler, False, True),
    ("stream_unary", grpc.stream_unary_rpc_method_handler, True, False),
    ("stream_stream", grpc.stream_stream_rpc_method_handler, True, True),
)


def rewrapped(
    handler: grpc.RpcMethodHandler[Any, Any],
    wrap: Wrap,
    request_deserializer: Callable[[bytes], Any] | None = None,
) -> grpc.RpcMethodHandler[Any, Any]:
    """`handler` with its behaviour replaced by `wrap(behaviour, ...)`, its serializers kept
    (the request deserializer replaced when one is given)."""
    for kind, build, streamed_in, streamed_out in _KINDS:
        behavior = getattr(handler, kind)
        if behavior:
            return build(
                wrap(behavior, streamed_in, streamed_out),
                request_deserializer=request_deserializer or handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
    return handler
