"""Property-based: random plans never crash the validator, and every valid plan runs each
skill exactly once, after all of its producers."""

from __future__ import annotations

import threading
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sof_core import UIF, BaseSkillModule
from sof_core.testing import make_engine

KEYS = [f"k{i}" for i in range(8)]
VALID_RUNS: list[list[str]] = []


@st.composite
def skill_sets(draw: Any) -> list[dict[str, Any]]:
    """Skills that mostly depend on earlier ones (valid DAGs), sometimes on later ones
    (cycles), sometimes share an output key (duplicate producers)."""
    count = draw(st.integers(min_value=1, max_value=8))
    skills = []
    for index in range(count):
        outputs = [f"o{index}"]
        if draw(st.integers(0, 9)) == 0:
            outputs.append(draw(st.sampled_from(KEYS)))
        earlier = [f"o{j}" for j in range(index)]
        pool = earlier if draw(st.integers(0, 9)) else [f"o{j}" for j in range(count)]
        inputs = draw(st.lists(st.sampled_from([*pool, "input_query"]), max_size=3, unique=True))
        inputs = [k for k in inputs if k not in outputs]
        optional = draw(st.lists(st.sampled_from(KEYS), max_size=2, unique=True))
        optional = [k for k in optional if k not in inputs and k not in outputs]
        skills.append({"name": f"S{index}", "inputs": inputs, "optional": optional,
                       "outputs": outputs, "parallel": draw(st.booleans())})
    return skills


def build(defs: list[dict[str, Any]], log: list[str], lock: threading.Lock) -> list[type]:
    classes = []
    for d in defs:
        def execute(self: Any, uif: UIF, name: str = d["name"], outs: list[str] = d["outputs"]) -> UIF:
            with lock:
                log.append(name)
            for key in outs:
                uif.intermediate_data[key] = name
            return uif

        classes.append(type(d["name"], (BaseSkillModule,), {
            "skill_name": d["name"], "skill_description": "generated",
            "required_inputs": d["inputs"], "optional_inputs": d["optional"],
            "output_keys": d["outputs"], "can_run_parallel": d["parallel"],
            "max_execution_time": None, "execute": execute,
        }))
    return classes


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(defs=skill_sets(), data=st.data())
def test_random_plans_validate_without_crashing_and_valid_ones_run_in_order(
    defs: list[dict[str, Any]], data: Any
) -> None:
    log: list[str] = []
    engine = make_engine(build(defs, log, threading.Lock()), skill_timeout=None, total_timeout=None)
    names = [d["name"] for d in defs]
    plan = data.draw(st.permutations(names))
    if data.draw(st.integers(0, 9)) == 0:
        plan = [*plan, data.draw(st.sampled_from([*names, "Ghost"]))]
    problems = engine.validate_plan(plan)
    assert all(str(p) for p in problems)  # every problem has a message
    if problems:
        return
    VALID_RUNS.append(plan)
    report = engine.execute_plan(plan, UIF(input_query="q"))
    assert report.status == "success", report.errors
    assert sorted(log) == sorted(plan)  # exactly once each
    position = {name: i for i, name in enumerate(log)}
    by_name = {d["name"]: d for d in defs}
    for consumer in plan:
        wanted = by_name[consumer]["inputs"] + by_name[consumer]["optional"]
        for producer in plan:
            if producer != consumer and set(by_name[producer]["outputs"]) & set(wanted):
                assert position[producer] < position[consumer], (producer, consumer, log)


def test_the_property_above_exercised_valid_plans() -> None:
    # Guards against a generator that only ever produces invalid plans (a vacuous property).
    assert sum(1 for plan in VALID_RUNS if len(plan) >= 2) >= 5
