"""LLM-as-a-Planner: a chat model chooses the skills, SOF checks its choice.

The planner asks the LLM backend registered as ``openai`` (the OpenAI-compatible client of
the response plugin, configured by ``SOF_LLM_BASE_URL``, ``SOF_LLM_MODEL``,
``SOF_LLM_API_KEY``) through the registry's ``llm_backends``: the core imports no plugin.
The prompt lists the registered skills the tool policy allows, with their descriptions and
declared inputs and outputs; the reply must be the JSON object
``{"plan": [skill names], "reasoning": "..."}``. A JSON-schema ``response_format`` is
requested (and dropped for servers that refuse it); the object is also accepted inside
prose or a code fence.

A reply that is not that object, names unknown or denied skills, or fails validation gets
one repair round that quotes the problems; if the second reply is no better, or the call
fails or runs out of time or tokens, the rules planner plans instead and the fallback is
recorded (``PlanResult.fallbacks``: the report, the trace and the metrics show it).

Options (``planner_options.llm``): ``backend`` ("openai"), ``timeout`` (seconds for the
whole planning, both rounds: 30), ``max_tokens`` (the token budget of both rounds: 800),
``base_url``/``model``/``api_key`` (win over the ``SOF_LLM_*`` variables, which win over
``plugin_settings.response``), ``response_format`` ("json_schema", "json_object" or "none"),
``max_response_bytes`` (1 MiB).
"""

from __future__ import annotations

import json
import math
import os
import re
import threading
import time
from collections.abc import Mapping, Sequence
from types import SimpleNamespace
from typing import Any

from sof_core.errors import ConfigError, SOFError
from sof_core.planning.optimise import DEFAULT_GOALS, optimise
from sof_core.planning.planners import PlanningContext, planner_options
from sof_core.planning.result import Change, Fallback, PlanResult
from sof_core.planning.rules import RulesPlanner
from sof_core.security.policy import ToolPolicy

DEFAULTS: dict[str, Any] = {
    "backend": "openai", "timeout": 30.0, "max_tokens": 800, "base_url": None,
    "model": None, "api_key": None, "response_format": "json_schema",
    "max_response_bytes": 1024 * 1024,
}
_DESCRIPTION_CHARS = 200
_QUOTED_CHARS = 300

#: The JSON schema of a reply (sent as ``response_format`` where the server supports it).
REPLY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "plan": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        "reasoning": {"type": "string"},
    },
    "required": ["plan", "reasoning"],
    "additionalProperties": False,
}

SYSTEM_PROMPT = (
    "You are the planner of SOF, an orchestration framework. Choose the skills that answer "
    "the user's query from the registered skills listed below, and nothing else. SOF runs a "
    "skill after the skills whose outputs it reads, so only the choice matters, not the "
    "order. The plan must produce final_response. Output marked untrusted must pass a skill "
    "that vets content before the response. Choose no skill the query does not need. "
    'Reply with one JSON object only: {"plan": ["SkillName", ...], "reasoning": "one or two '
    'sentences"}.'
)


class LLMPlanError(SOFError):
    """The LLM's plan could not be used (the planner then falls back to rules)."""


class LLMPlanner:
    """Asks a chat model for the plan; validated, repaired once, else the rules planner."""

    name = "llm"
    #: It calls a model (a backend from a plugin): asked in a thread the planning service
    #: gives up on if a backend ignores the deadline (``service.OWN_DEADLINE_GRACE``).
    calls_out = True

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._backends: dict[Any, Any] = {}
        #: Base URLs whose server refused ``response_format`` (it is not sent again).
        self._no_format: set[str] = set()

    # --- planning ------------------------------------------------------------------------

    def plan(self, query: str, context: PlanningContext) -> PlanResult:
        options = llm_settings(context.config)
        deadline = time.monotonic() + options["timeout"]
        try:
            return self._plan(query, context, options, deadline)
        except SOFError as exc:
            reason = str(exc)
        except KeyboardInterrupt:  # the user's: it stops the host
            raise
        except BaseException as exc:  # a backend from a plugin may raise anything
            reason = f"{type(exc).__name__}: {exc}"
        result = RulesPlanner().plan(query, context)
        result.fallbacks.insert(0, Fallback(self.name, "rules", reason))
        return result

    def _plan(self, query: str, context: PlanningContext, options: dict[str, Any],
              deadline: float) -> PlanResult:
        entries = list(context.registry.skills())
        denied = {d.skill: d.message
                  for d in ToolPolicy.from_config(context.config).denials(entries)}
        allowed = [e for e in entries if e.spec.name not in denied]
        specs = {e.spec.name: e.spec for e in entries}
        messages = [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": skills_prompt(allowed, query)},
        ]
        budget = [int(options["max_tokens"])] * 2  # what is left, and the whole budget
        backend = self._backend(context, options)
        reply = self._ask(backend, messages, deadline, budget, options)
        plan, reasoning, problems = self._check(reply, specs, denied, context)
        changes: list[Change] = []
        if problems:
            first = "; ".join(problems)
            if budget[0] <= 0:
                raise LLMPlanError(f"the LLM's plan is unusable ({first}) and the token "
                                   f"budget (max_tokens {options['max_tokens']}) is spent")
            messages += [
                {"role": "assistant", "content": reply[:4000]},
                {"role": "user", "content": (
                    "That reply cannot be used: " + first + ". Reply again with only the "
                    'JSON object {"plan": [...], "reasoning": "..."}, using only the skills '
                    "listed.")},
            ]
            reply = self._ask(backend, messages, deadline, budget, options)
            plan, reasoning, problems = self._check(reply, specs, denied, context)
            if problems:
                raise LLMPlanError(
                    f"the LLM's plan is unusable after one repair round: {'; '.join(problems)}"
                    f" (first reply: {first})")
            changes.append(Change("repaired", "(plan)", f"first reply rejected: {first}"))
        goals = DEFAULT_GOALS
        ordered, stages, optimised = optimise(plan, specs, goals=goals)
        why = f"chosen by the LLM: {_clip(reasoning)}" if reasoning else "chosen by the LLM"
        return PlanResult(plan=ordered, planner=self.name, reasons=dict.fromkeys(ordered, why),
                          reasoning=reasoning, stages=stages, changes=changes + optimised)

    def _check(self, reply: str, specs: Mapping[str, Any], denied: Mapping[str, str],
               context: PlanningContext) -> tuple[list[str], str, list[str]]:
        """The plan and reasoning in ``reply``, and every problem found with them."""
        data, problem = parse_reply(reply)
        if data is None:
            return [], "", [problem]
        plan, reasoning = data["plan"], data.get("reasoning", "")
        problems = []
        unknown = [n for n in plan if n not in specs]
        if unknown:
            problems.append(f"unknown skill(s) {unknown}: use only the skills listed")
        problems += [f"{n}: {denied[n]}" for n in dict.fromkeys(plan) if n in denied]
        if problems:
            return plan, reasoning, problems
        unique = list(dict.fromkeys(plan))
        if not any(set(DEFAULT_GOALS) & set(specs[n].output_keys) for n in unique):
            problems.append("no skill in the plan produces final_response")
        problems += [f"[{p.code}] {p}" for p in context.validate_plan(unique)]
        return plan, reasoning, problems  # duplicates kept: the optimiser reports them

    # --- the model -----------------------------------------------------------------------

    def _backend(self, context: PlanningContext, options: dict[str, Any]) -> Any:
        name = options["backend"]
        entry = context.registry.component("llm_backends", name)
        if entry is None:
            known = sorted(context.registry.components("llm_backends"))
            raise ConfigError(
                f"the LLM planner needs the LLM backend {name!r} (planner_options.llm.backend)"
                f", which is not installed; installed backends: {known or 'none'} (sof-response"
                " provides 'openai')", key="planner_options")
        settings = _server_settings(context.config, options)
        if not settings["base_url"] and _needs_server(name, entry.obj):
            raise ConfigError(
                "the LLM planner has no server: set SOF_LLM_BASE_URL (or "
                "planner_options.llm.base_url), e.g. http://127.0.0.1:11434/v1",
                key="planner_options")
        key = (name, id(entry.obj), json.dumps(settings, sort_keys=True, default=str))
        with self._lock:
            backend = self._backends.get(key)
            if backend is None:
                proto = entry.obj() if isinstance(entry.obj, type) else entry.obj
                with_settings = getattr(proto, "with_settings", None)
                if not callable(with_settings):
                    backend = proto
                else:
                    backend = with_settings(SimpleNamespace(
                        **settings, timeout=options["timeout"], temperature=0.0,
                        max_tokens=int(options["max_tokens"]),
                        max_response_bytes=int(options["max_response_bytes"])))
                client = getattr(backend, "client", None)
                if callable(client):
                    client()  # made now, so the per-call copies share one pool
                if len(self._backends) > 8:
                    self._backends.clear()
                self._backends[key] = backend
        return backend

    def _ask(self, backend: Any, messages: list[dict[str, str]], deadline: float,
             budget: list[int], options: dict[str, Any]) -> str:
        """One chat completion within the deadline and the remaining token budget."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise LLMPlanError(f"no time left for the LLM planner (timeout {options['timeout']}"
                               "s, planner_options.llm.timeout)")
        url = str(getattr(backend, "base_url", "") or "")
        wanted = _response_format(options["response_format"])
        own = getattr(backend, "response_format", _MISSING) is not _MISSING
        use_format = wanted is not None and own and url not in self._no_format
        try:
            result = self._generate(backend, messages, deadline, budget,
                                    wanted if use_format else None)
        except SOFError as exc:
            status = getattr(exc, "status", None)
            if not (use_format and isinstance(status, int) and 400 <= status < 500
                    and status not in (401, 403)):
                raise LLMPlanError(f"the LLM call failed: {exc}") from exc
            with self._lock:
                self._no_format.add(url)  # the server refuses response_format
            try:
                result = self._generate(backend, messages, deadline, budget, None)
            except SOFError as again:
                raise LLMPlanError(f"the LLM call failed: {again}") from again
        used = _tokens(result)
        budget[0] -= used
        return str(getattr(result, "text", result) or "")

    def _generate(self, backend: Any, messages: list[dict[str, str]], deadline: float,
                  budget: list[int], response_format: dict[str, Any] | None) -> Any:
        if hasattr(backend, "__dict__") and (
                hasattr(backend, "response_format") or hasattr(backend, "max_tokens")):
            # A shallow copy per call: concurrent plans never see each other's format or
            # budget, and share the backend's pooled HTTP client (made once, below).
            clone = object.__new__(type(backend))  # not copy.copy: __getstate__ drops the
            clone.__dict__.update(backend.__dict__)  # client a pickled copy must not carry
            backend = clone
            if hasattr(backend, "response_format"):
                backend.response_format = response_format
            if hasattr(backend, "max_tokens"):
                backend.max_tokens = max(1, min(budget[0], budget[1]))
        if getattr(backend, "uses_deadline", False):
            return backend.generate(messages, stream=False, deadline=deadline)
        return backend.generate(messages, stream=False)


_MISSING = object()


def _needs_server(name: str, backend: Any) -> bool:
    """Whether backend ``name`` needs ``base_url``: the bundled ``openai`` client does, and
    so does a backend that says so (``needs_base_url = True``); a plugin's backend that
    runs the model itself is asked without one."""
    declared = getattr(backend, "needs_base_url", None)
    if isinstance(declared, bool):
        return declared
    return name == "openai"


def _response_format(kind: str) -> dict[str, Any] | None:
    if kind == "json_schema":
        return {"type": "json_schema",
                "json_schema": {"name": "sof_plan", "strict": True, "schema": REPLY_SCHEMA}}
    if kind == "json_object":
        return {"type": "json_object"}
    return None


def _tokens(result: Any) -> int:
    """The completion tokens a reply spent, as the server reports them; a count that is
    negative, not finite or not a number is ignored (0): it never enlarges the budget."""
    usage = getattr(result, "usage", None) or {}
    completion = usage.get("completion_tokens") if isinstance(usage, Mapping) else None
    for count in (completion, getattr(result, "tokens", 0)):
        if isinstance(count, (int, float)) and _count(count):
            return math.ceil(count)
    return 0


def _count(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value) and value >= 0)


def llm_settings(config: Any) -> dict[str, Any]:
    """``planner_options.llm`` over the defaults; ``ConfigError`` naming a bad option."""
    options = planner_options(config, "llm")
    unknown = sorted(set(options) - set(DEFAULTS))
    if unknown:
        raise ConfigError(f"unknown option(s) {unknown} in planner_options.llm; known: "
                          + ", ".join(DEFAULTS), key="planner_options")
    merged = {**DEFAULTS, **options}
    for key in ("timeout", "max_tokens", "max_response_bytes"):
        value = merged[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or (
            value == float("inf")):
            raise ConfigError(f"planner_options.llm.{key} must be a positive number, got "
                              f"{value!r}", key="planner_options")
    if merged["response_format"] not in ("json_schema", "json_object", "none"):
        raise ConfigError("planner_options.llm.response_format must be json_schema, "
                          f"json_object or none, got {merged['response_format']!r}",
                          key="planner_options")
    return merged


def _server_settings(config: Any, options: Mapping[str, Any]) -> dict[str, Any]:
    """base_url, model, api_key: planner options > ``SOF_LLM_*`` > plugin_settings.response."""
    response = dict((getattr(config, "plugin_settings", None) or {}).get("response", {}))
    out = {}
    for key, var in (("base_url", "SOF_LLM_BASE_URL"), ("model", "SOF_LLM_MODEL"),
                     ("api_key", "SOF_LLM_API_KEY")):
        out[key] = options.get(key) or os.environ.get(var, "").strip() or response.get(key)
    return out


def skills_prompt(entries: Sequence[Any], query: str) -> str:
    """The registered skills, one line each with inputs and outputs, then the query."""
    lines = ["Registered skills (name: description; inputs, ? = optional; outputs):"]
    for entry in entries:
        spec = entry.spec
        inputs = [*spec.required_inputs, *(f"{k}?" for k in spec.optional_inputs)]
        notes = []
        if spec.requires_external_access:
            notes.append("output untrusted")
        if getattr(spec, "vets_content", False):
            notes.append("vets content")
        extra = f" [{', '.join(notes)}]" if notes else ""
        lines.append(f"- {spec.name}: {_clip(spec.description, _DESCRIPTION_CHARS)}; inputs: "
                     f"{', '.join(inputs) or '-'}; outputs: {', '.join(spec.output_keys)}{extra}")
    lines += ["", f"Query: {query}"]
    return "\n".join(lines)


_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.S)


def parse_reply(text: str) -> tuple[dict[str, Any] | None, str]:
    """The reply's ``{"plan": [...], "reasoning": "..."}`` object, or None and what is wrong
    (the object may stand alone, in a code fence, or inside prose)."""
    text = (text or "").strip()
    if not text:
        return None, "the reply was empty; it must be a JSON object"
    candidates: list[Any] = []
    try:
        candidates.append(json.loads(text))
    except ValueError:
        decoder = json.JSONDecoder()
        for block in [*_FENCE.findall(text), text]:
            for start in (i for i, c in enumerate(block) if c == "{"):
                try:
                    value, _ = decoder.raw_decode(block, start)
                except ValueError:
                    continue
                candidates.append(value)
                if isinstance(value, dict) and "plan" in value:
                    break
    objects = [c for c in candidates if isinstance(c, dict) and "plan" in c]
    if not objects:
        return None, (f"the reply is not a JSON object with a \"plan\" list (it began "
                      f"{_clip(text, 80)!r})")
    data = objects[0]
    plan = data.get("plan")
    if not isinstance(plan, list) or not plan or not all(isinstance(n, str) for n in plan):
        return None, f"\"plan\" must be a non-empty list of skill names, got {_clip(repr(plan))}"
    reasoning = data.get("reasoning", "")
    if not isinstance(reasoning, str):
        return None, "\"reasoning\" must be a string"
    return {"plan": [n.strip() for n in plan], "reasoning": reasoning.strip()}, ""


def _clip(text: str, limit: int = _QUOTED_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
