"""Tool security: permissions, the policy, rate limits, output caps and sandboxes.

Tools are skills registered through ``sof_register_tools``. Each declares ``permissions``
(``network``, ``filesystem``, ``subprocess``) and limits (``max_execution_time``,
``max_output_bytes``, ``calls_per_minute``); ``SOFConfig.tool_policy`` allows or denies
them. The pieces, each used where it belongs:

- ``policy``: the configured policy, applied when a plan is compiled (a denied tool is a
  validation problem naming the policy entry) and the limits each tool step runs with;
- ``ratelimit``: calls per minute, counted in the host process;
- ``sandbox``: how a tool without ``network`` is kept off the network (a network namespace
  via ``unshare``, bubblewrap, or the in-process audit-hook fallback);
- ``guard``: the audit hook an isolation worker sets around a tool call, refusing what the
  tool has no permission for;
- ``output``: cutting output over its byte cap;
- ``forked``: the same guarantees for a call that cannot be pickled to a worker (a closure:
  what SAM's tools hand their security manager), run in a forked child.

docs/security.md describes the model; ``sof_core.execution.isolation`` runs tools with it.
"""
