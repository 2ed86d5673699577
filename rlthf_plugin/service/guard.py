"""What stands in front of the service's endpoints: body-size caps enforced while the body
streams in, and credentials on the paths that need them (HTTP Basic auth on ``/ml``, an
optional bearer token on ``/metrics``), both as one ASGI middleware.

A cap is checked against ``Content-Length`` first and then on every chunk the app
receives, so a body without a length (chunked) is cut off once it passes the cap, never
read whole. Credentials are compared in constant time (:func:`hmac.compare_digest`) and
read through a callable, so a changed secrets file takes effect without a restart.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Sequence

from starlette.exceptions import HTTPException

Scope = dict
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]


@dataclass(frozen=True)
class Rule:
    """Requests whose path starts with ``prefix``: at most ``max_body`` bytes (None: no cap)
    and, when ``credential`` gives a value, an ``Authorization`` that matches it (``kind``
    "basic": ``user:password``; "bearer": a token)."""

    prefix: str
    max_body: int | None = None
    kind: str = ""
    credential: Callable[[], str | None] | None = None


def basic_auth_matches(header: str | None, expected: str) -> bool:
    """True when ``header`` is ``Basic base64(user:password)`` of ``expected``
    (``user:password``), compared in constant time."""
    got = b""
    if header and header[:6].lower() == "basic ":
        try:
            got = base64.b64decode(header[6:].strip(), validate=True)
        except (binascii.Error, ValueError):
            got = b""
    return hmac.compare_digest(got, expected.encode())


def bearer_matches(header: str | None, expected: str) -> bool:
    """True when ``header`` is ``Bearer TOKEN`` with ``TOKEN == expected`` (constant time)."""
    got = header[7:].strip().encode() if header and header[:7].lower() == "bearer " else b""
    return hmac.compare_digest(got, expected.encode())


class BodyTooLarge(HTTPException):
    """Raised inside the app's ``receive`` once a body passes its cap: an HTTP 413, also
    when FastAPI is parsing the body (it passes HTTP exceptions on)."""

    def __init__(self, cap: int):
        super().__init__(status_code=413, detail=f"the body is larger than {cap} bytes")


async def _answer(send: Send, status: int, detail: str, headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close"), *headers]})
    await send({"type": "http.response.body", "body": body})


class Guard:
    """ASGI middleware applying the first :class:`Rule` whose prefix the path starts with."""

    def __init__(self, app: Any, rules: Sequence[Rule]):
        self.app = app
        self.rules = sorted(rules, key=lambda r: -len(r.prefix))

    def rule(self, path: str) -> Rule | None:
        return next((r for r in self.rules if path.startswith(r.prefix)), None)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        rule = self.rule(scope.get("path", "")) if scope["type"] == "http" else None
        if rule is None:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        expected = rule.credential() if rule.credential is not None else None
        if expected:
            check = basic_auth_matches if rule.kind == "basic" else bearer_matches
            if not check(headers.get("authorization"), expected):
                challenge = b'Basic realm="rlthf"' if rule.kind == "basic" else b"Bearer"
                await _answer(send, 401, "unauthorized", [(b"www-authenticate", challenge)])
                return
        cap = rule.max_body
        if cap is None:
            await self.app(scope, receive, send)
            return
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > cap:
            await _answer(send, 413, f"the body is larger than {cap} bytes")
            return
        seen = 0
        started = False

        async def capped() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > cap:
                    raise BodyTooLarge(cap)
            return message

        async def tracked(message: dict) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, capped, tracked)
        except BodyTooLarge:
            if not started:
                await _answer(send, 413, f"the body is larger than {cap} bytes")


__all__ = ["BodyTooLarge", "Guard", "Rule", "basic_auth_matches", "bearer_matches"]
