"""The ASGI app: SOF's HTTP API, the monitoring page and ``/metrics`` (Starlette).

``create_app()`` builds a complete app; a host that already runs an ASGI app (SAM's
Streamlit server, FastAPI, another Starlette app) mounts it under a prefix, e.g.
``Mount("/sof", app=create_app(legacy=my_pipeline))``, and gets the same routes, limits and
page. Blocking work (runs, planning, config writes) goes to worker threads, bounded by
``max_concurrency``, so the event loop keeps serving health checks and the event stream.
"""

from __future__ import annotations

import asyncio
import hmac
import importlib
import json
import logging
import math
import re
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from sof_serve.limits import LimitsMiddleware, WorkerSlots
from sof_serve.openapi import openapi_document
from sof_serve.service import LONE_SURROGATE, RequestError, SOFService
from sof_serve.settings import ADMIN_TOKEN_ENV, ServeSettings

log = logging.getLogger("sof.serve")

Handler = Callable[[Request], Awaitable[Response]]
#: Seconds between keep-alive comments on the event stream (proxies close idle streams).
KEEPALIVE_SECONDS = 15.0
#: Threads for the routes that watch and operate the server (``_Api.control``).
CONTROL_THREADS = 4
#: How often an idle stream checks whether the server is stopping.
POLL_SECONDS = 0.25


def create_app(
    service: SOFService | None = None,
    *,
    settings: ServeSettings | None = None,
    **service_options: Any,
) -> Starlette:
    """The whole HTTP surface as one ASGI app.

    Without ``service`` one is made from the installed plugins and the live configuration
    (``service_options`` go to ``SOFService``: ``legacy=`` the host's legacy pipeline,
    ``engine=``, ``manager=``, ``metrics=``). ``settings`` default to
    ``plugin_settings.serve`` and ``SOF_ADMIN_TOKEN``.
    """
    if service is None:
        service = SOFService(settings=settings, **service_options)
    api = _Api(service)
    app = Starlette(routes=api.routes(),
                    exception_handlers={HTTPException: _http_error, Exception: _internal_error})
    app.state.sof = service
    app.add_middleware(LimitsMiddleware, settings=service.settings, slots=api.slots,
                       closing=service.closing)
    return app


class SafeJSONResponse(JSONResponse):
    """``JSONResponse`` that always renders: a lone surrogate in the content (a skill's or
    a legacy pipeline's answer, say) is sent as U+FFFD instead of failing the response
    (which used to be a plain-text 500, and a stored run that could never be read back)."""

    def render(self, content: Any) -> bytes:
        text = json.dumps(content, ensure_ascii=False, allow_nan=False, indent=None,
                          separators=(",", ":"))
        try:
            return text.encode("utf-8")
        except UnicodeEncodeError:
            return LONE_SURROGATE.sub("\ufffd", text).encode("utf-8")


def error(status: int, code: str, message: str, headers: dict[str, str] | None = None
          ) -> JSONResponse:
    return SafeJSONResponse({"error": {"status": status, "code": code, "message": message}},
                        status_code=status, headers=headers)


#: The codes of the errors the routing itself answers (no route, wrong method).
_HTTP_CODES = {404: "not_found", 405: "method_not_allowed"}


async def _http_error(request: Request, exc: Exception) -> Response:
    """404 (no such route or file) and 405 (a route that takes other methods) as the
    documented JSON error, like every other error, instead of Starlette's plain text."""
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    code = _HTTP_CODES.get(status, "http_error")
    if status == 404:
        message = (f"no route {request.url.path[:200]!r}; GET /openapi.json lists the "
                   "routes")
    elif status == 405:
        message = (f"{request.method[:20]} is not a method of {request.url.path[:200]!r}; "
                   f"it takes {(exc.headers or {}).get('Allow', 'other methods')}")
    else:
        message = str(exc.detail)
    if request.method == "HEAD":
        return Response(status_code=status, headers=exc.headers)
    return error(status, code, message, headers=dict(exc.headers or {}))


async def _internal_error(request: Request, exc: Exception) -> Response:
    """An unexpected error in a route: the documented JSON error, not a plain-text 500."""
    return error(500, "internal_error", f"the server failed answering this request "
                 f"({type(exc).__name__}); its log has the details")


class _Api:
    def __init__(self, service: SOFService) -> None:
        self.service = service
        #: Places for the threads running queries, plans and validations, each held until
        #: its thread returns (timed-out work included).
        self.slots = WorkerSlots(service.settings.max_concurrency)
        #: Threads for watching and operating the server (stats, alerts, admin): never
        #: queued behind queries that hold every place of ``slots``.
        self.control = anyio.CapacityLimiter(CONTROL_THREADS)

    def routes(self) -> list[Route | Mount]:
        static = resources.files("sof_serve") / "static"
        return [
            Route("/", self.page, methods=["GET"]),
            Route("/healthz", self.healthz, methods=["GET"]),
            Route("/readyz", self.readyz, methods=["GET"]),
            Route("/metrics", self.metrics, methods=["GET"]),
            Route("/openapi.json", self.openapi, methods=["GET"]),
            Route("/v1/query", self.json_route(self.query), methods=["POST"]),
            Route("/v1/plan", self.json_route(self.plan), methods=["POST"]),
            Route("/v1/validate", self.json_route(self.validate), methods=["POST"]),
            Route("/v1/skills", self.skills, methods=["GET"]),
            Route("/v1/plugins", self.plugins, methods=["GET"]),
            Route("/v1/stats", self.stats, methods=["GET"]),
            Route("/v1/alerts", self.alerts, methods=["GET"]),
            Route("/v1/runs", self.runs, methods=["GET"]),
            Route("/v1/runs/stream", self.stream, methods=["GET"]),
            Route("/v1/runs/{run_id}", self.run, methods=["GET"]),
            Route("/v1/admin/enable", self.admin(self.enable), methods=["POST"]),
            Route("/v1/admin/disable", self.admin(self.disable), methods=["POST"]),
            Route("/v1/admin/rollout", self.admin(self.rollout), methods=["PUT"]),
            Route("/v1/admin/config", self.admin(self.config), methods=["GET"]),
            Mount("/static", app=StaticFiles(directory=str(static)), name="static"),
        ]

    async def call(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Blocking work on a worker thread; abandoned (not waited for) on a timeout."""
        return await self.slots.run(_guarded(function, *args, **kwargs))

    async def control_call(self, function: Callable[..., Any], *args: Any,
                           **kwargs: Any) -> Any:
        """``call`` for watching and operating the server: its own few threads."""
        return await anyio.to_thread.run_sync(_guarded(function, *args, **kwargs),
                                              abandon_on_cancel=True, limiter=self.control)

    # --- wrappers ------------------------------------------------------------------------

    def json_route(self, handler: Callable[[dict[str, Any]], Awaitable[Response]]) -> Handler:
        """Parse the JSON object body; 400 for bad JSON, 422 for a non-object."""
        async def route(request: Request) -> Response:
            raw = await request.body()
            try:
                body = json.loads(raw, parse_constant=_no_constant) if raw else None
            except (ValueError, RecursionError) as exc:
                return error(400, "invalid_json", f"the request body is not valid JSON: {exc}")
            if not isinstance(body, dict):
                return error(422, "invalid_body", "the request body must be a JSON object")
            try:
                return await handler(body)
            except RequestError as exc:
                return error(exc.status, exc.code, exc.message)

        return route

    def admin(self, handler: Callable[[Request], Awaitable[Response]]) -> Handler:
        """Bearer-token gate: 404 with no token configured, 401 without the right one."""
        async def route(request: Request) -> Response:
            token = self.service.settings.admin_token
            if not token:
                return error(404, "admin_off",
                             f"admin endpoints are off: set {ADMIN_TOKEN_ENV} to enable them")
            given = request.headers.get("authorization", "")
            scheme, _, value = given.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                    value.strip().encode(), token.encode()):
                return error(401, "unauthorized",
                             "admin endpoints need 'Authorization: Bearer <token>' with the "
                             f"server's {ADMIN_TOKEN_ENV}",
                             headers={"WWW-Authenticate": "Bearer"})
            try:
                return await handler(request)
            except RequestError as exc:
                return error(exc.status, exc.code, exc.message)

        return route

    # --- plain routes --------------------------------------------------------------------

    async def page(self, request: Request) -> Response:
        html = (resources.files("sof_serve") / "static" / "index.html").read_text("utf-8")
        return Response(html, media_type="text/html; charset=utf-8")

    async def healthz(self, request: Request) -> Response:
        return SafeJSONResponse({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        ready, reason = await anyio.to_thread.run_sync(self.service.ready)
        return SafeJSONResponse({"status": "ready" if ready else "not_ready", "reason": reason},
                            status_code=200 if ready else 503)

    async def metrics(self, request: Request) -> Response:
        try:  # the observer is built apart from the app; the app works without it
            render_latest = importlib.import_module("sof_serve.observe.metrics").render_latest
        except (ImportError, AttributeError) as exc:
            return error(503, "metrics_unavailable",
                         f"the metrics observer (sof_serve.observe.metrics) is not available: "
                         f"{exc}")
        body, content_type = await anyio.to_thread.run_sync(render_latest)
        return Response(body, headers={"Content-Type": content_type})

    async def openapi(self, request: Request) -> Response:
        planners = await self.control_call(
            lambda: sorted(self.service.engine.registry.components("planners")))
        settings = self.service.settings
        return SafeJSONResponse(openapi_document(planners=planners,
                                             recent_runs=settings.recent_runs,
                                             admin=bool(settings.admin_token)))

    async def skills(self, request: Request) -> Response:
        return SafeJSONResponse({"skills": await self.control_call(self.service.skills)})

    async def plugins(self, request: Request) -> Response:
        return SafeJSONResponse({"plugins": await self.control_call(self.service.plugins)})

    async def stats(self, request: Request) -> Response:
        data = await self.control_call(self.service.stats)
        data["workers"] = {"max": self.slots.size, "busy": self.slots.busy,
                           "hung": self.slots.hung}
        return SafeJSONResponse(data)

    async def alerts(self, request: Request) -> Response:
        return SafeJSONResponse(await self.control_call(self.service.alert_state))

    async def runs(self, request: Request) -> Response:
        size = self.service.settings.recent_runs
        text = request.query_params.get("limit", str(min(50, size)))
        try:
            limit = int(text)
        except ValueError:
            limit = -1
        if not 1 <= limit <= size:
            return error(422, "invalid_limit",
                         f"limit must be a whole number from 1 to {size} (the runs kept, "
                         f"plugin_settings.serve.recent_runs), got {text!r}")
        return SafeJSONResponse({"runs": self.service.runs.recent(limit),
                             "total": self.service.runs.total, "kept": size})

    async def run(self, request: Request) -> Response:
        run_id = request.path_params["run_id"]
        record = self.service.runs.get(run_id)
        if record is None:
            return error(404, "unknown_run",
                         f"no run {run_id!r} among the last {self.service.settings.recent_runs}"
                         " runs (GET /v1/runs lists them)")
        return SafeJSONResponse(record)

    async def stream(self, request: Request) -> Response:
        """Finished runs as server-sent events (``event: run``, data: the run's summary)."""
        text = request.query_params.get("max_events")
        limit: int | None = None
        if text is not None:
            try:
                limit = int(text)
            except ValueError:
                limit = 0
            if limit < 1:
                return error(422, "invalid_max_events",
                             f"max_events must be a whole number >= 1, got {text!r}")
        store = self.service.runs
        reader = store.subscribe()

        async def events() -> Any:
            sent = 0
            quiet = 0.0
            try:
                yield b": sof runs stream\n\n"
                while (limit is None or sent < limit) and not self.service.closing.is_set():
                    try:
                        event = await asyncio.wait_for(reader.queue.get(), POLL_SECONDS)
                    except asyncio.TimeoutError:
                        quiet += POLL_SECONDS
                        if quiet >= KEEPALIVE_SECONDS:
                            quiet = 0.0
                            yield b": keep-alive\n\n"
                        continue
                    quiet = 0.0
                    data = json.dumps(event, default=str)
                    yield f"id: {event['run_id']}\nevent: run\ndata: {data}\n\n".encode()
                    sent += 1
            finally:
                store.unsubscribe(reader)

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache",
                                          "X-Accel-Buffering": "no"})

    # --- JSON routes ---------------------------------------------------------------------

    async def query(self, body: dict[str, Any]) -> Response:
        _only(body, {"query", "user_id", "session_id", "plan", "planner", "context"})
        query = _text(body, "query", required=True)
        plan = _plan(body)
        planner = _text(body, "planner")
        if plan is not None and planner is not None:
            raise RequestError(422, "invalid_body", "give 'plan' or 'planner', not both")
        _null(body, "context")
        context = body.get("context", {})
        if not isinstance(context, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in context.items()):
            raise RequestError(422, "invalid_body",
                               "'context' must be an object of string values")
        for key, value in context.items():
            _encodable(key, "a 'context' key")
            _encodable(value, f"'context'[{key!r}]")
        record = await self.call(self.service.query, query, user_id=_text(body, "user_id"),
                                 session_id=_text(body, "session_id"), plan=plan,
                                 planner=planner, context=context)
        return SafeJSONResponse(record)

    async def plan(self, body: dict[str, Any]) -> Response:
        _only(body, {"query", "planner", "profile"})
        result = await self.call(self.service.plan, _text(body, "query", required=True),
                                 planner=_text(body, "planner"),
                                 profile=_text(body, "profile"))
        return SafeJSONResponse(result)

    async def validate(self, body: dict[str, Any]) -> Response:
        _only(body, {"plan"})
        plan = _plan(body)
        if plan is None:
            raise RequestError(422, "invalid_body",
                               "'plan' is required: a list of skill names")
        return SafeJSONResponse(await self.call(self.service.validate, plan))

    # --- admin ---------------------------------------------------------------------------

    async def enable(self, request: Request) -> Response:
        body = await _optional_body(request)
        _only(body, {"percentage"})
        percentage = _percentage(body, required=False)
        return SafeJSONResponse(await self.control_call(self.service.set_enabled, True, percentage,
                                            _who(request)))

    async def disable(self, request: Request) -> Response:
        body = await _optional_body(request)
        _only(body, set())
        return SafeJSONResponse(await self.control_call(self.service.set_enabled, False, None,
                                            _who(request)))

    async def rollout(self, request: Request) -> Response:
        body = await _optional_body(request)
        _only(body, {"percentage"})
        percentage = _percentage(body, required=True)
        assert percentage is not None
        return SafeJSONResponse(await self.control_call(self.service.set_rollout, percentage,
                                            _who(request)))

    async def config(self, request: Request) -> Response:
        return SafeJSONResponse(await self.control_call(self.service.applied_config))


def _guarded(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Callable[[], Any]:
    """``function`` for a worker thread: whatever it raises becomes a ``RequestError`` (500
    ``internal_error`` naming it), so a ``KeyboardInterrupt`` or ``SystemExit`` raised by a
    skill or a legacy pipeline on that thread fails the request, never the server (asyncio
    re-raises those two out of the event loop)."""
    def work() -> Any:
        try:
            return function(*args, **kwargs)
        except RequestError:
            raise
        except BaseException as exc:  # the thread's, never the user's Ctrl-C
            log.exception("request work failed")
            text = str(exc)
            raise RequestError(500, "internal_error",
                               f"the request's work raised {type(exc).__name__}"
                               + (f": {text}" if text else "")) from None

    return work


# --- body helpers ----------------------------------------------------------------------

#: A value with no visible character (the OpenAPI document's pattern ``\S``, negated).
_BLANK = re.compile(r"\s*")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a finite number")


def _only(body: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        known = ", ".join(sorted(allowed)) or "none"
        raise RequestError(422, "invalid_body",
                           f"unknown field(s) {', '.join(map(repr, unknown))}; "
                           f"known fields: {known}")


def _null(body: dict[str, Any], key: str) -> None:
    """An optional field is left out, not sent as null (the OpenAPI document says so)."""
    if key in body and body[key] is None:
        raise RequestError(422, "invalid_body", f"'{key}' is null; leave it out instead")


def _text(body: dict[str, Any], key: str, *, required: bool = False) -> str | None:
    _null(body, key)
    value = body.get(key)
    if value is None:
        if required:
            raise RequestError(422, "invalid_body", f"'{key}' is required (a string)")
        return None
    if not isinstance(value, str) or _BLANK.fullmatch(value):
        raise RequestError(422, "invalid_body",
                           f"'{key}' must be a non-empty string, got {value!r:.80}")
    _encodable(value, f"'{key}'")
    return value


def _encodable(value: str, what: str) -> None:
    """422 naming ``what`` for a string that is not valid Unicode text (a lone surrogate,
    JSON ``"\\ud800"``): nothing downstream can encode it."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise RequestError(422, "invalid_body",
                           f"{what} is not valid Unicode text: a lone surrogate "
                           f"{value[exc.start]!r} at position {exc.start}") from None


def _plan(body: dict[str, Any]) -> list[str] | None:
    _null(body, "plan")
    plan = body.get("plan")
    if plan is None:
        return None
    if (not isinstance(plan, list) or not plan
            or not all(isinstance(s, str) and s for s in plan)):
        raise RequestError(422, "invalid_body",
                           "'plan' must be a non-empty list of skill names (strings)")
    for index, name in enumerate(plan):
        _encodable(name, f"'plan'[{index}]")
    return plan


def _percentage(body: dict[str, Any], *, required: bool) -> float | None:
    _null(body, "percentage")
    value = body.get("percentage")
    if value is None:
        if required:
            raise RequestError(422, "invalid_body",
                               "'percentage' is required: a number from 0 to 100")
        return None
    if (isinstance(value, bool) or not isinstance(value, (int, float))
            or not math.isfinite(value) or not 0 <= value <= 100):
        raise RequestError(422, "invalid_body",
                           f"'percentage' must be a number from 0 to 100, got {value!r:.80}")
    return float(value)


async def _optional_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        raise RequestError(400, "invalid_json",
                           f"the request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise RequestError(422, "invalid_body", "the request body must be a JSON object")
    return body


def _who(request: Request) -> str:
    client = request.client
    return f"admin token holder at {client.host if client else 'unknown address'}"
