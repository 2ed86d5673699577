"""An in-memory search engine for argilla-server 2.8.0, for the test harness only.

argilla-server needs Elasticsearch or OpenSearch; neither can be installed on the
machines these tests run on. The server picks its engine by name from the registry in
``argilla_server.search_engine`` (``SearchEngine.register(name)``), so the launcher
(``argilla_launcher.py``) registers this class under ``rlthf-memory`` and sets
``ARGILLA_SEARCH_ENGINE`` to it. The server's code is not patched.

Runs inside the server process with the server's own Python (not the project's venv).
Documents mirror what the Elasticsearch engine indexes (``commons.py``): id, external_id,
fields, status, timestamps, metadata, responses, suggestions, vectors. Filters, sorting,
progress and metadata metrics follow the Elasticsearch semantics closely enough for the
flows the plugin uses (text search is a plain AND of lowercase terms, not BM25).

All instances share one index per process (the server makes a new instance per request);
the first instance rebuilds it from the database with argilla's own ``Reindexer``, so a
restarted server searches what its database holds.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import math
import re
from typing import Any, Iterable, List, Optional, Union
from uuid import UUID

from argilla_server.enums import MetadataPropertyType, ResponseStatusFilter, SimilarityOrder, SortOrder
from argilla_server.search_engine.base import (
    AndFilter,
    FloatMetadataMetrics,
    IntegerMetadataMetrics,
    MetadataFilterScope,
    Order,
    RangeFilter,
    RecordFilterScope,
    ResponseFilterScope,
    SearchEngine,
    SearchResponseItem,
    SearchResponses,
    SuggestionFilterScope,
    TermsFilter,
    TermsMetrics,
    TextQuery,
)

ENGINE_NAME = "rlthf-memory"

#: dataset id -> record id -> document. Insertion order is index order.
_INDEXES: dict[str, dict[str, dict]] = {}
_REBUILT = False
_REBUILD_LOCK: asyncio.Lock | None = None


def _sortable(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.timestamp()
    if isinstance(value, str):
        try:
            return dt.datetime.fromisoformat(value).timestamp()
        except ValueError:
            return value
    return value


def _response_doc(response) -> dict:
    return {
        "id": str(response.id),
        "status": str(response.status),
        "user_id": str(response.user_id),
        **{question: (value or {}).get("value") for question, value in (response.values or {}).items()},
    }


class InMemorySearchEngine(SearchEngine):
    """The harness's search engine: Python dicts and loops, one process."""

    @classmethod
    async def new_instance(cls) -> "InMemorySearchEngine":
        engine = cls()
        await engine._rebuild_once()
        return engine

    async def _rebuild_once(self) -> None:
        global _REBUILT, _REBUILD_LOCK
        if _REBUILT:
            return
        _REBUILD_LOCK = _REBUILD_LOCK or asyncio.Lock()
        async with _REBUILD_LOCK:
            if _REBUILT:
                return
            from argilla_server.cli.search_engine.reindex import Reindexer
            from argilla_server.database import AsyncSessionLocal

            async with AsyncSessionLocal() as db:
                async for dataset in Reindexer.reindex_datasets(db, self):
                    async for _ in Reindexer.reindex_dataset_records(db, self, dataset):
                        pass
            _REBUILT = True

    async def close(self):
        """Nothing to release: the index lives in the process, not in a connection."""

    async def ping(self) -> bool:
        return True

    async def info(self) -> dict:
        return {"engine": ENGINE_NAME, "indexes": len(_INDEXES), "documents": sum(map(len, _INDEXES.values()))}

    # -- indexes ------------------------------------------------------------------------
    async def create_index(self, dataset):
        _INDEXES[str(dataset.id)] = {}

    async def delete_index(self, dataset):
        _INDEXES.pop(str(dataset.id), None)

    async def configure_metadata_property(self, dataset, metadata_property):
        """Documents are schemaless dicts: a new property needs no mapping."""

    async def configure_index_vectors(self, vector_settings):
        """Vectors are stored as lists under their settings id: no mapping needed."""

    def _index(self, dataset) -> dict[str, dict]:
        key = str(dataset.id)
        if key not in _INDEXES:
            raise RuntimeError(f"no index for dataset {key}")
        return _INDEXES[key]

    # -- documents ----------------------------------------------------------------------
    async def index_records(self, dataset, records: Iterable):
        index = self._index(dataset)
        properties = {p.name for p in dataset.metadata_properties}
        for record in records:
            doc = {
                "id": str(record.id),
                "external_id": record.external_id,
                "fields": {
                    f.name: (str(record.fields.get(f.name)) if record.fields.get(f.name) is not None else None)
                    for f in dataset.fields if not f.is_image
                },
                "status": str(record.status),
                "inserted_at": record.inserted_at,
                "updated_at": record.updated_at,
                "metadata": {k: v for k, v in (record.metadata_ or {}).items() if k in properties and v is not None},
                "responses": [_response_doc(r) for r in record.responses],
                "suggestions": {
                    s.question.name: {"type": s.type, "agent": s.agent, "score": s.score, "value": s.value}
                    for s in record.suggestions
                },
                "vectors": {str(v.vector_settings_id): list(v.value) for v in record.vectors},
            }
            index[str(record.id)] = doc

    async def partial_record_update(self, record, **update):
        doc = self._index(record.dataset).get(str(record.id))
        if doc is None:
            raise RuntimeError(f"record {record.id} is not indexed")
        for key, value in update.items():  # Elasticsearch merges objects in a partial update
            if isinstance(value, dict) and isinstance(doc.get(key), dict):
                doc[key].update(value)
            else:
                doc[key] = value

    async def delete_records(self, dataset, records: Iterable):
        index = self._index(dataset)
        for record in records:
            index.pop(str(record.id), None)

    def _doc_of(self, record_id, dataset) -> dict:
        doc = self._index(dataset).get(str(record_id))
        if doc is None:
            raise RuntimeError(f"record {record_id} is not indexed")
        return doc

    async def update_record_response(self, response):
        doc = self._doc_of(response.record_id, response.record.dataset)
        doc["responses"] = [r for r in doc["responses"] if r["id"] != str(response.id)] + [_response_doc(response)]

    async def delete_record_response(self, response):
        doc = self._doc_of(response.record_id, response.record.dataset)
        doc["responses"] = [r for r in doc["responses"] if r["id"] != str(response.id)]

    async def update_record_suggestion(self, suggestion):
        doc = self._doc_of(suggestion.record_id, suggestion.record.dataset)
        doc["suggestions"][suggestion.question.name] = {
            "type": suggestion.type, "agent": suggestion.agent, "score": suggestion.score, "value": suggestion.value}

    async def delete_record_suggestion(self, suggestion):
        doc = self._doc_of(suggestion.record_id, suggestion.record.dataset)
        doc["suggestions"].pop(suggestion.question.name, None)

    # -- progress and metrics -----------------------------------------------------------
    async def get_dataset_progress(self, dataset) -> dict:
        if dataset.is_draft:
            return {}
        counts: dict[str, int] = {}
        for doc in self._index(dataset).values():
            counts[doc["status"]] = counts.get(doc["status"], 0) + 1
        return {"total": sum(counts.values()), **counts}

    async def get_dataset_user_progress(self, dataset, user) -> dict:
        if dataset.is_draft:
            return {}
        counts: dict[str, int] = {}
        for doc in self._index(dataset).values():
            for r in doc["responses"]:
                if r["user_id"] == str(user.id):
                    counts[r["status"]] = counts.get(r["status"], 0) + 1
        return {"total": sum(counts.values()), **counts}

    async def compute_metrics_for(self, metadata_property):
        values = []
        for doc in self._index(metadata_property.dataset).values():
            value = doc["metadata"].get(metadata_property.name)
            if value is not None:
                values.extend(value if isinstance(value, list) else [value])
        if metadata_property.type == MetadataPropertyType.terms:
            counts: dict[str, int] = {}
            for value in values:
                counts[str(value)] = counts.get(str(value), 0) + 1
            ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
            return TermsMetrics(total=len(values), values=[TermsMetrics.TermCount(term=t, count=c) for t, c in ranked])
        cls = IntegerMetadataMetrics if metadata_property.type == MetadataPropertyType.integer else FloatMetadataMetrics
        return cls(min=min(values) if values else None, max=max(values) if values else None)

    # -- search -------------------------------------------------------------------------
    async def search(self, dataset, query: Optional[Union[TextQuery, str]] = None, filter=None,
                     sort: Optional[List[Order]] = None, offset: int = 0, limit: int = 100,
                     user_id: Optional[str] = None) -> SearchResponses:
        hits = []
        for doc in self._index(dataset).values():
            score = _text_score(doc, query)
            if score is None or (filter is not None and not _matches(doc, filter)):
                continue
            if user_id is not None:  # Elasticsearch's random_score seeded by the user: a stable shuffle per user
                digest = hashlib.sha256(f"{user_id}:{doc['id']}".encode()).digest()
                score = int.from_bytes(digest[:8], "big") / 2**64
            hits.append((doc, score))
        if sort:
            for order in reversed(sort):  # stable sorts, last key first
                hits = _sorted(hits, order)
        else:
            hits.sort(key=lambda h: -h[1])
        page = hits[offset:offset + limit]
        return SearchResponses(items=[SearchResponseItem(record_id=UUID(d["id"]), score=s) for d, s in page],
                               total=len(hits))

    async def similarity_search(self, dataset, vector_settings, value: Optional[List[float]] = None, record=None,
                                query=None, filter=None, max_results: int = 100,
                                order: SimilarityOrder = SimilarityOrder.most_similar,
                                threshold: Optional[float] = None) -> SearchResponses:
        if bool(value) == bool(record):
            raise ValueError("Must provide either vector value or record to compute the similarity search")
        vector = value or record.vector_value_by_vector_settings(vector_settings)
        if not vector:
            raise ValueError("Cannot find a vector value to apply with provided info")
        key, sign = str(vector_settings.id), (-1.0 if order == SimilarityOrder.least_similar else 1.0)
        hits = []
        for doc in self._index(dataset).values():
            other = doc["vectors"].get(key)
            if other is None or (record is not None and doc["id"] == str(record.id)):
                continue
            if (filter is not None and not _matches(doc, filter)) or _text_score(doc, query) is None:
                continue
            score = (1.0 + sign * _cosine(vector, other)) / 2.0  # Elasticsearch's cosine score
            if threshold is None or score >= threshold:
                hits.append((doc, score))
        hits.sort(key=lambda h: -h[1])
        hits = hits[:max_results]
        return SearchResponses(items=[SearchResponseItem(record_id=UUID(d["id"]), score=s) for d, s in hits],
                               total=len(hits))


def _cosine(a: List[float], b: List[float]) -> float:
    na, nb = math.sqrt(sum(x * x for x in a)), math.sqrt(sum(x * x for x in b))
    return sum(x * y for x, y in zip(a, b)) / (na * nb) if na and nb else 0.0


_TOKEN = re.compile(r"\w+")


def _text_score(doc: dict, query) -> Optional[float]:
    """None when the doc does not match; otherwise how often the terms occur (all terms must)."""
    if query is None:
        return 1.0
    if isinstance(query, str):
        query = TextQuery(q=query)
    terms = [t.lower() for t in _TOKEN.findall(query.q)]
    if query.field:
        texts = [doc["fields"].get(query.field) or ""]
    else:
        texts = [v or "" for v in doc["fields"].values()]
    words = [w.lower() for text in texts for w in _TOKEN.findall(text)]
    counts = [words.count(t) for t in terms]
    if not terms or not all(counts):
        return None
    return float(sum(counts))


def _field_value(doc: dict, scope) -> Any:
    if isinstance(scope, MetadataFilterScope):
        return doc["metadata"].get(scope.metadata_property)
    if isinstance(scope, SuggestionFilterScope):
        return (doc["suggestions"].get(scope.question) or {}).get(scope.property)
    if isinstance(scope, RecordFilterScope):
        return doc.get(scope.property)
    raise ValueError(f"Cannot process request for search scope {scope}")


def _value_matches(value: Any, flt) -> bool:
    values = value if isinstance(value, list) else [value]
    values = [v for v in values if v is not None]
    if isinstance(flt, TermsFilter):
        wanted = {str(v) for v in flt.values}
        return any(str(v) in wanted for v in values)
    if isinstance(flt, RangeFilter):
        ge, le = _sortable(flt.ge), _sortable(flt.le)
        return any((ge is None or _sortable(v) >= ge) and (le is None or _sortable(v) <= le) for v in values)
    raise ValueError(f"Cannot process request for filter {flt}")


def _matches(doc: dict, flt) -> bool:
    if isinstance(flt, AndFilter):
        return all(_matches(doc, f) for f in flt.filters)
    scope = flt.scope
    if not isinstance(scope, ResponseFilterScope):
        return _value_matches(_field_value(doc, scope), flt)
    user = str(scope.user.id) if scope.user else None
    mine = [r for r in doc["responses"] if user is None or r["user_id"] == user]
    if scope.question:
        return any(_value_matches(r.get(scope.question), flt) for r in mine)
    if scope.property == "status" and isinstance(flt, TermsFilter):
        statuses = {str(v) for v in flt.values}
        pending = str(ResponseStatusFilter.pending) in statuses
        return (pending and not mine) or any(r["status"] in statuses for r in mine)
    raise ValueError(f"Cannot process filter scope {scope}")


def _sorted(hits: list, order: Order) -> list:
    """Sort by one key; documents without a value go last in both directions (Elasticsearch's default)."""
    scope = order.scope
    if isinstance(scope, ResponseFilterScope):
        def key_of(doc):
            user = str(scope.user.id) if scope.user else None
            values = [r.get(scope.question or scope.property) for r in doc["responses"]
                      if user is None or r["user_id"] == user]
            values = [_sortable(v) for v in values if isinstance(v, (int, float))]
            return sum(values) / len(values) if values else None
    else:
        def key_of(doc):
            value = _field_value(doc, scope)
            return _sortable(min(value) if isinstance(value, list) and value else value)
    present = [(h, key_of(h[0])) for h in hits]
    missing = [h for h, k in present if k is None]
    ordered = sorted(((h, k) for h, k in present if k is not None), key=lambda hk: hk[1],
                     reverse=str(order.order) == str(SortOrder.desc))
    return [h for h, _ in ordered] + missing
