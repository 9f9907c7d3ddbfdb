"""Text logs carry the request id of the request they were written for."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import pytest

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


FORGED = "2026-11-29 11:00:00,000 INFO tickstock.auth: user 'admin' logged in"
FORGED_PATH = "/api/x%0a" + FORGED.replace(" ", "%20").replace("'", "%27") + "%1b[31m"


async def _log_of_request(app: Any, path: str) -> str:
    handler = next(h for h in logging.getLogger().handlers if getattr(h, "_tickstock", False))
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    try:
        response = await app.test_client().get(path, headers={"Accept": "application/json"})
    finally:
        handler.setStream(previous)
    assert response.status_code in (400, 404)
    return buffer.getvalue()


async def test_text_log_escapes_control_characters(settings_overrides: dict[str, Any]) -> None:
    app = create_app({**settings_overrides, "log_format": "text", "log_level": "INFO"})
    output = await _log_of_request(app, FORGED_PATH)
    lines = output.splitlines()
    assert not [line for line in lines if line.startswith(FORGED)], output
    assert "\x1b" not in output
    [request_line] = [line for line in lines if "GET /api/x" in line]
    assert "\\n2026-11-29 11:00:00,000 INFO" in request_line
    assert "\\x1b[31m" in request_line


async def test_json_log_keeps_a_forged_line_inside_its_record(
    settings_overrides: dict[str, Any],
) -> None:
    app = create_app({**settings_overrides, "log_format": "json", "log_level": "INFO"})
    try:
        output = await _log_of_request(app, FORGED_PATH)
    finally:
        create_app({**settings_overrides, "log_format": "text"})  # back to the suite's format
    records = [json.loads(line) for line in output.splitlines()]  # every line is one record
    assert "\x1b" not in output
    [record] = [r for r in records if r.get("path", "").startswith("/api/x")]
    assert record["path"].startswith("/api/x\n" + FORGED)
    assert not any(r["message"].startswith(FORGED) for r in records)


def test_tracebacks_keep_their_lines_but_lose_escape_sequences() -> None:
    try:
        raise ValueError("bad \x1b[2J value")
    except ValueError:
        import sys

        record = logging.makeLogRecord(
            {"msg": "failed", "levelname": "ERROR", "name": "t", "exc_info": sys.exc_info()}
        )
    text = TextFormatter().format(record)
    assert "Traceback (most recent call last):\n" in text
    assert "\x1b" not in text and "bad \\x1b[2J value" in text


async def test_engineio_errors_go_through_the_service_log_once_and_escaped(
    serve_app: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    """engine.io used to add its own raw handler: a forged line, and every error twice."""
    import aiohttp

    served = await serve_app(log_format="text", log_level="INFO")
    handler = next(h for h in logging.getLogger().handlers if getattr(h, "_tickstock", False))
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    forged_sid = "ZZ%0A" + FORGED.replace(" ", "%20").replace("'", "%27") + "%1B[31m"
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(2):
                url = f"{served.url}/socket.io/?EIO=4&transport=polling&sid={forged_sid}"
                async with http.get(url) as response:
                    assert response.status == 400
        handler.flush()
    finally:
        handler.setStream(previous)
    output = buffer.getvalue() + "".join(capfd.readouterr())
    lines = output.splitlines()
    assert not [line for line in lines if line.startswith(FORGED)], output
    assert "\x1b" not in output
    errors = [line for line in lines if "Invalid session" in line]
    assert len(errors) == 1, output  # the second one is below the service's level
    assert " ERROR tickstock.engineio: " in errors[0]
    assert "\\n2026-11-29" in errors[0]
