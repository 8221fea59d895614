"""The error half of the API contract, added once to the OpenAPI document FastAPI generates (issue 15).

Routes declare what they answer on success; every error goes through `gis_api.errors` in one JSON shape
(`ErrorBody`). This module declares, on every operation, the error statuses the machinery can answer
with that body — so a client (or schemathesis) reading the document knows every status it may get:

- every operation: 400 (a bad request by the domain's rules), 401 (a bad or expired credential), 404,
  422 (a parameter or body the schema refuses), 429 (rate limit), 500 and 503 (busy or database
  unavailable, with ``Retry-After``);
- an operation that needs a role (not ``open_route``): 403;
- a write (POST, PUT, PATCH, DELETE): 409 (conflict with existing data), 412 (stale ``If-Match``) and 507
  (the database's disk is full);
- an operation with a request body: 413 (body too large).

A status a route declares itself keeps the route's description; its schema becomes `ErrorBody`
when the route gave none (FastAPI's own ``HTTPValidationError`` for 422 is replaced: our handler never
sends that shape). The document also names the two ways to sign in (bearer token, ``X-API-Key``).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, Field

from gis_api.auth import roles as r
from gis_api.auth.deps import api_routes, route_policy


class ErrorBody(BaseModel):
    """The one JSON error shape of the API (`gis_api.errors.error_body`)."""

    error: str = Field(description="错误代码 machine-readable error code, e.g. not_found, validation_error")
    message: str = Field(description="错误说明 what was wrong (Chinese and English)")
    detail: Any = Field(None, description="结构化细节（可选） optional structured detail")


ERROR_DESCRIPTIONS: dict[int, str] = {
    400: "请求无效 bad request",
    401: "未登录或凭据无效 not signed in, or a bad credential",
    403: "无权访问 not allowed for your role or jurisdiction",
    404: "不存在 not found",
    409: "与现有数据冲突 conflicts with existing data",
    412: "记录已被修改（If-Match） the record changed since you read it",
    413: "请求体过大 request body too large",
    422: "参数或请求体无效 invalid parameter or body",
    429: "请求过于频繁（Retry-After） too many requests",
    500: "内部错误 internal error",
    503: "服务繁忙或数据库不可用（Retry-After） busy or database unavailable",
    507: "数据库磁盘已满，写入未保存 the database's disk is full: nothing was written",
}
WRITES = {"post", "put", "patch", "delete"}
SECURITY_SCHEMES = {
    "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                   "description": "POST /auth/token 取得的访问令牌 an access token from POST /auth/token"},
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key",
               "description": "对接系统的 API 密钥 an API key of another system (shequ key create)"},
}
_ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}


def error_statuses(method: str, operation: dict[str, Any], needs_role: bool) -> list[int]:
    """The error statuses an operation can answer with (see the module docstring)."""
    statuses = [400, 401, 404, 422, 429, 500, 503]
    if needs_role:
        statuses.append(403)
    if method in WRITES:
        statuses += [409, 412, 507]
    if "requestBody" in operation:
        statuses.append(413)
    return sorted(statuses)


def _declare(operation: dict[str, Any], statuses: list[int]) -> None:
    responses = operation.setdefault("responses", {})
    for status in statuses:
        entry = responses.setdefault(str(status), {"description": ERROR_DESCRIPTIONS[status]})
        content = entry.get("content") or {}
        schema = (content.get("application/json") or {}).get("schema")
        if schema is None or schema.get("$ref", "").endswith("/HTTPValidationError"):
            entry["content"] = {**content, "application/json": {"schema": dict(_ERROR_REF)}}


def _policies(app: FastAPI) -> dict[tuple[str, str], str | None]:
    """(OpenAPI path, lower-case method) → the route's declared policy (`route_policy`)."""
    found: dict[tuple[str, str], str | None] = {}
    for route in api_routes(app):
        for method in route.methods:
            found[(route.path_format, method.lower())] = route_policy(route)
    return found


def _security(policy: str | None) -> list[dict[str, list[str]]]:
    anonymous = policy is not None and (policy.startswith("open:") or r.can(r.Principal(), policy))
    return ([{}] if anonymous else []) + [{"bearerAuth": []}, {"apiKey": []}]


_JSON_SCHEMA_BOUNDS = {"ge": "minimum", "le": "maximum", "gt": "exclusiveMinimum", "lt": "exclusiveMaximum"}


def _json_schema_bounds(node: Any) -> None:
    """Spell bounds as JSON Schema does. pydantic leaves ``ge`` / ``le`` untranslated on a constrained
    integer wrapped by a validator (`gis_api.params.JsonInt` under ``Optional``): the route enforces the
    bound, but a client reading ``ge`` sees none (the long contract run sent ``p: 0`` for ``ge: 1``)."""
    if isinstance(node, dict):
        if node.get("type") in ("integer", "number"):
            for raw, name in _JSON_SCHEMA_BOUNDS.items():
                if raw in node and name not in node:
                    node[name] = node.pop(raw)
        for value in node.values():
            _json_schema_bounds(value)
    elif isinstance(node, list):
        for value in node:
            _json_schema_bounds(value)


def add_error_responses(app: FastAPI) -> None:
    """Make ``app.openapi()`` declare the error statuses, the one error body and the security schemes."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        doc = generate()  # FastAPI caches it: the changes below are made once and are idempotent
        components = doc.setdefault("components", {})
        if "ErrorBody" in components.get("schemas", {}):
            return doc
        policies = _policies(app)
        for path, item in doc.get("paths", {}).items():
            for method, operation in item.items():
                if method not in {"get", "post", "put", "patch", "delete"}:
                    continue
                policy = policies.get((path, method))
                _declare(operation, error_statuses(method, operation, not (policy or "").startswith("open:")))
                operation.setdefault("security", _security(policy))
        schemas = components.setdefault("schemas", {})
        schemas["ErrorBody"] = ErrorBody.model_json_schema()
        _json_schema_bounds(doc)
        text = json.dumps(doc["paths"])
        for unused in ("HTTPValidationError", "ValidationError"):
            if f"/{unused}\"" not in text and f"/{unused}\"" not in json.dumps(schemas):
                schemas.pop(unused, None)
        components.setdefault("securitySchemes", {}).update(SECURITY_SCHEMES)
        return doc

    app.openapi = openapi  # type: ignore[method-assign]
