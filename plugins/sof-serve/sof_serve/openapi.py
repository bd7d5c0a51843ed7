"""The OpenAPI 3.0 document of the HTTP API, served at ``/openapi.json``.

Written by hand next to the routes it describes (the app has no framework that derives it),
and checked against the running server by schemathesis in the tests: every status a route
can answer is listed, with the shape of its body.
"""

from __future__ import annotations

from typing import Any

from sof_serve import __version__

_ERROR = {"$ref": "#/components/schemas/Error"}
_JSON = "application/json"


def _body(schema: dict[str, Any], required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": {_JSON: {"schema": schema}}}


def _answer(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {_JSON: {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    why = {400: "the body is not valid JSON", 401: "missing or wrong bearer token",
           404: "not found (admin: no SOF_ADMIN_TOKEN configured)",
           413: "body larger than max_body_bytes", 422: "invalid input, named in the message",
           500: "the request's work raised (internal_error, naming it)",
           503: "busy (max_concurrency) or not available", 504: "request_timeout passed"}
    return {str(code): _answer(why[code], _ERROR) for code in codes}


_LIMITED = (413, 503, 504)
_POSTED = (400, 413, 422, 500, 503, 504)
_ADMIN = (401, 404, 413, 503, 504)

_OBJECT: dict[str, Any] = {"type": "object"}
_TEXT: dict[str, Any] = {"type": "string", "minLength": 1, "pattern": r"\S"}
_PLAN: dict[str, Any] = {"type": "array", "minItems": 1,
                         "items": {"type": "string", "minLength": 1}}

_SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object", "required": ["error"],
        "properties": {"error": {
            "type": "object", "required": ["status", "code", "message"],
            "properties": {"status": {"type": "integer"}, "code": {"type": "string"},
                           "message": {"type": "string"}}}},
    },
    "Run": {
        "description": "The run's JSON, schema sof.run/1 (as `sof run --json`), plus the "
                       "service's keys: run_id, finished_at, route, timeline, graph.",
        "type": "object",
        "required": ["schema", "schema_version", "status", "task_id", "query",
                     "final_response", "plan", "stages", "skills", "errors", "run_id",
                     "route", "timeline", "graph"],
        "properties": {
            "schema": {"type": "string", "enum": ["sof.run/1"]},
            "schema_version": {"type": "integer", "enum": [1]},
            "status": {"type": "string",
                       "enum": ["success", "partial", "failure", "timeout", "invalid", "error"]},
            "task_id": {"type": "string"},
            "run_id": {"type": "string"},
            "query": {"type": "string"},
            "final_response": {"type": "string", "nullable": True},
            "plan": {"type": "array", "items": {"type": "string"}},
            "stages": {"type": "array", "items": {"type": "array",
                                                  "items": {"type": "string"}}},
            "skills": {"type": "array", "items": _OBJECT},
            "errors": {"type": "array", "items": {"type": "string"}},
            "route": {"type": "object", "required": ["path", "ok", "fallback"],
                      "properties": {"path": {"type": "string",
                                              "enum": ["sof", "legacy", "none"]},
                                     "ok": {"type": "boolean"},
                                     "fallback": {"type": "boolean"}}},
            "timeline": _OBJECT,
            "graph": _OBJECT,
        },
    },
    "RunSummary": {
        "type": "object", "required": ["run_id", "query", "status", "path", "ok"],
        "properties": {"run_id": {"type": "string"}, "query": {"type": "string"},
                       "status": {"type": "string"},
                       "path": {"type": "string", "nullable": True},
                       "ok": {"type": "boolean"}},
    },
    "Rollout": {
        "type": "object",
        "required": ["use_sof_framework", "sof_rollout_percentage"],
        "properties": {"use_sof_framework": {"type": "boolean"},
                       "sof_rollout_percentage": {"type": "number", "minimum": 0,
                                                  "maximum": 100},
                       "overridden_by": _OBJECT, "change": _OBJECT},
    },
}


def openapi_document(planners: list[str], recent_runs: int,
                     admin: bool = True) -> dict[str, Any]:
    """The document for a server with these planners installed and ``recent_runs`` kept;
    a fresh dict each call. Optional fields are left out rather than sent as null.
    ``admin=False`` (no admin token configured): the admin operations ask for no
    credentials and answer 404 only, as the server does; the document says what is."""
    planner = {"type": "string", "enum": list(planners),
               "description": "an installed planner's name; not with plan"}
    query_body = {
        "type": "object", "required": ["query"], "additionalProperties": False,
        "not": {"required": ["plan", "planner"]},
        "properties": {
            "query": _TEXT, "user_id": _TEXT, "session_id": _TEXT,
            "plan": {**_PLAN,
                     "description": "skill names to run instead of the planner's plan"},
            "planner": planner,
            "context": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    }
    percentage = {"type": "number", "minimum": 0, "maximum": 100}
    paths: dict[str, Any] = {
        "/healthz": {"get": {"summary": "The process serves", "responses": {
            "200": _answer("alive", {"type": "object", "required": ["status"]})}}},
        "/readyz": {"get": {"summary": "Ready to answer queries", "responses": {
            "200": _answer("ready", _OBJECT), "503": _answer("not ready", _OBJECT)}}},
        "/metrics": {"get": {"summary": "Prometheus text exposition", "responses": {
            "200": {"description": "metrics",
                    "content": {"text/plain": {"schema": {"type": "string"}}}},
            **_errors(*_LIMITED)}}},
        "/v1/query": {"post": {
            "summary": "Answer a query through the router (rollout, fallback, metrics)",
            "requestBody": _body(query_body),
            "responses": {"200": _answer("the run", {"$ref": "#/components/schemas/Run"}),
                          **_errors(*_POSTED)}}},
        "/v1/plan": {"post": {
            "summary": "The plan a planner would run for a query",
            "requestBody": _body({
                "type": "object", "required": ["query"], "additionalProperties": False,
                "properties": {"query": _TEXT, "planner": planner, "profile": _TEXT}}),
            "responses": {"200": _answer("the plan", {
                "type": "object", "required": ["plan", "planner", "valid", "problems",
                                               "graph"]}),
                **_errors(*_POSTED)}}},
        "/v1/validate": {"post": {
            "summary": "Check a plan against the installed skills",
            "requestBody": _body({"type": "object", "required": ["plan"],
                                  "additionalProperties": False,
                                  "properties": {"plan": _PLAN}}),
            "responses": {"200": _answer("problems (empty when runnable)", {
                "type": "object", "required": ["valid", "problems"],
                "properties": {"valid": {"type": "boolean"},
                               "problems": {"type": "array", "items": _OBJECT}}}),
                **_errors(*_POSTED)}}},
        "/v1/skills": {"get": {"summary": "Installed skills", "responses": {
            "200": _answer("skills, each item as `sof skills --json` lists it", {
                "type": "object", "required": ["skills"],
                "properties": {"skills": {"type": "array", "items": {
                    "type": "object", "required": ["name", "available"]}}}}),
            **_errors(*_LIMITED)}}},
        "/v1/plugins": {"get": {"summary": "Installed plugins", "responses": {
            "200": _answer("plugins", {"type": "object", "required": ["plugins"]}),
            **_errors(*_LIMITED)}}},
        "/v1/stats": {"get": {"summary": "What the monitoring page shows", "responses": {
            "200": _answer("figures", {"type": "object",
                                       "required": ["comparison", "skills", "rollout"]}),
            **_errors(*_LIMITED)}}},
        "/v1/alerts": {"get": {"summary": "Alert thresholds, values, active alerts",
                               "responses": {"200": _answer("alert state", _OBJECT),
                                             **_errors(*_LIMITED)}}},
        "/v1/runs": {"get": {
            "summary": "The most recent runs, newest first",
            "parameters": [{"name": "limit", "in": "query", "required": False,
                            "schema": {"type": "integer", "minimum": 1,
                                       "maximum": recent_runs}}],
            "responses": {"200": _answer("runs", {
                "type": "object", "required": ["runs", "total"],
                "properties": {"runs": {"type": "array", "items": {
                    "$ref": "#/components/schemas/RunSummary"}}}}),
                **_errors(422, *_LIMITED)}}},
        "/v1/runs/stream": {"get": {
            "summary": "Finished runs as server-sent events (event: run)",
            "parameters": [{"name": "max_events", "in": "query", "required": False,
                            "schema": {"type": "integer", "minimum": 1}}],
            "responses": {"200": {"description": "event stream", "content": {
                "text/event-stream": {"schema": {"type": "string"}}}},
                **_errors(422)}}},
        "/v1/runs/{run_id}": {"get": {
            "summary": "One run's whole trace",
            "parameters": [{"name": "run_id", "in": "path", "required": True,
                            "schema": {"type": "string"}}],
            "responses": {"200": _answer("the run", {"$ref": "#/components/schemas/Run"}),
                          **_errors(404, *_LIMITED)}}},
        "/v1/admin/enable": {"post": {
            "summary": "Route queries to SOF (optionally set the rollout)",
            "security": [{"bearer": []}],
            "requestBody": _body({"type": "object", "additionalProperties": False,
                                  "properties": {"percentage": percentage}}, required=False),
            "responses": {"200": _answer("applied",
                                         {"$ref": "#/components/schemas/Rollout"}),
                          **_errors(400, 422, *_ADMIN)}}},
        "/v1/admin/disable": {"post": {
            "summary": "Roll back: every new query goes to legacy",
            "security": [{"bearer": []}],
            "requestBody": _body({"type": "object", "additionalProperties": False,
                                  "properties": {}}, required=False),
            "responses": {"200": _answer("applied",
                                         {"$ref": "#/components/schemas/Rollout"}),
                          **_errors(400, 422, *_ADMIN)}}},
        "/v1/admin/rollout": {"put": {
            "summary": "Set the rollout percentage",
            "security": [{"bearer": []}],
            "requestBody": _body({"type": "object", "required": ["percentage"],
                                  "additionalProperties": False,
                                  "properties": {"percentage": percentage}}),
            "responses": {"200": _answer("applied",
                                         {"$ref": "#/components/schemas/Rollout"}),
                          **_errors(400, 422, *_ADMIN)}}},
        "/v1/admin/config": {"get": {
            "summary": "The configuration as applied, with each value's source",
            "security": [{"bearer": []}],
            "responses": {"200": _answer("settings", {
                "type": "object", "required": ["path", "settings"]}),
                **_errors(*_ADMIN)}}},
    }
    if not admin:
        for path, item in paths.items():
            if path.startswith("/v1/admin/"):
                for operation in item.values():
                    operation.pop("security", None)
                    operation.pop("requestBody", None)
                    operation["responses"] = _errors(404, 413)
                    operation["description"] = ("off on this server: no SOF_ADMIN_TOKEN is "
                                                "configured")
    return {
        "openapi": "3.0.3",
        "info": {"title": "SOF", "version": __version__,
                 "description": "SOF as an HTTP service (docs/operations.md)."},
        "paths": paths,
        "components": {"schemas": _SCHEMAS,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }
