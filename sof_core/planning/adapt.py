"""Running a planner's plan with dynamic adjustment: adaptive choice and re-planning.

``run_adaptive`` runs a plan through the engine's ``execute_plan`` (``arun_adaptive``:
``aexecute_plan``, on the caller's event loop) in segments, and only when there is
something to decide (otherwise it is one plain run): a part before each decision, the rest
after the last, a re-planned replacement last. ``_segments`` makes the
decisions for both: it yields each segment's plan and is sent its report.

* **Adaptive choice.** When the plan holds skills that *require* keys produced earlier in
  it (``ConflictDetectorSkill`` needs ``memory_results``), or when a registered skill
  declares ``planning_joins(data) -> bool`` on keys the plan produces, the producers run
  first. A producer whose outputs came back empty (memory found no passages) makes the plan
  skip what only those outputs feed; a skill whose ``planning_joins`` says yes (conflict
  detection when the passages come from several sources) joins the rest of the run.
* **Re-planning.** When a skill fails and ``continue_on_skill_failure`` is set, another
  registered skill that produces the keys it would have written is run in its place, with
  the plan's skills that read those keys run again after it.

Every decision is a ``Change`` in the plan's ``PlanResult`` (``skipped``, ``added``,
``substituted``), so the report says what changed and why. Observers see the segments as
one plan (``CoordinatorEngine.segmented_plan``): one ``sof_before_plan``, one
``sof_after_plan`` with the merged report. The planning layer cannot import
the execution layer: the engine and its reports are used through their public attributes.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from dataclasses import replace
from typing import Any

from sof_core.errors import exceeded_total_timeout, stopped_when
from sof_core.planning.optimise import order_and_stage
from sof_core.planning.result import Change, PlanResult
from sof_core.uif import HOST_FIELDS


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, (list, tuple, dict, set, str)) and not value)


def _specs(engine: Any) -> dict[str, Any]:
    return {entry.spec.name: entry.spec for entry in engine.registry.skills()}


def _joiners(engine: Any, plan: Sequence[str]) -> list[Any]:
    """Registered skills, not in the plan, that declare ``planning_joins``."""
    found = []
    for entry in engine.registry.skills():
        if entry.spec.name in plan:
            continue
        if callable(getattr(entry.spec.skill_class, "planning_joins", None)):
            found.append(entry)
    return found


def split(plan: Sequence[str], specs: Mapping[str, Any], joiners: Sequence[Any]
          ) -> tuple[list[str], list[str]]:
    """``(head, tail)``: the producers whose outputs a later decision depends on, and the
    rest; ``([], plan)`` when there is nothing to decide."""
    known = [n for n in plan if n in specs]
    produced = {k: n for n in known for k in specs[n].output_keys}
    gates: set[str] = set()
    for name in known:
        for key in specs[name].required_inputs:
            if key not in HOST_FIELDS and key in produced and produced[key] != name:
                gates.add(produced[key])
    for entry in joiners:
        for key in entry.spec.required_inputs:
            if key in produced:
                gates.add(produced[key])
    if not gates:
        return [], list(plan)
    head: set[str] = set()
    wanted = list(gates)
    while wanted:  # a gate's own producers run first too
        name = wanted.pop()
        if name in head:
            continue
        head.add(name)
        for key in specs[name].inputs:
            if key in produced and produced[key] != name:
                wanted.append(produced[key])
    ordered_head = [n for n in plan if n in head]
    tail = [n for n in plan if n not in head]
    return (ordered_head, tail) if tail else ([], list(plan))


#: What decides a query's segments: it yields each segment's plan, is sent that segment's
#: report, and returns the query's report. One decision procedure for both drivers below.
Segments = Generator[list[str], Any, Any]


def run_adaptive(engine: Any, planned: PlanResult, uif: Any, *, config: Any = None,
                 executor: str | None = None, planning_time: float | None = None) -> Any:
    """Run ``planned`` on ``uif`` with adaptive choice and re-planning; the report of the
    whole run (several segments merged into one), its ``planning`` (and, given,
    ``timings["planning"]``) set before ``sof_after_plan`` is told: observers get the final
    report (the monitor counts planner choices and plan-cache lookups from it)."""
    before = len(planned.changes)
    # Observers see one plan, not one per segment (sof_core.execution.segments).
    with engine.segmented_plan(planned.plan) as finish:
        segments = _segments(engine, planned, uif,
                             config if config is not None else engine.config)
        plan = next(segments)
        while True:
            try:
                plan = segments.send(engine.execute_plan(plan, uif, executor=executor))
            except StopIteration as done:
                report = done.value
                break
        _log_changes(report, planned, before)
        _finish_report(report, planned, planning_time)
        finish(report)
    return report


async def arun_adaptive(engine: Any, planned: PlanResult, uif: Any, *, config: Any = None,
                        executor: str | None = None,
                        planning_time: float | None = None) -> Any:
    """``run_adaptive`` for async hosts: each segment through ``engine.aexecute_plan`` on
    the caller's event loop, the same decisions between them."""
    before = len(planned.changes)
    async with engine.asegmented_plan(planned.plan) as finish:
        segments = _segments(engine, planned, uif,
                             config if config is not None else engine.config)
        plan = next(segments)
        while True:
            report = await engine.aexecute_plan(plan, uif, executor=executor)
            try:
                plan = segments.send(report)
            except StopIteration as done:
                report = done.value
                break
        _log_changes(report, planned, before)
        _finish_report(report, planned, planning_time)
        await finish(report)
    return report


def _finish_report(report: Any, planned: PlanResult, planning_time: float | None) -> None:
    """What the report says of planning, before observers see it."""
    report.planning = planned.to_dict()
    if planning_time is not None:
        report.timings["planning"] = planning_time


def _log_changes(report: Any, planned: PlanResult, before: int) -> None:
    """The run's trace says what was adjusted."""
    for change in planned.changes[before:]:
        report.uif.add_log_entry(f"plan adjusted: {change.action} {change.skill} "
                                 f"({change.why})")


def _segments(engine: Any, planned: PlanResult, uif: Any, config: Any) -> Segments:
    specs = _specs(engine)
    registry = engine.registry
    remaining = list(planned.plan)
    pending = _joiners(engine, remaining)
    head = _next_part(remaining, specs, pending)
    if not head:
        report = yield remaining
        return (yield from _replan(planned, report, specs, config))
    so_far: Any = None
    ran: list[str] = []
    while head:
        rest = [n for n in remaining if n not in head]
        part = yield head
        so_far = part if so_far is None else merge(so_far, part)
        ran.extend(head)
        if part.status == "timeout" or (part.status == "failure"
                                        and not config.continue_on_skill_failure):
            # The query stops here (its total deadline passed, or a failure ends it): the
            # rest of the plan is reported not run, as one run of the whole plan reports it
            # (with that part's status: a failure is the query's, whatever ran before it).
            so_far = replace(so_far, status=part.status)
            return _with_skipped(so_far, _not_run(so_far, part, rest, registry, config),
                                 errors=False)
        if _has_failures(part):
            # Before the rest, which may require what a failed skill did not write: a
            # substitute first, else the skills left without an input are skipped, as one
            # run skips them (a run without their producer would be an invalid plan).
            so_far = yield from _replan(planned, so_far, specs, config)
        data = uif.intermediate_data
        rest, unfed = _without_inputs(rest, ran, specs, registry, data, so_far)
        so_far = _with_skipped(so_far, unfed)
        rest = _skip_unfed(rest, head, specs, data, planned)
        rest, pending = _join(rest, pending, specs, data, planned)
        remaining = rest
        head = _next_part(remaining, specs, pending)
    if not remaining:
        return (yield from _replan(planned, so_far, specs, config))
    last = yield remaining
    return (yield from _replan(planned, merge(so_far, last), specs, config))


def _next_part(plan: list[str], specs: Mapping[str, Any], joiners: Sequence[Any]
               ) -> list[str]:
    """The skills of ``plan`` to run before the next decision; ``[]`` when nothing is left
    to decide. A skill reading what a joiner would write waits for the joiner's decision:
    the part is split again until no skill in it reads one (unless it feeds the joiner)."""
    head, _ = split(plan, specs, joiners)
    while head and _reads_a_joiner(head, specs, joiners):
        inner, _ = split(head, specs, joiners)
        if not inner:
            break
        head = inner
    return head


def _reads_a_joiner(part: Sequence[str], specs: Mapping[str, Any], joiners: Sequence[Any]
                    ) -> bool:
    """Whether a skill in ``part`` reads the output of a joiner that ``part`` feeds."""
    made = {k for n in part if n in specs for k in specs[n].output_keys}
    read = {k for n in part if n in specs for k in specs[n].inputs}
    return any(set(j.spec.required_inputs) & made and set(j.spec.output_keys) & read
               for j in joiners)


def _has_failures(report: Any) -> bool:
    return any(r.status in ("failed", "timeout") for r in report.results)


def _without_inputs(tail: list[str], head: Sequence[str], specs: Mapping[str, Any],
                    registry: Any, data: Mapping[str, Any], report: Any
                    ) -> tuple[list[str], list[Any]]:
    """``tail`` without the skills that cannot run: a required input is missing and no
    skill left in ``tail`` writes it (a head skill that failed or timed out did not); and
    their ``skipped`` results, worded as a single run words them (``SkillDependencyError``,
    naming the producer that did not write the key)."""
    kept = list(tail)
    unfed: list[Any] = []
    if not report.results:  # nothing ran: nothing failed to write anything
        return kept, unfed
    changed = True
    while changed:  # a skill skipped here leaves its own readers without input too
        changed = False
        produced = {k for n in kept if n in specs for k in specs[n].output_keys}
        for name in kept:
            spec = specs.get(name)
            if spec is None:
                continue
            missing = [k for k in spec.required_inputs
                       if k not in HOST_FIELDS and k not in data and k not in produced]
            if not missing:
                continue
            key = missing[0]
            producer = next((n for n in (*head, *tail) if n in specs and n != name
                             and key in specs[n].output_keys), None)
            why = (f"its producer {producer!r} did not write it" if producer
                   else "nobody wrote it")
            unfed.append(_skipped(report, registry, name, "SkillDependencyError",
                                  f"required input {key!r} is missing: {why}"))
            kept.remove(name)
            changed = True
            break
    return kept, unfed


def _not_run(report: Any, cause: Any, tail: Sequence[str], registry: Any, config: Any
             ) -> list[Any]:
    """``skipped`` results for ``tail`` when the query (so far ``report``) stopped after the
    segment ``cause``, worded as one run words the skills it never reached
    (``RunTimeoutError`` past the total deadline, else ``SkillNotRunError``)."""
    if not tail or not report.results:
        return []
    if cause.status == "timeout":
        error_type = "RunTimeoutError"
        error = exceeded_total_timeout(config.total_timeout)
    else:
        error_type = "SkillNotRunError"
        given = next((r.error for r in cause.results if r.error_type == error_type), None)
        first = next((r for r in cause.results if r.status != "success"), None)
        error = given or (f"not run: {stopped_when(first.skill, first.status)}"
                          if first is not None else f"not run: the run stopped: {cause.status}")
    return [_skipped(report, registry, name, error_type, error) for name in tail]


def _skipped(report: Any, registry: Any, name: str, error_type: str, error: str) -> Any:
    """A ``skipped`` result for ``name``, in the stage after ``report``'s last: a copy of
    one of ``report``'s results (a ``SkillResult``: this layer does not import execution)."""
    entry = registry.skill(name)
    return replace(report.results[0], skill=name, status="skipped", duration=0.0,
                   attempts=0, stage=len(report.stages), error=error, error_type=error_type,
                   plugin=entry.plugin if entry is not None else None, traceback=None,
                   location=None)


def _with_skipped(report: Any, skipped: Sequence[Any], *, errors: bool = True) -> Any:
    """``report`` with ``skipped`` results added, its status and (with ``errors``) its
    errors saying so: a skill skipped for a missing input is an error line of its own in
    one run, a skill a stopped run never reached is not."""
    if not skipped:
        return report
    results = [*report.results, *skipped]
    if report.status == "timeout" or not errors:  # a stopped run keeps its own status
        status = report.status
    else:
        status = "partial" if any(r.status == "success" for r in results) else "failure"
    lines = [f"{r.skill}: {r.error_type}: {r.error}" for r in skipped] if errors else []
    errors_out = [*report.errors, *lines]
    names = [r.skill for r in skipped]
    plan = [*report.plan, *(n for n in names if n not in report.plan)]
    report.uif.__dict__["execution_plan"] = list(plan)
    return replace(report, status=status, results=results, errors=errors_out, plan=plan,
                   stages=[*map(list, report.stages), names])


def _skip_unfed(tail: list[str], head: Sequence[str], specs: Mapping[str, Any],
                data: Mapping[str, Any], planned: PlanResult) -> list[str]:
    """``tail`` without the skills whose required inputs from ``head`` all came back empty
    (and what only those skills fed)."""
    empty = {k for n in head for k in specs[n].output_keys if k in data and _empty(data[k])}
    kept: list[str] = []
    dropped: set[str] = set()
    for name in tail:
        spec = specs.get(name)
        if spec is None:
            kept.append(name)
            continue
        needed = [k for k in spec.required_inputs if k not in HOST_FIELDS]
        fed_by_dropped = needed and all(
            any(k in specs[d].output_keys for d in dropped) for k in needed)
        if needed and (all(k in empty for k in needed) or fed_by_dropped):
            dropped.add(name)
            source = next((n for n in head for k in needed if k in specs[n].output_keys), "")
            why = (f"{source} produced no {', '.join(needed)} for this query: nothing for it "
                   "to work on" if not fed_by_dropped else
                   "what it needs comes only from skills skipped for this query")
            planned.changes.append(Change("skipped", name, why))
            continue
        kept.append(name)
    return kept


def _join(tail: list[str], joiners: Sequence[Any], specs: Mapping[str, Any],
          data: Mapping[str, Any], planned: PlanResult) -> tuple[list[str], list[Any]]:
    """``tail`` plus each registered skill whose ``planning_joins(data)`` says yes and whose
    outputs a skill in ``tail`` reads; and the joiners not asked yet (a later part may
    produce what they need)."""
    reads = {k for n in tail if n in specs for k in specs[n].inputs}
    added: list[str] = []
    unasked: list[Any] = []
    for entry in joiners:
        spec = entry.spec
        if not (set(spec.output_keys) & reads) or any(
                k not in data and k not in HOST_FIELDS for k in spec.required_inputs):
            unasked.append(entry)
            continue
        target = entry.instance if entry.instance is not None else spec.skill_class
        try:
            joins = bool(target.planning_joins(data))
        except KeyboardInterrupt:  # the user's: it stops the host
            raise
        except BaseException as exc:  # a broken declaration never breaks the run
            planned.changes.append(Change("not added", spec.name,
                                          f"planning_joins raised {type(exc).__name__}: {exc}"))
            continue
        if joins:
            added.append(spec.name)
            planned.changes.append(Change(
                "added", spec.name, f"its planning_joins says yes for this run's "
                f"{', '.join(k for k in spec.required_inputs if k in data)}"))
    if added:
        # Where they run: before the skills that read what they produce (the plan and its
        # stages in the report's "planning" read as the run's own).
        planned.plan, planned.stages = order_and_stage([*planned.plan, *added], specs)
        for name in added:
            planned.reasons[name] = next(c.why for c in planned.changes if c.skill == name)
    return [*added, *tail], unasked


def _replan(planned: PlanResult, report: Any, specs: Mapping[str, Any],
            config: Any) -> Segments:
    """Run a substitute for each failed skill (``continue_on_skill_failure``), then the plan's
    skills that read what it produces."""
    if not config.continue_on_skill_failure:
        return report
    failed = [r for r in report.results if r.status in ("failed", "timeout")]
    if not failed:
        return report
    data = report.uif.intermediate_data
    used = set(report.plan) | {r.skill for r in report.results}
    redo: list[str] = []
    for result in failed:
        spec = specs.get(result.skill)
        if spec is None:
            continue
        missing = [k for k in spec.output_keys if k not in data]
        if not missing:
            continue
        substitute = next((n for n in sorted(specs) if n not in used
                           and set(missing) <= set(specs[n].output_keys)
                           and all(k in data or k in HOST_FIELDS
                                   for k in specs[n].required_inputs)), None)
        if substitute is None:
            continue
        used.add(substitute)
        planned.changes.append(Change(
            "substituted", substitute,
            f"{result.skill} failed ({_error(result)}); {substitute} produces "
            f"{', '.join(missing)} in its place"))
        planned.reasons[substitute] = f"in place of {result.skill}, which failed"
        redo.append(substitute)
        redo.extend(n for n in _downstream(report.plan, specs, missing) if n not in redo)
    if not redo:
        return report
    # Where they run: after what has run so far (the failed skill included: a substitute
    # never runs beside the skill it replaces), a substitute before the skills that read
    # what it writes, then the rest of the plan, which runs after them.
    planned.plan, planned.stages = _restaged(planned.plan, report.stages, redo, specs)
    again = yield redo
    return merge(report, again, replaced={r.skill for r in failed})


def _restaged(plan: Sequence[str], ran: Sequence[Sequence[str]], redo: Sequence[str],
              specs: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    """The plan and its stages once ``redo`` runs after the stages that ``ran`` (those
    skills that run again are shown where they run again), then the plan's other skills."""
    again = set(redo)
    stages = [kept for kept in ([n for n in stage if n not in again] for stage in ran) if kept]
    done = {n for stage in stages for n in stage}
    stages += order_and_stage(list(redo), specs)[1]
    rest = [n for n in plan if n not in done and n not in again]
    stages += order_and_stage(rest, specs)[1]
    staged = [n for stage in stages for n in stage]
    listed = set(staged)
    order = [*staged, *(n for n in [*plan, *redo] if n not in listed)]
    return list(dict.fromkeys(order)), stages


def _downstream(plan: Sequence[str], specs: Mapping[str, Any], keys: Sequence[str]
                ) -> list[str]:
    """The plan's skills that read ``keys``, and those that read what they write, and so on
    (in plan order): what runs again once a substitute has written ``keys``."""
    wanted = set(keys)
    found: list[str] = []
    changed = True
    while changed:
        changed = False
        for name in plan:
            if name in specs and name not in found and wanted & set(specs[name].inputs):
                found.append(name)
                wanted |= set(specs[name].output_keys)
                changed = True
    return [n for n in plan if n in found]


def _error(result: Any) -> str:
    if result.error and result.error_type and not str(result.error).startswith(
            str(result.error_type)):
        return f"{result.error_type}: {result.error}"
    return str(result.error or result.status)


def merge(first: Any, second: Any, replaced: set[str] | None = None) -> Any:
    """One report for two segments of a run (the second's UIF is the final one)."""
    results = [*first.results, *second.results]
    failed = [r for r in results if r.status in ("failed", "timeout")
              and r.skill not in (replaced or set())]
    rerun = {r.skill for r in second.results if r.status == "success"}
    failed = [r for r in failed if r.skill not in rerun]
    if second.status == "timeout" or (first.status == "timeout" and not replaced):
        status = "timeout"
    elif failed or (replaced and second.status == "success"):
        status = "partial" if any(r.status == "success" for r in results) else "failure"
    else:
        status = second.status if second.status != "success" else "success"
    timings = dict(first.timings)
    for phase, seconds in second.timings.items():
        timings[phase] = timings.get(phase, 0.0) + seconds
    stages = [list(s) for s in first.stages]
    offset = len(stages)
    shifted = [replace(r, stage=r.stage + offset) for r in second.results]
    # A skill skipped for want of an input that ran once a substitute provided it: its
    # "missing" line no longer describes the query.
    ran_later = {r.skill for r in first.results if r.status == "skipped"} & rerun
    first_errors = [e for e in first.errors if e.split(": ", 1)[0] not in ran_later]
    plan = [*first.plan, *(n for n in second.plan if n not in first.plan)]
    second.uif.__dict__["execution_plan"] = list(plan)
    return replace(
        second,
        status=status,
        plan=plan,
        stages=stages + [list(s) for s in second.stages],
        results=[*first.results, *shifted],
        errors=[*first_errors, *second.errors],
        duration=first.duration + second.duration,
        timings=timings,
        problems=[*first.problems, *second.problems],
    )
