"""Request and response shapes of the APIs existing clients speak.

* **Jina / Cohere v1** (``POST /rerank``, ``/v1/rerank``): ``{model, query, documents,
  top_n, return_documents}`` -> ``{id, model, results: [{index, relevance_score,
  document?: {text}}], usage: {total_tokens}, meta}``. Open WebUI, Dify, RAGFlow,
  vLLM-style and Jina clients.
* **Cohere v2** (``POST /v2/rerank``): ``{model, query, documents, top_n,
  max_tokens_per_doc}`` -> ``{id, results: [{index, relevance_score}], meta}``. The
  ``cohere`` SDK's ``ClientV2`` and LangChain's ``CohereRerank``.
* **TEI** (``POST /rerank`` with ``texts``): ``{query, texts, raw_scores, return_text,
  truncate, truncation_direction}`` -> a bare array ``[{index, score, text?}]``.

Documents are strings or ``{"text": ...}`` objects. The pydantic models document the
shapes in the OpenAPI page and check field types; :func:`document_texts` gives the
per-document error message. Unknown fields are ignored (clients send extras such as
``rank_fields`` or ``priority``).
"""

from __future__ import annotations

import math
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError

from ._limits import ApiError
from ._service import RerankResult

__all__ = [
    "JinaRerankRequest",
    "CohereV2RerankRequest",
    "TEIRerankRequest",
    "JinaRerankResponse",
    "CohereV2RerankResponse",
    "TEIRank",
    "parse",
    "document_texts",
    "jina_response",
    "cohere_v2_response",
    "tei_response",
]


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore")


#: JSON schema of one document (for the OpenAPI page): a string or ``{"text": ...}``.
_DOC_ITEMS = {
    "anyOf": [
        {"type": "string"},
        {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
    ]
}


def _docs_field(description: str) -> Any:
    return Field(description=description, json_schema_extra={"items": _DOC_ITEMS})


class JinaRerankRequest(_Request):
    """Jina / Cohere v1 rerank request."""

    model: StrictStr | None = Field(None, description="pipeline name; empty: the default")
    query: StrictStr
    documents: list[Any] = _docs_field("strings or {text} objects")
    top_n: StrictInt | None = Field(None, description="results to return (>= 1); default all")
    return_documents: StrictBool = False


class CohereV2RerankRequest(_Request):
    """Cohere v2 rerank request (``cohere.ClientV2.rerank``)."""

    model: StrictStr | None = None
    query: StrictStr
    documents: list[Any] = _docs_field("strings (or {text} objects)")
    top_n: StrictInt | None = None
    max_tokens_per_doc: StrictInt | None = Field(
        None, description="per-document token budget (capped by the server's limit)"
    )


class TEIRerankRequest(_Request):
    """Hugging Face text-embeddings-inference rerank request."""

    model: StrictStr | None = None
    query: StrictStr
    texts: list[Any] = _docs_field("strings")
    raw_scores: StrictBool = Field(False, description="score = the ranker's raw score")
    return_text: StrictBool = False
    truncate: StrictBool = Field(False, description="ignored: documents are always truncated")
    truncation_direction: Literal["Right", "Left", "right", "left"] = "Right"


class DocumentOut(BaseModel):
    text: str


class JinaResult(BaseModel):
    index: int
    relevance_score: float
    document: DocumentOut | None = None


class Usage(BaseModel):
    total_tokens: int


class JinaRerankResponse(BaseModel):
    id: str
    model: str
    results: list[JinaResult]
    usage: Usage
    meta: dict[str, Any]


class CohereV2Result(BaseModel):
    index: int
    relevance_score: float


class CohereV2RerankResponse(BaseModel):
    id: str
    results: list[CohereV2Result]
    meta: dict[str, Any]


class TEIRank(BaseModel):
    index: int
    score: float
    text: str | None = None


def _first_errors(exc: ValidationError, limit: int = 3) -> str:
    """A short message from a pydantic error, never quoting the input (no document text)."""
    parts = []
    for err in exc.errors(include_input=False, include_url=False)[:limit]:
        loc = ".".join(str(x) for x in err["loc"]) or "body"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


def parse(model: type[_Request], data: Any) -> Any:
    """Validate ``data`` against ``model``; :class:`ApiError` 422 naming the field."""
    if not isinstance(data, dict):
        raise ApiError(422, f"the request body must be a JSON object, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ApiError(422, f"invalid request: {_first_errors(exc)}") from None


def document_texts(items: list[Any], field: str = "documents") -> list[str]:
    """The text of each document: a string or a mapping with a string ``text``."""
    out: list[str] = []
    for i, d in enumerate(items):
        if isinstance(d, str):
            out.append(d)
        elif isinstance(d, dict) and isinstance(d.get("text"), str):
            out.append(d["text"])
        else:
            raise ApiError(
                422, f"{field}[{i}] must be a string or an object with a string 'text', "
                f"got {type(d).__name__}",
            )  # fmt: skip
    return out


def _meta(version: str, res: RerankResult) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "api_version": {"version": version},
        "billed_units": {"search_units": 1},
        "tokens": {"input_tokens": res.input_tokens, "output_tokens": 0},
    }
    if res.warnings:
        meta["warnings"] = res.warnings
    return meta


def _score(v: float) -> float | None:
    return None if math.isnan(v) else round(v, 6)


def jina_response(res: RerankResult, texts: list[str], return_documents: bool) -> dict[str, Any]:
    results = []
    for i, rel in zip(res.order, res.relevance):
        item: dict[str, Any] = {"index": i, "relevance_score": _score(rel)}
        if return_documents:
            item["document"] = {"text": texts[i]}
        results.append(item)
    return {
        "id": uuid.uuid4().hex,
        "model": res.model,
        "results": results,
        "usage": {"total_tokens": res.input_tokens},
        "meta": _meta("1", res),
    }


def cohere_v2_response(res: RerankResult) -> dict[str, Any]:
    return {
        "id": uuid.uuid4().hex,
        "results": [
            {"index": i, "relevance_score": _score(rel)} for i, rel in zip(res.order, res.relevance)
        ],
        "meta": _meta("2", res),
    }


def tei_response(
    res: RerankResult, texts: list[str], raw_scores: bool, return_text: bool
) -> list[dict[str, Any]]:
    values = res.scores if raw_scores else res.relevance
    out = []
    for i, v in zip(res.order, values):
        item: dict[str, Any] = {"index": i, "score": _score(v)}
        if return_text:
            item["text"] = texts[i]
        out.append(item)
    return out
