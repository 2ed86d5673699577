"""Argilla pull: every annotator's responses, with the ids and timestamps the SDK's
response model drops (read from the records search endpoint).

A mixin of :class:`~rlthf_plugin.backends.argilla.ArgillaBackend` (it uses the backend's
``http``, ``dataset`` and ``answer``).
"""

from __future__ import annotations

from typing import Any, Iterator

from .argilla_client import PAGE, raise_for
from .argilla_records import response_labels
from .base import HumanLabel, PullResult


class ResponsePull:
    """``pull`` and the user names of the responses."""

    def _user_names(self, ids: set[str]) -> dict[str, str]:
        """user id -> user name; the users are listed again only for an id not asked about
        before (a pull asks once per record: one listing, not one per record)."""
        if not ids <= self._users.keys() | self._users_asked:
            self._users_asked |= ids
            r = self.http.get("/api/v1/users")
            if r.status_code == 200:
                self._users.update({str(u["id"]): u["username"] for u in r.json()["items"]})
        return self._users

    def records_with_responses(self) -> Iterator[dict]:
        """Records having a response (any status), with their responses, via the search endpoint."""
        ds_id = self.dataset().id
        body = {"query": {}, "filters": {"and": [{"type": "terms", "scope": {"entity": "response", "property": "status"},
                                                  "values": ["submitted", "discarded", "draft"]}]}}
        offset = 0
        while True:
            r = self.http.post(f"/api/v1/datasets/{ds_id}/records/search", json=body,
                               params={"offset": offset, "limit": PAGE, "include": ["responses"]})
            raise_for(r, f"searching records of {self._where()}")
            items = r.json()["items"]
            yield from (item["record"] for item in items)
            if len(items) < PAGE:
                return
            offset += len(items)

    def pull(self, *, cursor: Any = None) -> PullResult:
        """Labels of responses updated since ``cursor`` (all without one), read a page of
        records at a time: the labels are kept, the records (with their texts) are not."""
        since = (cursor or {}).get("since") if isinstance(cursor, dict) else None
        labels: list[HumanLabel] = []
        newest = since
        for rec in self.records_with_responses():
            responses = rec.get("responses") or []
            users = self._user_names({str(r["user_id"]) for r in responses})
            labels += response_labels(rec, responses, users, since=since, answer=self.answer)
            newest = max([newest or "", *(str(r["updated_at"]) for r in responses)]) or None
        return PullResult(labels=labels, cursor={"since": newest} if newest else cursor)


__all__ = ["ResponsePull"]
