"""Execution engines behind one small interface; a backend knows nothing of faces."""

from __future__ import annotations

from engine.backends.base import Backend, BackendInfo, BackendUnavailable, create_backend

__all__ = ["Backend", "BackendInfo", "BackendUnavailable", "create_backend"]
