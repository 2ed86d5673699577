"""The Label Studio SDK in one place: the client, its errors as one-line BackendErrors, and
the SDK's authenticated httpx client for the calls its typed models make slow or drop.

``label-studio-sdk`` 2.1 has no public way to send a request of its own; its
authenticated httpx client is ``client._client_wrapper.httpx_client``, a private name.
:func:`http_request` and :func:`close_client` are the only code that touches it, so an SDK
upgrade that moves it breaks here and nowhere else.
"""

from __future__ import annotations

import json
from typing import Any, Callable

from ..errors import BackendError, NotThePlatformError, one_line, require
from .base import identity

HTTP_HINTS = {
    401: "the API key was refused: set [label_studio] api_key in .rlthf-secrets.toml or RLTHF_LABEL_STUDIO_API_KEY",
    403: "the API key may not do this on that project",
    404: "not found on the server (wrong project id or URL?)",
}


def make_client(url: str, api_key: str, timeout: float) -> Any:
    """The SDK client (importing the SDK takes seconds: callers make it on first use)."""
    sdk = require("label_studio_sdk", "label-studio")
    return sdk.LabelStudio(base_url=url, api_key=api_key, timeout=timeout)


def sdk_call(url: str, what: str, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    """Run one SDK call; an HTTP error becomes a BackendError saying what failed.

    ``url``, ``what`` and ``fn`` are positional-only: the call's own keywords may be named
    ``url`` (a webhook's) and must reach ``fn``.
    """
    from label_studio_sdk.core.api_error import ApiError
    import httpx

    try:
        return fn(*args, **kwargs)
    except ApiError as e:
        hint = HTTP_HINTS.get(e.status_code or 0, "")
        raise BackendError(f"Label Studio {url}: {what} failed with HTTP {e.status_code}: "
                           f"{short(e.body)}{'; ' + hint if hint else ''}") from e
    except httpx.HTTPError as e:
        raise BackendError(f"Label Studio {url}: {what} failed: {e}") from e


def http_request(client: Any, path: str, **kwargs: Any) -> Any:
    """One request through the SDK's own authenticated httpx client (``path`` relative to
    the base URL, e.g. ``api/tasks/``); returns the httpx response, whatever its status."""
    return client._client_wrapper.httpx_client.request(path, **kwargs)


def close_client(client: Any) -> None:
    """Close the SDK client's connection pool."""
    client._client_wrapper.httpx_client.httpx_client.close()


def check_server(client: Any, url: str) -> None:
    """Fail in one line, before anything is written, unless ``url`` is a Label Studio
    that takes the key (a web page or another service answering 200 is named as such)."""
    import httpx

    try:
        r = http_request(client, "api/current-user/whoami", method="GET")
    except httpx.HTTPError as e:
        raise BackendError(f"cannot reach Label Studio at {url}: {type(e).__name__}: {e}") from e
    except Exception as e:
        raise NotThePlatformError(f"{url} answers, but not as Label Studio does ({type(e).__name__}): "
                                  "check [label_studio] url") from e
    if r.status_code in (401, 403):
        raise BackendError(f"Label Studio {url}: {HTTP_HINTS[401]}")
    identity(r, url=url, platform="Label Studio", endpoint="/api/current-user/whoami", keys=("id", "email"),
             option="[label_studio] url")


def extra(model: Any, name: str) -> Any:
    """A response field the SDK's model does not declare (kept by pydantic as extra)."""
    return getattr(model, name, None) or (getattr(model, "model_extra", None) or {}).get(name)


def short(body: Any, limit: int = 300) -> str:
    """``body`` (text or JSON) on one line, cut to ``limit`` characters, for an error line."""
    return one_line(body if isinstance(body, str) else json.dumps(body, default=str), limit)


__all__ = ["HTTP_HINTS", "check_server", "close_client", "extra", "http_request", "make_client", "sdk_call", "short"]
