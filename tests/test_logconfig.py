"""Text logs carry the request id of the request they were written for."""

from __future__ import annotations

import io
import logging
from typing import Any

from tickstock.app import create_app
from tickstock.logconfig import TextFormatter


async def test_text_log_line_carries_the_request_id(settings_overrides: dict[str, Any]) -> None:
    app = create_app({**settings_overrides, "log_format": "text", "log_level": "INFO"})
    handler = next(h for h in logging.getLogger().handlers if getattr(h, "_tickstock", False))
    assert isinstance(handler.formatter, TextFormatter)
    request_id = "req-text-0123456789"
    buffer = io.StringIO()
    assert isinstance(handler, logging.StreamHandler)
    previous = handler.setStream(buffer)
    try:
        response = await app.test_client().get(
            "/no-such-page", headers={"X-Request-ID": request_id, "Accept": "application/json"}
        )
    finally:
        handler.setStream(previous)
    assert response.status_code == 404
    lines = [line for line in buffer.getvalue().splitlines() if "GET /no-such-page 404" in line]
    assert lines, buffer.getvalue()
    assert lines[0].endswith(f"[request_id={request_id}]")


def test_a_line_outside_a_request_has_no_request_id() -> None:
    record = logging.makeLogRecord({"msg": "started", "levelname": "INFO", "name": "tickstock"})
    assert "request_id" not in TextFormatter().format(record)
