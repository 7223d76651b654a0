"""Structured logs: one JSON object per line (or readable key=value text on a terminal), with
the call's ids bound as fields.

Every module keeps logging through the standard `logging` module (fields as `extra=`);
`configure_logging` routes it through structlog's formatter, so a line from grpc, redis or our
own code comes out the same way, and `structlog.contextvars` fields bound for the running call
(the method) are on every line that call writes.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

from allocation_engine.errors import InvalidInput

FORMATS = ("json", "text")


def configure_logging(fmt: str = "json", level: int = logging.INFO) -> None:
    """Routes the root logger to stderr as `fmt` (json or text)."""
    if fmt not in FORMATS:
        raise InvalidInput.one("log_format", fmt, f"must be one of {', '.join(FORMATS)}")
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
