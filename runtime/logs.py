"""structlog set-up: console for people, JSON for machines (PACELINE_LOG_FORMAT=json)."""

from __future__ import annotations

import contextlib
import logging
import sys
from typing import Any

import structlog


class _Stderr:
    """Whatever ``sys.stderr`` is at each write: a caller that swaps it for a while (a test capturing output,
    then closing its capture) must not leave the loggers writing to a closed file."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure(service: str, *, fmt: str = "console", level: str = "INFO") -> None:
    """Configure structlog and the stdlib root logger (which libraries such as pulsar-client use)."""
    lvl = logging.getLevelNamesMapping()[level]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(lvl),
        logger_factory=structlog.PrintLoggerFactory(file=_Stderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.bind_contextvars(service=service)
    logging.basicConfig(level=max(lvl, logging.WARNING), stream=_Stderr(), force=True)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(name)
    return logger


_ORDER_KEYS = ("parent_id", "job_id", "symbol", "epoch")


def order_fields(msg: object) -> dict[str, object]:
    """The order identity a message carries (parent order id, job id, symbol, epoch), looked up on the
    message and on its ``parent`` (assignments and job requests nest the parent order)."""
    out: dict[str, object] = {}
    for src in (getattr(msg, "parent", None), msg):
        for k in _ORDER_KEYS:
            v = getattr(src, k, None)
            if v is not None and not isinstance(v, BaseException):
                out[k] = v
    return out


def bind_order(msg: object) -> contextlib.AbstractContextManager[None]:
    """Bind the message's order identity to every log line inside the block (this thread only)."""
    return structlog.contextvars.bound_contextvars(**order_fields(msg))
