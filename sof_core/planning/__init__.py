"""Planning: which skills answer a query (docs/planning.md).

``planners`` (the contract, static, goal), ``rules`` (the default), ``llm``, ``triggers``
(what skills declare for the rules planner), ``optimise`` (completing, pruning, ordering,
staging), ``cache`` (the plan cache and its SQLite store), ``service`` (``Planning``: one
engine's planners, cache and metrics), ``adapt`` (adjusting a plan while it runs) and
``result`` (``PlanResult``).
"""
