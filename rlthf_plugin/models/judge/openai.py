"""A judge over any OpenAI-compatible chat completions endpoint.

OpenAI, vLLM, Ollama, llama.cpp server, TGI and ``transformers serve`` all take the same
``POST {base_url}/chat/completions``. Requests run on a bounded pool (``concurrency`` in
flight), each with a timeout; a timeout, a connection error, 429 or 5xx is retried with
exponential backoff (honouring ``Retry-After``); any other error stops the run with a
:class:`~rlthf_plugin.errors.JudgeError` (answers so far are already in the ledger).
The API key is sent as a bearer token and never logged or shown.
"""

from __future__ import annotations

import asyncio
import math
import os
import re
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from ...config import JudgeConfig
from ...errors import JudgeError, require
from ...pairs import PARSE_ERROR
from .base import KNOWN_PRICES, Call, Reply
from .prompt import PREFERENCE_LINE, parse_answer

DEFAULT_BASE_URL = "https://api.openai.com/v1"
#: Statuses the openai client retries (with exponential backoff and Retry-After): timeouts,
#: conflicts, rate limits; and every 5xx.
RETRIED_STATUSES = frozenset({408, 409, 429})
#: The openai client insists on a key; local servers need none, so this placeholder is
#: sent nowhere (the Authorization header is removed before the request leaves).
_NO_KEY = "no-key"


@dataclass
class OpenAIJudge:
    """An OpenAI-compatible chat endpoint as a judge.

    Parameters
    ----------
    model : str
        The ``model`` field of each request.
    base_url : str, default "https://api.openai.com/v1"
        Up to and including ``/v1``.
    api_key : str or None, default None
        Sent as ``Authorization: Bearer``; None sends no header (local servers).
    concurrency : int, default 8
        Requests in flight at once.
    timeout : float, default 60.0
        Seconds per request.
    max_retries : int, default 5
        Retries after a timeout, a connection error, 408, 409, 429 or 5xx, done by the
        openai client (exponential backoff with jitter, honouring Retry-After); then the
        run stops with JudgeError.
    max_tokens : int, default 512
    temperature : float, default 0.0
    logprobs : bool, default True
        Ask for ``logprobs`` / ``top_logprobs``; the probability of the verdict token
        (against the other letter) becomes the confidence when the endpoint returns them.
    prices : (float, float) or None
        Dollars per million input and output tokens, for the estimate.
    backoff : None
        Deprecated and ignored (the openai client's backoff applies); removed in 0.2.
    transport : httpx.AsyncBaseTransport or None, default None
        A custom httpx transport (proxies, tests of the retry policy); None = the network.
    """

    model: str
    base_url: str = DEFAULT_BASE_URL
    api_key: str | None = None
    concurrency: int = 8
    timeout: float = 60.0
    max_retries: int = 5
    max_tokens: int = 512
    temperature: float = 0.0
    logprobs: bool = True
    prices: tuple[float, float] | None = None
    backoff: float | None = None
    transport: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {self.concurrency}")
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries}")
        if self.backoff is not None:
            warnings.warn("OpenAIJudge(backoff=...) is ignored: the openai client's own retry backoff applies; "
                          "the argument is removed in 0.2", FutureWarning, stacklevel=3)
        self.base_url = self.base_url.rstrip("/")
        #: Requests sent, retries included (for reports and tests).
        self.requests_sent = 0

    def __repr__(self) -> str:  # never show the key
        return f"OpenAIJudge(model={self.model!r}, base_url={self.base_url!r})"

    @property
    def name(self) -> str:
        return f"openai:{self.model}"

    @classmethod
    def from_config(cls, model: str, config: JudgeConfig, *, base_url: str | None = None,
                    env: dict[str, str] | None = None) -> "OpenAIJudge":
        """Settings from ``[judge]``; the key from the config (secrets) or env ``OPENAI_API_KEY``."""
        env = os.environ if env is None else env
        key = config.api_key or env.get("OPENAI_API_KEY") or None
        prices = (config.price_input, config.price_output) if (config.price_input or config.price_output) \
            else KNOWN_PRICES.get(model)
        return cls(model, base_url=base_url or config.base_url or DEFAULT_BASE_URL, api_key=key,
                   concurrency=config.concurrency, timeout=config.timeout, max_retries=config.max_retries,
                   max_tokens=config.max_tokens, temperature=config.temperature, logprobs=config.logprobs,
                   prices=prices)

    # -- running ------------------------------------------------------------------------
    def run(self, calls: Sequence[Call], on_reply: Callable[[Call, Reply], None]) -> None:
        """Answer ``calls`` on a pool of ``concurrency`` workers; ``on_reply`` runs for each answer."""
        asyncio.run(self._run(calls, on_reply))

    async def _run(self, calls: Sequence[Call], on_reply: Callable[[Call, Reply], None]) -> None:
        openai = require("openai", "judge")
        httpx = require("httpx", "judge")

        async def count(request: Any) -> None:  # every try, retries included
            self.requests_sent += 1
            if self.api_key is None:
                request.headers.pop("Authorization", None)

        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        http = httpx.AsyncClient(timeout=self.timeout, limits=limits, transport=self.transport,
                                 event_hooks={"request": [count]})
        client = openai.AsyncOpenAI(base_url=self.base_url, api_key=self.api_key or _NO_KEY,
                                    max_retries=self.max_retries, timeout=self.timeout, http_client=http)
        queue: asyncio.Queue[Call] = asyncio.Queue()
        for call in calls:
            queue.put_nowait(call)
        async with client:

            async def worker() -> None:
                while True:
                    try:
                        call = queue.get_nowait()
                    except asyncio.QueueEmpty:
                        return
                    body = await self._post(client, call)
                    on_reply(call, reply_from_completion(body))

            workers = [asyncio.create_task(worker()) for _ in range(min(self.concurrency, len(calls)))]
            try:
                await asyncio.gather(*workers)
            finally:
                for w in workers:
                    w.cancel()
                await asyncio.gather(*workers, return_exceptions=True)

    def request_body(self, call: Call) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "messages": call.messages, "max_tokens": self.max_tokens,
                                "temperature": self.temperature}
        if self.logprobs:
            body.update(logprobs=True, top_logprobs=5)
        return body

    async def _post(self, client: Any, call: Call) -> dict:
        """The completion's JSON body; the openai client has retried what is worth retrying."""
        import openai

        url = f"{self.base_url}/chat/completions"

        def gave_up(why: str) -> JudgeError:
            return JudgeError(f"{url}: pair {call.pair.id} order {call.order} failed {self.max_retries + 1} times "
                              f"(last: {why}); rerun to resume, answers so far are kept")

        try:
            raw = await client.chat.completions.with_raw_response.create(**self.request_body(call))
        except openai.APIStatusError as e:
            if e.status_code in RETRIED_STATUSES or e.status_code >= 500:
                raise gave_up(f"HTTP {e.status_code}") from e
            raise JudgeError(_refusal(url, e.status_code, e.response.text, self.model)) from e
        except openai.APIConnectionError as e:  # timeouts included
            raise gave_up(f"{type(e).__name__}: {e}") from e
        try:
            return raw.http_response.json()
        except ValueError as e:
            raise JudgeError(f"{url}: the answer to pair {call.pair.id} is not JSON") from e


def _refusal(url: str, status: int, text: str, model: str) -> str:
    if status in (401, 403):
        return (f"{url}: HTTP {status}: the endpoint refused the API key; set OPENAI_API_KEY or [judge] api_key "
                f"in the secrets file")
    if status == 404:
        return f"{url}: HTTP 404: no such endpoint or model {model!r}; check --base-url (it ends in /v1) and the model"
    return f"{url}: HTTP {status}: {text[:300]}"


def reply_from_completion(body: dict) -> Reply:
    """Parse one chat completion: the label from the text, the confidence from log-probs.

    A completion without a message text (or a malformed one) is a ``parse_error`` with
    the body as its raw text.
    """
    import json

    usage = body.get("usage") or {}
    tokens = (int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0))
    try:
        choice = body["choices"][0]
        text = choice["message"]["content"]
    except (KeyError, IndexError, TypeError):
        return Reply(PARSE_ERROR, json.dumps(body)[:4000], None, *tokens)
    if not isinstance(text, str):
        return Reply(PARSE_ERROR, json.dumps(body)[:4000], None, *tokens)
    label = parse_answer(text)
    content = ((choice.get("logprobs") or {}).get("content")) if isinstance(choice, dict) else None
    confidence = verdict_confidence(content, label) if label in ("A", "B") and content else None
    return Reply(label, text, confidence, *tokens)


_LETTER = re.compile(r"^[\s\"'“”‘’*(\[]*(?:response[\s_]*)?[\"'“”‘’]?([AB])[\"'“”‘’*).\]]*\s*$", re.IGNORECASE)


def verdict_confidence(content: Sequence[dict], label: str) -> float | None:
    """P(verdict letter) / (P(A) + P(B)) at the verdict token after the last ``preference:``.

    ``content`` is the OpenAI ``choices[0].logprobs.content`` list (``token``, ``logprob``,
    ``top_logprobs``). Returns None when the verdict token cannot be found.
    """
    text = ""
    starts = []
    for item in content:
        starts.append(len(text))
        text += str(item.get("token", ""))
    matches = list(PREFERENCE_LINE.finditer(text))
    if not matches:
        return None
    begin = matches[-1].start("rest")
    for i, item in enumerate(content):
        if starts[i] + len(str(item.get("token", ""))) <= begin:
            continue
        m = _LETTER.match(str(item.get("token", "")))
        if not m or m.group(1).upper() != label:
            continue
        probs = {"A": 0.0, "B": 0.0}
        alternatives = item.get("top_logprobs") or [{"token": item.get("token"), "logprob": item.get("logprob")}]
        for alt in alternatives:
            am = _LETTER.match(str(alt.get("token", "")))
            if am and alt.get("logprob") is not None:
                probs[am.group(1).upper()] += math.exp(float(alt["logprob"]))
        if probs[label] == 0.0 and item.get("logprob") is not None:
            probs[label] = math.exp(float(item["logprob"]))
        total = probs["A"] + probs["B"]
        return probs[label] / total if total > 0 else None
    return None
