"""``sof hooks``: the hook reference, generated from the hook specifications.

The same text is the documentation page ``docs/hooks.md`` (``python docs/generate.py``
writes it; a test fails when the page and the specs disagree), so the reference can never
drift from the code plugins are checked against.
"""

from __future__ import annotations

import argparse
from typing import Any, NamedTuple

GROUPS = ("Registration", "Start-up", "Commands", "Lifecycle observers")
REGENERATE = "python docs/generate.py"


class HookDoc(NamedTuple):
    """One hook specification, as the reference shows it. (A named tuple, and ``inspect``
    imported by ``hook_docs``: every ``sof`` command imports this module to build the
    ``hooks`` parser, and ``dataclasses`` and ``inspect`` cost it about 15 ms.)"""

    name: str
    group: str
    signature: str
    arguments: tuple[str, ...]
    doc: str
    calling: str
    firstresult: bool
    historic: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "group": self.group,
            "signature": self.signature,
            "arguments": list(self.arguments),
            "doc": self.doc,
            "calling": self.calling,
            "firstresult": self.firstresult,
            "historic": self.historic,
        }


def hook_docs() -> list[HookDoc]:
    """Every ``sof_*`` hook specification, in the order ``hookspecs.py`` defines them."""
    import inspect

    from sof_core.plugins import hookspecs
    from sof_core.plugins.markers import PROJECT_NAME
    from sof_core.plugins.registry import COMPONENT_HOOKS

    collected = {hook: kind for kind, hook in COMPONENT_HOOKS.items()}
    docs = []
    for name, function in vars(hookspecs).items():
        options = getattr(function, f"{PROJECT_NAME}_spec", None)
        if not name.startswith("sof_") or options is None:
            continue
        signature = inspect.signature(function)
        parameters = [
            f"{p.name}: {p.annotation}" if p.annotation is not inspect.Parameter.empty
            else p.name
            for p in signature.parameters.values()
        ]
        returns = signature.return_annotation
        text = f"def {name}({', '.join(parameters)})"
        if returns is not inspect.Signature.empty:
            text += f" -> {returns}"
        group = _group(name)
        docs.append(
            HookDoc(
                name=name,
                group=group,
                signature=text,
                arguments=tuple(signature.parameters),
                doc=inspect.cleandoc(function.__doc__ or ""),
                calling=_calling(name, group, collected.get(name)),
                firstresult=bool(options.get("firstresult")),
                historic=bool(options.get("historic")),
            )
        )
    return docs


def _group(name: str) -> str:
    if name == "sof_register_commands":
        return "Commands"
    if name.startswith("sof_register_"):
        return "Registration"
    if name.startswith(("sof_before_", "sof_after_")) or name == "sof_alert":
        return "Lifecycle observers"
    return "Start-up"


def _calling(name: str, group: str, kind: str | None) -> str:
    """How SOF calls the hook: what an implementation can rely on."""
    if kind is not None:
        return (
            f"Called once for each plugin as it is registered, each implementation on its own; "
            f"the items are checked and added to the registry as `{kind}`. The result is "
            "a list (a tuple or a generator too); `None` adds nothing. An exception, or any "
            "other result (a string, a mapping, a set, a number), fails that plugin alone "
            "(`PluginHookError`)."
        )
    if group == "Commands":
        return (
            "Called by the `sof` command when it builds its parser (for a plugin's command "
            "and for `sof --help`), in a thread of its own on a scratch copy of the "
            "sub-commands. An implementation that raises, takes a command already there or "
            "does not return within `plugin_import_timeout` is skipped with a warning and "
            "leaves no half-added command behind."
        )
    if group == "Lifecycle observers":
        return (
            "Observer: called for every implementation, in registration order. An exception "
            "is logged and counted (`PluginManager.observer_errors`), never raised into the "
            "run. Each call runs in a thread of the engine's observer pool and is waited for "
            "at most `observer_timeout` (5 s): one that does not return by then is left "
            "running, counted (`PluginManager.observer_timeouts`), reported as `sof_alert` "
            "kind `observer_hung`, and skipped until it returns. An implementation marked "
            "`@inline_observer` (it only records in memory) is called directly in the "
            "notifying thread instead. A hook nobody implements costs nothing."
        )
    if name == "sof_configure":
        return (
            "Called once for each plugin after every plugin is loaded (or at once, for a "
            "plugin registered later). A plugin whose implementation raises is unloaded and "
            "listed as failed. Called again, with the new settings, when the host's "
            "configuration changes while it runs (an engine that follows it, "
            "`PluginManager.reconfigure`): make it idempotent (take the settings; do not "
            "register components or start threads each time). A plugin whose implementation "
            "raises then stays loaded and is logged by name; each such call is bounded by "
            "`plugin_import_timeout`."
        )
    return "Called by the plugin that defines what it is for; see its documentation."


def reference_markdown() -> str:
    """The whole reference as Markdown: what ``sof hooks`` prints and ``docs/hooks.md`` is."""
    docs = hook_docs()
    lines = [
        "# Hook reference",
        "",
        f"<!-- Generated from sof_core/plugins/hookspecs.py by `sof hooks`; do not edit. "
        f"Regenerate with `{REGENERATE}`. -->",
        "",
        "A plugin implements any of these hooks as functions (or methods) of the module its "
        "`sof.plugins` entry point names, each marked with `@sof_core.hookimpl`. An "
        "implementation may accept fewer arguments than the specification lists, never "
        "others. A `sof_*` function that is not one of these hooks, or not marked, fails the "
        "plugin with a \"did you mean\". Hooks are called synchronously: one defined with "
        "`async def` fails the plugin (its coroutine would never run). "
        "`SOF_TRACE_PLUGINS=1` logs every call of every "
        "hook: which plugin answered, how long it took and what it returned or raised.",
        "",
        "| Hook | Group | Arguments |",
        "| --- | --- | --- |",
    ]
    for doc in docs:
        arguments = ", ".join(f"`{a}`" for a in doc.arguments) or "none"
        lines.append(f"| [`{doc.name}`](#{doc.name}) | {doc.group} | {arguments} |")
    for group in GROUPS:
        members = [d for d in docs if d.group == group]
        if not members:
            continue
        lines += ["", f"## {group}"]
        for doc in members:
            lines += ["", *section(doc)]
    return "\n".join(lines) + "\n"


def section(doc: HookDoc) -> list[str]:
    """One hook's part of the reference."""
    lines = [f"### {doc.name}", "", "```python", "@hookimpl", f"{doc.signature}:", "```", ""]
    if doc.doc:
        lines += [doc.doc, ""]
    lines.append(doc.calling)
    if doc.firstresult:
        lines += ["", "The first implementation that returns something other than `None` wins."]
    if doc.historic:
        lines += ["", "Historic: a plugin registered later is called with the earlier calls."]
    return lines


# --- sof hooks -----------------------------------------------------------------------------


def register(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser(
        "hooks",
        help="the hook reference: every hook a plugin can implement (as docs/hooks.md)",
    )
    p.add_argument("name", nargs="?", metavar="HOOK", help="show this hook only")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_hooks)


def cmd_hooks(args: argparse.Namespace) -> int:
    from sof_core.cli import common
    from sof_core.cli.output import UsageError, print_json

    common.not_empty(args.name, "HOOK", "a hook name (`sof hooks` lists them)")
    docs = hook_docs()
    if args.name:
        wanted = args.name if args.name.startswith("sof_") else f"sof_{args.name}"
        chosen = [d for d in docs if d.name == wanted]
        if not chosen:
            import difflib

            close = difflib.get_close_matches(wanted, [d.name for d in docs], n=1)
            hint = f"; did you mean {close[0]!r}?" if close else "; `sof hooks` lists them"
            raise UsageError(f"no hook named {args.name!r}{hint}")
        if args.json:
            print_json(chosen[0].to_dict())
        else:
            print("\n".join(section(chosen[0])))
        return 0
    if args.json:
        print_json([d.to_dict() for d in docs])
    else:
        print(reference_markdown(), end="")
    return 0
