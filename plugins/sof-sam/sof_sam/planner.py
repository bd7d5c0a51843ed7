"""SAM's ``DynamicPlanner`` on SOF's planners.

A plan comes from SOF's ``goal`` planner (the minimal set of registered skills producing
``final_response``, optional inputs' producers included; where a key has several producers,
the skill registered with ``register_skill`` wins over an installed plugin's, as SAM plans
only the skills it was given), or, when the graph cannot produce one, from SOF's
``static`` planner (the configured ``default_plan``). Plans are cached per
query, profile and registry for SAM's ``plan_cache_ttl``. SAM's LLM planner, reasoning
curriculum and test-time-training detection have no counterpart in SOF; the curriculum switch
is accepted and does nothing (see the README).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sof_core
from sof_sam._engine import flag, load_sam_config, sam_engine

logger = logging.getLogger(__name__)

#: Plans kept in the cache at most; the oldest is dropped first.
MAX_CACHE_ENTRIES = 1024
#: SAM's confidences: a plan from the graph, the default plan, a plan after an error.
_GOAL_CONFIDENCE = 0.8
_DEFAULT_CONFIDENCE = 0.6
_ERROR_CONFIDENCE = 0.3
_SELF_REFLECT_SKILL = "AutonomousFactualCorrectionSkill"
_DISSONANCE = ("conflicting", "contradictory", "uncertain", "unclear", "disputed")
# SAM's keyword rules for its rule-based fallback plan (``_generate_fallback_plan``).
_FINANCE_TERMS = (
    "market cap", "market capitalization", "stock price", "share price", "financial data",
    "revenue", "earnings", "valuation", "worth", "cost", "price", "value", "trading",
    "current price", "today", "stock", "shares", "equity", "investment", "finance",
    "financial",
)
_NEWS_TERMS = ("news", "breaking", "latest", "recent", "current events", "headlines",
               "updates", "developments", "happening")
_CONFLICT_TERMS = ("compare", "versus", "different", "conflicting", "sources")
_MULTI_HOP_TERMS = (
    "how does", "what is the relationship", "connect", "link", "relate", "why does",
    "what causes", "how are", "what connects", "bridge", "underlying", "implicit",
    "hidden connection", "between",
)


@dataclass
class PlanCacheEntry:
    """A cached plan. ``skill_context`` identifies the skills it was made for (the engine's
    registry version); an entry made for other skills is never reused."""

    plan: list[str]
    confidence: float
    created_at: datetime
    usage_count: int
    query_hash: str
    skill_context: str


@dataclass
class PlanGenerationResult:
    """A plan and how it was made (``generation_time`` in seconds)."""

    plan: list[str]
    confidence: float
    reasoning: str
    cache_hit: bool
    generation_time: float
    fallback_used: bool


class DynamicPlanner:
    """Plans a query from what the registered skills declare.

    ``engine`` and ``config`` are ``sof_sam`` extensions (SAM's coordinator passes its own
    engine, so plans name the skills it runs); by default the planner has an engine of its
    own over the installed plugins and reads ``sof_sam.config.get_sof_config()``.
    """

    def __init__(
        self,
        enable_curriculum: bool = True,
        goal_stack: Any = None,
        *,
        engine: sof_core.CoordinatorEngine | None = None,
        config: Any = None,
    ) -> None:
        self.logger = logging.getLogger(f"{__name__}.DynamicPlanner")
        self._config = load_sam_config(config)
        self._engine = engine if engine is not None else sam_engine(self._config)
        self._goal_stack = goal_stack
        #: Accepted for SAM's signature; SOF has no reasoning curriculum.
        self._curriculum_requested = enable_curriculum
        self._cache: OrderedDict[str, PlanCacheEntry] = OrderedDict()
        self._lock = threading.Lock()

    # --- registration --------------------------------------------------------------------

    def register_skill(self, skill: Any) -> None:
        self._engine.register_skill(skill)

    def register_skills(self, skills: Iterable[Any]) -> None:
        for skill in skills:
            self.register_skill(skill)

    def get_registered_skills(self) -> list[str]:
        return list(self._engine.registry.skill_names())

    # --- planning ------------------------------------------------------------------------

    def create_plan(self, uif: Any, mode: str = "user_focused") -> PlanGenerationResult:
        """A plan for ``uif``'s query. Never raises: after an error the result holds the
        default plan with ``fallback_used=True`` and the error in ``reasoning``.

        In the ``goal_informed`` and ``goal_focused`` modes the goal stack's top pending goal
        is logged to the UIF (SOF's planners do not read goals).
        """
        started = time.perf_counter()
        if mode in ("goal_informed", "goal_focused") and self._goal_stack is not None:
            goal = self._background_goal()
            if goal is not None:
                uif.add_log_entry(f"Background goal: {getattr(goal, 'goal_id', goal)}")
        try:
            caching = bool(flag(self._config, "enable_plan_caching"))
            if caching:
                entry = self._cached(uif)
                if entry is not None:
                    return PlanGenerationResult(
                        list(entry.plan), entry.confidence,
                        f"Retrieved from cache (used {entry.usage_count} times)", True,
                        time.perf_counter() - started, False,
                    )
            result = self._apply_self_reflect_policy(self._generate(uif), uif)
            if caching and result.plan and result.confidence > 0.5:
                self._store(uif, result)
            result.generation_time = time.perf_counter() - started
            self.logger.info("Plan created: %s (confidence: %.2f)", result.plan,
                             result.confidence)
            return result
        except Exception as exc:
            self.logger.exception("Error during plan generation")
            return PlanGenerationResult(
                self._default_plan(), _ERROR_CONFIDENCE, f"Error during generation: {exc}",
                False, time.perf_counter() - started, True,
            )

    def _planner(self, name: str) -> Any:
        entry = self._engine.registry.component("planners", name)
        if entry is None:
            raise LookupError(f"SOF planner {name!r} is not installed")
        return entry.obj() if isinstance(entry.obj, type) else entry.obj

    def _generate(self, uif: Any) -> PlanGenerationResult:
        query = uif.input_query
        try:
            plan = list(self._planner("goal").plan(query, _PreferRegistered(self._engine)))
        except sof_core.GoalResolutionError as exc:
            return PlanGenerationResult(
                self._default_plan(), _DEFAULT_CONFIDENCE,
                f"Goal planning found no plan ({exc}); used the default plan", False, 0.0,
                True,
            )
        return PlanGenerationResult(
            plan, _GOAL_CONFIDENCE,
            "Goal planner: the registered skills that produce final_response, with the "
            "producers of their inputs",
            False, 0.0, False,
        )

    def _default_plan(self) -> list[str]:
        """SOF's static plan (``default_plan``), keeping the skills that are registered."""
        try:
            plan = list(self._planner("static").plan("", self._engine))
        except Exception:  # a broken static planner must not break the fallback
            plan = list(self._engine.config.default_plan)
        known = [name for name in plan if name in self._engine.registry]
        return known or plan

    # --- SAM's rule-based fallback plan --------------------------------------------------

    def _generate_fallback_plan(self, uif: Any, background_goal: Any = None
                                ) -> PlanGenerationResult:
        """SAM's rule-based plan from the query's words (``fallback_used=True``, confidence
        0.6), kept because SAM's own tests call it. A skill is used when this planner can
        run it (registered, or from an installed plugin). As in SAM without its graph
        database, memory retrieval is set to ``"VECTOR"`` in
        ``intermediate_data["search_context"]``."""
        query = uif.input_query.lower()
        reasons: list[str] = []
        if background_goal is not None:
            description = str(background_goal.description)
            query = f"{query} {description.lower()}"
            reasons.append(f"Integrated background goal: {description[:30]}...")
        plan: list[str] = []

        def add(name: str, reason: str) -> None:
            if name in self._engine.registry:
                plan.append(name)
                reasons.append(reason)

        if any(term in query for term in _FINANCE_TERMS):
            add("FinancialDataTool", "Added FinancialDataTool for financial data lookup")
        elif any(term in query for term in _NEWS_TERMS):
            add("NewsApiTool", "Added NewsApiTool for current news")
        elif any(term in query for term in ("search", "find", "look up")):
            add("AgentZeroWebBrowserTool", "Added web search for general information")
        if any(term in query for term in ("+", "-", "*", "/", "calculate", "compute", "math")):
            add("CalculatorTool", "Added calculator for mathematical operations")
        if "MemoryRetrievalSkill" in self._engine.registry:
            context = uif.intermediate_data.get("search_context", {})
            context["retrieval_mode"] = "VECTOR"
            uif.intermediate_data["search_context"] = context
            add("MemoryRetrievalSkill", "Added vector memory retrieval for context")
        if any(term in query for term in _CONFLICT_TERMS):
            add("ConflictDetectorSkill", "Added conflict detection for comparison query")
        if any(term in query for term in _MULTI_HOP_TERMS):
            add("ImplicitKnowledgeSkill", "Added implicit knowledge skill for multi-hop reasoning")
        add("ResponseGenerationSkill", "Added response generation as final step")
        if not plan:
            plan = self._get_default_fallback_plan()
            reasons = ["Used default fallback plan"]
        return PlanGenerationResult(plan, _DEFAULT_CONFIDENCE, "; ".join(reasons), False, 0.0,
                                    True)

    def _get_default_fallback_plan(self) -> list[str]:
        """SAM's last resort: its core skills that can run, else ``ResponseGenerationSkill``."""
        core = [name for name in ("MemoryRetrievalSkill", "ResponseGenerationSkill")
                if name in self._engine.registry]
        return core or ["ResponseGenerationSkill"]

    def _background_goal(self) -> Any:
        try:
            goals = self._goal_stack.get_top_priority_goals(limit=1, status="pending")
        except Exception as exc:
            self.logger.warning("Failed to retrieve background goal: %s", exc)
            return None
        return goals[0] if goals else None

    # --- SAM's SELF-REFLECT policy -------------------------------------------------------

    def _apply_self_reflect_policy(
        self, result: PlanGenerationResult, uif: Any
    ) -> PlanGenerationResult:
        """Add SAM's factual-correction skill after the response, when it is registered and
        SAM's ``enable_self_reflect`` rules call for it."""
        if not flag(self._config, "enable_self_reflect"):
            return result
        if _SELF_REFLECT_SKILL not in self._engine.registry or _SELF_REFLECT_SKILL in result.plan:
            return result
        if not self._self_reflect_wanted(uif, result):
            return result
        plan = list(result.plan)
        response = "ResponseGenerationSkill"
        at = plan.index(response) + 1 if response in plan else len(plan)
        plan.insert(at, _SELF_REFLECT_SKILL)
        return PlanGenerationResult(
            plan, result.confidence,
            result.reasoning + "; Added SELF-REFLECT for factual verification",
            result.cache_hit, result.generation_time, result.fallback_used,
        )

    def _self_reflect_wanted(self, uif: Any, result: PlanGenerationResult) -> bool:
        query = uif.input_query.lower()
        keywords = flag(self._config, "self_reflect_query_keywords") or ()
        if any(word in query for word in keywords):
            return True
        threshold = flag(self._config, "self_reflect_confidence_threshold")
        if isinstance(threshold, (int, float)) and result.confidence < threshold:
            return True
        data = uif.intermediate_data
        if data.get("user_profile", "") in (flag(self._config, "self_reflect_profiles") or ()):
            return True
        if any(word in query for word in _DISSONANCE):
            return True
        text = data.get("response_text", "")
        return isinstance(text, str) and len(text.split()) > 150

    # --- the cache -----------------------------------------------------------------------

    def _query_hash(self, uif: Any) -> str:
        text = f"{uif.input_query}|{uif.active_profile}|{self._skill_context()}"
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def _skill_context(self) -> str:
        return f"registry-v{self._engine.registry.version}"

    def _valid(self, entry: PlanCacheEntry) -> bool:
        ttl = flag(self._config, "plan_cache_ttl")
        if isinstance(ttl, (int, float)) and (datetime.now() - entry.created_at
                                               ).total_seconds() > ttl:
            return False
        return entry.skill_context == self._skill_context()

    def _cached(self, uif: Any) -> PlanCacheEntry | None:
        key = self._query_hash(uif)
        with self._lock:
            entry = self._cache.get(key)
            if entry is None:
                return None
            if not self._valid(entry):
                del self._cache[key]
                return None
            entry.usage_count += 1
            self._cache.move_to_end(key)
            return entry

    def _store(self, uif: Any, result: PlanGenerationResult) -> None:
        key = self._query_hash(uif)
        entry = PlanCacheEntry(list(result.plan), result.confidence, datetime.now(), 0, key,
                               self._skill_context())
        with self._lock:
            for stale in [k for k, e in self._cache.items() if not self._valid(e)]:
                del self._cache[stale]
            self._cache[key] = entry
            while len(self._cache) > MAX_CACHE_ENTRIES:
                self._cache.popitem(last=False)

    def get_cache_stats(self) -> dict[str, Any]:
        with self._lock:
            entries = list(self._cache.values())
        usage = sum(e.usage_count for e in entries)
        return {
            "total_entries": len(entries),
            "total_usage": usage,
            "average_usage": usage / len(entries) if entries else 0,
            "cache_enabled": bool(flag(self._config, "enable_plan_caching")),
        }

    def clear_cache(self) -> None:
        with self._lock:
            self._cache.clear()

    # --- SAM's curriculum hooks (no SOF counterpart) -------------------------------------

    def record_curriculum_performance(
        self, plan: list[str], success: bool, confidence: float, execution_time: float
    ) -> None:
        """SAM's reasoning curriculum has no SOF counterpart: nothing is recorded."""

    def get_curriculum_status(self) -> dict[str, Any] | None:
        """Always None: SOF has no reasoning curriculum."""
        return None

    # --- SAM's graph-database awareness (no SOF counterpart) -----------------------------

    def is_graph_aware(self) -> bool:
        """False: SOF plans without SAM's graph database (SAM's answer when it had none)."""
        return False

    def get_graph_status(self) -> dict[str, Any]:
        """SAM's status dict for a planner without a graph database, so SAM's callers that
        read it keep working."""
        return {
            "graph_available": False,
            "graph_aware_planning": True,
            "supported_modes": ["VECTOR"],
            "default_graph_depth": 2,
            "max_graph_depth": 4,
        }


__all__ = ["DynamicPlanner", "PlanCacheEntry", "PlanGenerationResult"]


class _PreferRegistered:
    """The engine as the goal planner's context, choosing between producers of one key the
    skill registered in code (``register_skill``) over an installed plugin's. SAM's planner
    knows only the skills it was given; without this, a SAM skill writing
    ``final_response`` beside the installed response plugin made the goal planner give up
    and the default plan ran the plugin's skills instead of the caller's."""

    def __init__(self, engine: sof_core.CoordinatorEngine) -> None:
        self._engine = engine

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    def resolve_goal(self, goals: Iterable[str], **options: Any) -> list[str]:
        own: dict[str, list[str]] = {}
        for entry in self._engine.registry.skills():
            if entry.plugin.startswith("code:"):  # registered on the engine, not installed
                for key in entry.spec.output_keys:
                    own.setdefault(key, []).append(entry.spec.name)
        # A key two registered skills produce stays ambiguous: the error names both.
        prefer = {key: names[0] for key, names in own.items() if len(names) == 1}
        prefer.update(options.pop("prefer", None) or {})
        return self._engine.resolve_goal(goals, prefer=prefer, **options)
