"""Schemathesis hooks for tests/system/test_fuzz.py and `make fuzz` (schemathesis.toml names this module)."""

from typing import Any

import schemathesis


@schemathesis.check
def problem_json(ctx: Any, response: Any, case: Any) -> None:
    """Every error answer is RFC 9457 problem+json whose status matches the HTTP status."""
    if response.status_code < 400:
        return
    headers = {name.lower(): value for name, value in response.headers.items()}
    content_type = headers.get("content-type", [""])
    content_type = content_type[0] if isinstance(content_type, list) else content_type
    if not content_type.startswith("application/problem+json"):
        raise AssertionError(f"{response.status_code} answered with {content_type!r}, not problem+json")
    body = response.json()
    missing = {"type", "title", "status", "detail", "code", "request_id"} - set(body)
    if missing or body["status"] != response.status_code:
        raise AssertionError(f"malformed problem body: {body}")
