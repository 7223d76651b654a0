"""Structured logs: one `setup_logging` that renders every structlog line (and stdlib logging
records, such as the error interceptor's) as one JSON object with an ISO timestamp and level."""

from __future__ import annotations

import logging
import sys
from typing import IO, Any

import structlog

FORMATS = ("json", "console")


def setup_logging(
    level: str | int = "INFO", fmt: str = "json", stream: IO[str] | None = None
) -> None:
    """Routes structlog and the stdlib root logger to `stream` (stderr) in `fmt`: one JSON
    object per line with `timestamp` (ISO, UTC), `level`, `event`, the bound fields, and
    `exception` (the formatted traceback) when one is logged."""
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {list(FORMATS)}, not {fmt!r}")
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    handler.set_name("allocation_engine")
    root = logging.getLogger()
    root.handlers = [h for h in root.handlers if h.get_name() != "allocation_engine"]
    root.addHandler(handler)
    root.setLevel(level if isinstance(level, int) else level.upper())
