"""ResponseGenerationSkill: the last step of a plan, turning evidence into a cited answer.

It reads the passages MemoryRetrievalSkill found, the disagreements ConflictDetectorSkill
spotted, any tool results, a calculator's result (``calculation_result``,
``calculation_steps``) and the external content ContentVettingSkill let through
(``vetted_content``), asks the configured LLM backend (the extractive one by default), then
makes sure the answer names unresolved conflicts, says which sources were withheld, and lists
its sources, and rates its own confidence from the evidence.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sof_core import UIF, BaseSkillModule, SOFError
from sof_response.controllers import StopController
from sof_response.errors import (
    LLMBackendError,
    LLMEmptyAnswerError,
    LLMTimeoutError,
    ResponseConfigError,
)
from sof_response.extractive import ExtractiveBackend
from sof_response.openai_backend import OpenAICompatibleBackend, core_deadline
from sof_response.protocols import (
    GenerationContext,
    GenerationController,
    GenerationResult,
    LLMBackend,
    Message,
)
from sof_response.settings import PLUGIN, ResponseSettings

if TYPE_CHECKING:
    from sof_core import Registry
    from sof_core.config import SOFConfig
    from sof_response.evidence import Evidence

# The evidence and prompt modules are imported when the skill runs: registering and
# configuring it, which every process that loads the plugin does, needs neither.

log = logging.getLogger("sof.response")

#: What a calculator writes (CalculatorTool, and SAM's calculator skill).
CALCULATION_KEYS = ("calculation_result", "calculation_steps")
#: Share of the skill's remaining time kept back from the model, so that when the model is cut
#: at its deadline the extractive answer is still written before the skill's own deadline...
RESERVE_SHARE = 0.1
#: ...but never more than this many seconds.
MAX_RESERVE = 1.0


def builtin_backends() -> list[Any]:
    """The backends this plugin ships (also what an unconfigured skill can choose from)."""
    return [ExtractiveBackend(), OpenAICompatibleBackend()]


def builtin_controllers() -> list[Any]:
    return [StopController()]


class ResponseGenerationSkill(BaseSkillModule):
    """Answers the query from retrieved memory, tool results and known conflicts."""

    skill_name = "ResponseGenerationSkill"
    skill_version = "1.0.0"
    skill_description = (
        "Writes the final answer from retrieved passages, tool results and conflicts, with "
        "citations, using the configured LLM backend or an extractive fallback"
    )
    skill_category = "response"
    required_inputs = ["input_query"]
    optional_inputs = [
        ("memory_results", list),
        ("conflicts", list),
        ("tool_results", list),
        "calculation_result",
        "calculation_steps",
        "vetted_content",
        "user_context",
        "active_profile",
    ]
    output_keys = [
        ("final_response", str),
        ("confidence_score", float),
        ("response_context", dict),
    ]
    can_run_parallel = True
    estimated_execution_time = 2.0
    # None: the configured ``skill_timeout`` (``SOF_SKILL_TIMEOUT``) is this skill's limit,
    # as for any skill that sets none; the model's deadline comes from it, less a reserve in
    # which the extractive fallback answers. A slow local model needs a larger skill_timeout.
    max_execution_time = None

    def __init__(
        self,
        backend: LLMBackend | None = None,
        *,
        controller: GenerationController | None = None,
        settings: ResponseSettings | Mapping[str, Any] | None = None,
        config: SOFConfig | None = None,
        registry: Registry | None = None,
    ) -> None:
        """``backend``/``controller`` objects win over names in settings; ``settings`` (a
        mapping of setting overrides or a complete ``ResponseSettings``) wins over config
        and environment. ``config``/``registry`` are normally given by ``sof_configure``."""
        super().__init__()
        if backend is not None:
            _check_backend(backend, "the backend= argument")
        self._backend = backend
        self._controller = controller
        self._explicit = settings
        self._plugin_settings: dict[str, Any] = {}
        self._skill_timeout: float | None = None
        self._registry: Registry | None = None
        self._lock = threading.Lock()
        self._configured: dict[tuple[str, str, int, ResponseSettings], Any] = {}
        self._builtins: dict[str, dict[str, Any]] = {}
        if config is not None or registry is not None:
            self.configure(config, registry)

    def __getstate__(self) -> dict[str, Any]:
        """Pickle settings, not live state, so executors such as sof-dask can ship the skill.

        The lock, the registry and the per-settings component cache stay behind; the copy
        builds its components again (installed ones named in settings fall back to the
        built-ins when no registry is reachable there).
        """
        state = dict(self.__dict__)
        for name in ("_lock", "_registry", "_configured", "_builtins", "logger"):
            state.pop(name, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._registry = None
        self._configured = {}
        self._builtins = {}
        self._lock = threading.Lock()
        self.logger = logging.getLogger(f"sof.skill.{self.skill_name}")

    def configure(self, config: SOFConfig | None, registry: Registry | None) -> None:
        """Take settings from ``config`` and choose components from ``registry``."""
        if config is not None:
            self._plugin_settings = config.settings_for(PLUGIN)
            tpv = getattr(config, "use_tpv_control", None)  # the top-level switch
            if tpv is not None and "use_tpv_control" not in self._plugin_settings:
                self._plugin_settings = {**self._plugin_settings, "use_tpv_control": tpv}
            self._skill_timeout = config.skill_timeout
        if registry is not None:
            self._registry = registry
        with self._lock:
            self._configured.clear()

    # --- choosing components ---------------------------------------------------------------

    def settings(self) -> ResponseSettings:
        """The effective settings: defaults < plugin_settings < environment < arguments."""
        if isinstance(self._explicit, ResponseSettings):
            return self._explicit
        return ResponseSettings.resolve(self._plugin_settings, **dict(self._explicit or {}))

    def select_backend(self, settings: ResponseSettings) -> LLMBackend:
        """The constructor's backend, else the installed backend named by ``backend``."""
        if self._backend is not None:
            return self._backend
        obj = self._component("llm_backends", settings.backend, builtin_backends, settings)
        _check_backend(obj, f"backend {settings.backend!r}")
        return obj  # type: ignore[no-any-return]

    def select_controller(self, settings: ResponseSettings) -> GenerationController | None:
        """A fresh controller for one generation, or None when TPV control is off."""
        if self._controller is not None:
            proto: Any = self._controller
        elif settings.use_tpv_control:
            proto = self._component(
                "generation_controllers", settings.controller, builtin_controllers, settings
            )
        else:
            return None
        if not callable(getattr(proto, "on_token", None)):
            raise ResponseConfigError(
                f"generation controller {getattr(proto, 'name', proto)!r} has no "
                "on_token(token, text_so_far) method",
                key=f"plugin_settings.{PLUGIN}.controller",
            )
        fresh = getattr(proto, "fresh", None)
        return fresh() if callable(fresh) else proto  # type: ignore[no-any-return]

    def _origin(self, backend: LLMBackend) -> str:
        """Where a misbehaving backend came from, for its author: the plugin that registered
        it, or the skill's constructor."""
        if backend is self._backend:
            return f"the backend passed to {self.skill_name}(backend=...)"
        entry = self._registry.component("llm_backends", backend.name) if self._registry else None
        return f"a backend of plugin {entry.plugin!r}" if entry is not None else (
            f"a backend of plugin {PLUGIN!r}")

    def _component(
        self, kind: str, name: str, builtins: Any, settings: ResponseSettings
    ) -> Any:
        if self._registry is not None:
            available = {n: e.obj for n, e in self._registry.components(kind).items()}
        else:  # not configured by sof_configure: this plugin's own components, made once
            with self._lock:
                if kind not in self._builtins:
                    self._builtins[kind] = {c.name: c for c in builtins()}
                available = self._builtins[kind]
        obj = available.get(name)
        if obj is None:
            what = "LLM backend" if kind == "llm_backends" else "generation controller"
            setting = "backend" if kind == "llm_backends" else "controller"
            env = "SOF_RESPONSE_BACKEND" if kind == "llm_backends" else "SOF_TPV_CONTROLLER"
            raise ResponseConfigError(
                f"unknown {what} {name!r} (setting {setting!r} / {env}); installed: "
                f"{sorted(available) or 'none'}. Pick one of those or install the plugin "
                f"that provides {name!r}",
                key=f"plugin_settings.{PLUGIN}.{setting}",
            )
        key = (kind, name, id(obj), settings)
        with self._lock:
            configured = self._configured.get(key)
            if configured is None:
                configured = obj() if isinstance(obj, type) else obj
                with_settings = getattr(configured, "with_settings", None)
                if callable(with_settings):
                    configured = with_settings(settings)
                if len(self._configured) > 16:
                    self._configured.clear()
                self._configured[key] = configured
            return configured

    # --- running ---------------------------------------------------------------------------

    def generation_deadline(self, now: float) -> float | None:
        """When the model must be done (``time.monotonic()``), or None for no skill limit.

        The skill's deadline is the sooner of ``sof_core.current_deadline()`` (the engine's
        deadline for this step, where the core offers it) and ``now`` plus the skill's own
        limit (``max_execution_time``, else the configured ``skill_timeout``). The model gets
        that time less a reserve (``RESERVE_SHARE`` of it, at most ``MAX_RESERVE`` seconds) in
        which the extractive fallback can still answer. The backend's own ``timeout`` may end
        the generation sooner still.
        """
        candidates: list[float] = []
        core = core_deadline()
        if core is not None:
            candidates.append(core)
        limit = self.max_execution_time
        if limit is None:
            limit = self._skill_timeout
        if limit is not None:
            candidates.append(now + limit)
        if not candidates:
            return None
        end = min(candidates)
        return end - min(MAX_RESERVE, max(0.0, end - now) * RESERVE_SHARE)

    def execute(self, uif: UIF) -> UIF:
        from sof_response.evidence import build_evidence, jsonable
        from sof_response.prompt import build_messages, finish_answer, render_prompt

        started_at = time.monotonic()
        deadline = self.generation_deadline(started_at)
        settings = self.settings()
        data = uif.intermediate_data
        evidence = build_evidence(
            uif.input_query,
            data.get("memory_results"),
            data.get("tool_results"),
            data.get("conflicts"),
            user_context=uif.user_context,
            active_profile=uif.active_profile,
            max_passages=settings.max_passages,
            max_chars=settings.max_passage_chars,
            calculation={k: data[k] for k in CALCULATION_KEYS if k in data},
            vetted_content=data.get("vetted_content", uif.vetted_content),
        )
        backend = self.select_backend(settings)
        messages = build_messages(evidence, settings.system_prompt)
        controller = self.select_controller(settings)
        stream = settings.stream or controller is not None
        started = time.perf_counter()
        fallback: LLMBackendError | None = None
        used = backend
        try:
            result = self._generate(
                backend, messages, evidence, stream, controller, settings, deadline
            )
        except LLMBackendError as exc:
            if not settings.fallback_to_extractive or isinstance(backend, ExtractiveBackend):
                raise
            fallback = exc
            used = ExtractiveBackend(settings.max_sentences)
            uif.add_warning(f"{self.skill_name}: {exc}; answered extractively instead")
            log.warning("LLM backend failed, answering extractively: %s", exc)
            controller = self.select_controller(settings)
            result = self._generate(used, messages, evidence, stream, controller, settings, None)
        latency_ms = round((time.perf_counter() - started) * 1000, 3)

        extractive = bool(result.metadata.get("extractive")) or isinstance(used, ExtractiveBackend)
        labels = self._labels(evidence, result, controller, extractive, backend, fallback)
        text, cited = finish_answer(result.text, evidence, labels=labels)
        confidence = self._confidence(evidence, result, cited, extractive)

        uif.final_response = text
        uif.confidence_score = confidence
        uif.intermediate_data["response_context"] = {
            "query": evidence.query,
            "messages": [dict(m) for m in messages],
            "prompt": render_prompt(messages),
            "sources": [s.to_dict() for s in evidence.sources],
            "cited": cited,
            "conflicts": [c.to_dict() for c in evidence.conflicts],
            "dropped_passages": evidence.dropped,
            "withheld": [w.to_dict() for w in evidence.withheld],
            "sanitised": [
                {"number": number, "detectors": list(detectors)}
                for number, detectors in evidence.sanitised
            ],
            "calculation_note": evidence.calculation_note,
            "user_context": jsonable(evidence.user_context),
            "active_profile": evidence.active_profile,
            "generation": {
                "backend": used.name,
                "requested_backend": backend.name,
                "model": result.model or getattr(used, "model", None),
                "extractive": extractive,
                "streamed": bool(result.metadata.get("streamed", stream)),
                "controller": getattr(controller, "name", None),
                "stopped_by_controller": result.stopped_by_controller,
                "controller_stop_reason": getattr(controller, "stop_reason", None)
                if result.stopped_by_controller else None,
                "controller_error": result.metadata.get("controller_error"),
                "finish_reason": result.finish_reason,
                "tokens": result.tokens,
                "usage": dict(result.usage),
                "latency_ms": latency_ms,
                "fallback_from": backend.name if fallback else None,
                "fallback_error": str(fallback) if fallback else None,
                "fallback_reason": getattr(fallback, "reason", "error") if fallback else None,
                "deadline_s": _deadline_seconds(result, fallback),
            },
        }
        uif.add_log_entry(
            f"answered with backend {used.name!r} ({result.tokens} tokens, "
            f"confidence {confidence:.2f}, {len(cited)} source(s) cited)",
            self.skill_name,
        )
        return uif

    def _generate(
        self,
        backend: LLMBackend,
        messages: Sequence[Message],
        evidence: Evidence,
        stream: bool,
        controller: GenerationController | None,
        settings: ResponseSettings,
        deadline: float | None,
    ) -> GenerationResult:
        guarded = _GuardedController(controller) if controller is not None else None
        if guarded is not None:
            guarded.on_start(
                GenerationContext(
                    backend=backend.name,
                    model=getattr(backend, "model", None),
                    query=evidence.query,
                    messages=messages,
                    stream=stream,
                    settings=settings.public(),
                )
            )
        kwargs: dict[str, Any] = {"evidence": evidence} if _wants_evidence(backend) else {}
        if getattr(backend, "uses_deadline", False) is True:
            kwargs["deadline"] = deadline
        try:
            result = backend.generate(messages, stream=stream, controller=guarded, **kwargs)
        except SOFError:  # typed by the backend (LLMBackendError and kin): kept as raised
            raise
        except Exception as exc:  # a backend's bug: the extractive fallback still answers
            raise LLMBackendError(
                f"generate() raised {type(exc).__name__}: {exc} ({self._origin(backend)}; "
                "a backend must raise sof_response.LLMBackendError subclasses)",
                backend=backend.name,
            ) from exc
        if not isinstance(result, GenerationResult) or not isinstance(result.text, str):
            raise LLMBackendError(
                f"generate() returned {type(result).__name__} ({self._origin(backend)}); "
                "it must return sof_response.GenerationResult",
                backend=backend.name,
            )
        if (
            not result.text.strip()
            and not result.stopped_by_controller
            and not isinstance(backend, ExtractiveBackend)
        ):
            raise _empty_answer(backend, result)
        if guarded is not None:
            guarded.on_end(result)
        return result

    def _labels(
        self,
        evidence: Evidence,
        result: GenerationResult,
        controller: GenerationController | None,
        extractive: bool,
        requested: LLMBackend,
        fallback: LLMBackendError | None,
    ) -> list[str]:
        from sof_response.prompt import EXTRACTIVE_LABEL

        labels: list[str] = []
        if not evidence.sources and not extractive:
            labels.append(
                "(No stored memory matched this question; this answer comes from the "
                "language model alone.)"
            )
        if result.stopped_by_controller:
            reason = getattr(controller, "stop_reason", None)
            name = getattr(controller, "name", "controller")
            labels.append(
                f"(answer cut short by generation controller {name!r}"
                + (f": {reason})" if reason else ")")
            )
        if fallback is not None:
            labels.append(
                f"(extractive answer: language model {requested.name!r} failed with "
                f"{type(fallback).__name__})"
            )
        elif extractive:
            labels.append(EXTRACTIVE_LABEL)
        return labels

    def _confidence(
        self,
        evidence: Evidence,
        result: GenerationResult,
        cited: list[int],
        extractive: bool,
    ) -> float:
        """How far the evidence supports the answer, in [0, 1] (no model self-assessment).

        Coverage is the share of the question's content words found in the cited sources;
        retrieval is their mean retrieval score. Conflicts, early stops and uncited model
        answers lower it; no evidence at all keeps it low.
        """
        from sof_response.evidence import normalise_score, query_terms, terms

        if not evidence.sources:
            return 0.05 if extractive else 0.2
        used = [s for n in cited if (s := evidence.by_number(n)) is not None]
        if not used:
            used = list(evidence.sources[:3])
        if any(s.kind == "calculation" for s in used):
            return 0.95  # an exact calculation, not a retrieval guess
        wanted = query_terms(evidence.query)
        found: set[str] = set()
        for source in used:
            found |= terms(source.text)
        coverage = len(wanted & found) / len(wanted) if wanted else 0.0
        retrieval = sum(
            normalise_score(s.score) if s.kind == "memory" else 0.5 for s in used
        ) / len(used)
        value = 0.1 + 0.5 * coverage + 0.35 * retrieval
        if not cited:
            value *= 0.5 if extractive else 0.8
        if evidence.conflicts:
            value *= 0.75
        if result.stopped_by_controller or result.finish_reason == "length":
            value *= 0.7
        if extractive:
            value *= 0.9
        return round(min(1.0, max(0.0, value)), 3)


class _GuardedController:
    """Runs a third-party controller so that its bugs end control, not the answer."""

    def __init__(self, inner: GenerationController) -> None:
        self.inner = inner
        self.name = getattr(inner, "name", type(inner).__name__)
        self.error: str | None = None

    def _call(self, method: str, *args: Any) -> Any:
        if self.error is not None:
            return None
        function = getattr(self.inner, method, None)
        if not callable(function):
            return None
        try:
            return function(*args)
        except Exception as exc:
            self.error = f"{self.name}.{method} raised {type(exc).__name__}: {exc}"
            log.warning("generation controller disabled: %s", self.error)
            return None

    def on_start(self, context: GenerationContext) -> None:
        self._call("on_start", context)

    def on_token(self, token: str, text_so_far: str) -> bool:
        return self._call("on_token", token, text_so_far) is not False

    def on_end(self, result: GenerationResult) -> None:
        self._call("on_end", result)
        if self.error is not None:
            result.metadata["controller_error"] = self.error


def _check_backend(obj: Any, what: str) -> None:
    if not isinstance(getattr(obj, "name", None), str) or not callable(
        getattr(obj, "generate", None)
    ):
        raise ResponseConfigError(
            f"{what} ({obj!r}) is not an LLM backend: it needs a string 'name' and "
            "generate(messages, *, stream, controller)",
            key=f"plugin_settings.{PLUGIN}.backend",
        )


def _empty_answer(backend: LLMBackend, result: GenerationResult) -> LLMEmptyAnswerError:
    """The error for a model answer with no text (a controller's early stop aside)."""
    what = "no text at all" if not result.text else "nothing but whitespace"
    finish = (
        f"finish_reason {result.finish_reason!r}" if result.finish_reason else "no finish_reason"
    )
    url = result.metadata.get("url")
    return LLMEmptyAnswerError(
        f"the answer was empty ({what}; {finish}); check that the model is loaded and "
        "answers chat requests, and that max_tokens leaves room for an answer",
        backend=backend.name,
        url=url if isinstance(url, str) else None,
    )


def _deadline_seconds(result: GenerationResult, fallback: LLMBackendError | None) -> Any:
    """Seconds the model was given, when known (its answer or its cut says so)."""
    if fallback is None:
        return result.metadata.get("deadline_s")
    return fallback.limit if isinstance(fallback, LLMTimeoutError) else None


def _wants_evidence(backend: Any) -> bool:
    return getattr(backend, "uses_evidence", False) is True


__all__ = ["ResponseGenerationSkill", "builtin_backends", "builtin_controllers"]
