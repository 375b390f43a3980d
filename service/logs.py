"""Structured logs: one JSON object a line, tagged with the request's transactionId.

Callers pass only chosen scalar fields (`extra={"fields": {...}}`); request bodies, images, base64 and
embeddings are never handed to a logger, so they cannot end up in a log line.
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import datetime, timezone

from aiohttp.http_exceptions import HttpProcessingError

transaction_id: ContextVar[str | None] = ContextVar("transaction_id", default=None)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        current = transaction_id.get()
        if current:
            entry["transactionId"] = current
        entry.update(getattr(record, "fields", {}))
        if record.exc_info and record.exc_info[0] is not None:
            entry["error"] = f"{record.exc_info[0].__name__}: {record.exc_info[1]}"
            entry["trace"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class MalformedHttpFilter(logging.Filter):
    """aiohttp logs a malformed request with its parser's error, which quotes the offending bytes (a broken
    header line may hold an API key): keep that it happened and from whom, drop the bytes and the trace."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, HttpProcessingError):
            record.msg = "malformed HTTP request from %s"
            record.exc_info = record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.fields = {"error": type(error).__name__, "status": error.code}
        return True


def configure_logging(level: str = "INFO") -> None:
    """Every logger, aiohttp's included, and Python's warnings (Pillow's about broken EXIF, say), through one
    JSON handler on stderr, so that every line on stderr is a JSON object."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.captureWarnings(True)
    server = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, MalformedHttpFilter) for f in server.filters):
        server.addFilter(MalformedHttpFilter())
