"""The Argilla SDK and its HTTP client in one place.

The SDK's records, datasets, settings and webhooks are used as they are; the fields its
models drop (responses' ids and timestamps, metadata properties, guidelines) are read and
written through the SDK's own authenticated httpx client (:func:`http_client`). The key is
checked first with a plain request (:func:`check_server`), before the SDK (which retries
and raises its own errors) is made.
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import BackendError, require
from .base import identity

#: Records per page when reading from the server.
PAGE = 500


def check_server(url: str, api_key: str) -> None:
    """Fail in one line, before anything is written, unless ``url`` is an Argilla server
    that takes the key as an owner's or admin's (an annotator cannot list records)."""
    import httpx

    try:
        r = httpx.get(f"{url}/api/v1/me", headers={"X-Argilla-Api-Key": api_key}, timeout=30)
    except httpx.HTTPError as e:
        raise BackendError(f"cannot reach Argilla at {url}: {type(e).__name__}: {e}") from e
    if r.status_code == 401:
        raise BackendError(f"Argilla at {url} refused the API key ([argilla] api_key in .rlthf-secrets.toml "
                           "or RLTHF_ARGILLA_API_KEY)")
    me = identity(r, url=url, platform="Argilla", endpoint="/api/v1/me", keys=("role", "username"),
                  option="[argilla] url")
    if me["role"] not in ("owner", "admin"):
        raise BackendError(f"the Argilla API key belongs to {me['role']} '{me['username']}': rlthf needs an "
                           "owner's or admin's key (annotators cannot create datasets or list records)")


def make_client(url: str, api_key: str, timeout: int) -> Any:
    """The SDK client, after :func:`check_server`."""
    rg = require("argilla", "argilla")
    check_server(url, api_key)
    try:
        return rg.Argilla(api_url=url, api_key=api_key, timeout=timeout)
    except Exception as e:  # the SDK raises httpx and its own errors; both mean "cannot use the server"
        raise BackendError(f"cannot reach Argilla at {url}: {e}") from e


def http_client(client: Any) -> Any:
    """The SDK's authenticated httpx client (for the fields its models drop)."""
    return client.api.http_client


def close_client(client: Any) -> None:
    """Close the SDK client's connection pool."""
    http_client(client).close()


def raise_for(response: Any, what: str) -> None:
    """A one-line BackendError for an HTTP error answer (``what`` says what was tried)."""
    if response.status_code >= 400:
        raise BackendError(f"Argilla: {what}: HTTP {response.status_code}: {response.text[:300]}")


def canonical(value: Any) -> str:
    """``value`` as JSON with sorted keys: equal values, equal texts."""
    return json.dumps(value, sort_keys=True, default=str)


__all__ = ["PAGE", "canonical", "check_server", "close_client", "http_client", "make_client", "raise_for"]
