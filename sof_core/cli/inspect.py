"""``sof plugins [NAME]`` and ``sof skills [NAME]``: what is installed and what it provides.

Conflict information (``Registry.contested()``, ``PluginRecord.conflicts``) is read with
``getattr`` so these listings work with any registry that offers less.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from sof_core.cli import common
from sof_core.cli.completion import COMPLETIONS
from sof_core.cli.output import UsageError, fail, print_json, render_table

if TYPE_CHECKING:
    from sof_core.plugins import PluginRecord, Registry


def register(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser(
        "plugins",
        help="list installed plugins, their status and load errors; or show one; "
        "`sof plugins check [NAME...]` runs the plugin contract",
    )
    name = p.add_argument(
        "name", nargs="*", metavar="NAME",
        help="show this plugin in detail; `check [NAME...]` checks plugins against the "
        "contract (default: every installed plugin)",
    )
    setattr(name, COMPLETIONS, ["check"])  # offered by shell completion after `sof plugins`
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--all", action="store_true", help="include SOF's built-in plugins")
    p.set_defaults(func=cmd_plugins)

    p = sub.add_parser(
        "skills", help="list registered skills with their inputs and outputs; or show one"
    )
    p.add_argument("name", nargs="?", metavar="NAME", help="show this skill in detail")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_skills)


# --- sof plugins -------------------------------------------------------------------------


def cmd_plugins(args: argparse.Namespace) -> int:
    from sof_core.cli.plugin_listing import load_listing
    from sof_core.config import load_config
    from sof_core.plugins.loader import contested_message

    if args.name and args.name[0] == "check":  # the contract: sof_core.cli.contract
        from sof_core.cli.contract_command import cmd_check

        return cmd_check(args.name[1:], args)
    if len(args.name) > 1:
        raise UsageError("sof plugins takes one NAME (or `check NAME...`)")
    for name in args.name:
        common.not_empty(name, "NAME", "a plugin or distribution name (`sof plugins --all` "
                         "lists them)")
    config = load_config()
    strict = config.strict_plugins
    # Loaded with the settings as they are, strict mode included (it also fails a plugin
    # whose import is over the time budget); its final error is reported below, after the
    # table, so every plugin is listed. Loaded in a forked child where there is fork, so a
    # plugin that ends the process is listed as failed (cli/plugin_listing.py).
    listing = load_listing(config)
    every = listing.records
    if args.name:
        found = _find_plugins(args.name[0], every)
        if args.json and len(found) > 1:
            print_json([r.to_dict() for r in found])
            return 1 if any(r.status == "failed" for r in found) else 0
        codes = []
        for number, record in enumerate(found):
            if number:
                print()
            codes.append(_show_plugin(record, as_json=args.json))
        return max(codes)
    records = every if args.all else [r for r in every if r.source != "builtin"]
    if args.json:
        print_json([r.to_dict() for r in records])
    elif records:
        rows = [
            (
                r.name,
                r.version or "-",
                r.distribution or f"({r.source})",
                r.status,
                ", ".join(h.removeprefix("sof_") for h in r.hooks) or "-",
                "-" if r.import_time_ms is None else f"{r.import_time_ms:.1f}",
                r.error or "",
            )
            for r in records
        ]
        print(
            render_table(
                ["PLUGIN", "VERSION", "DISTRIBUTION", "STATUS", "HOOKS", "IMPORT MS", "ERROR"],
                rows,
            )
        )
        _print_notes("conflicts", [(r.name, getattr(r, "conflicts", None)) for r in records])
        _print_notes("warnings", [(r.name, getattr(r, "warnings", None)) for r in records])
    else:
        print("no SOF plugins installed (entry point group 'sof.plugins')")
    failed = [r for r in records if r.status == "failed"]
    if failed and strict:
        return fail(f"strict mode: {len(failed)} plugin(s) failed to load", 1)
    contested = listing.contested
    if contested and strict:
        return fail("strict mode: " + contested_message(contested), 1)
    return 0


def _print_notes(title: str, notes: Iterable[tuple[str, Sequence[str] | None]]) -> None:
    lines = [f"  {name}: {note}" for name, items in notes for note in items or ()]
    if lines:
        print(f"\n{title}:")
        print("\n".join(lines))


def _find_plugins(name: str, records: Sequence[PluginRecord]) -> list[PluginRecord]:
    """The records ``name`` names: the plugin of that entry-point name, every plugin the
    distribution of that name declares (sof-serve declares ``monitor`` and ``serve``), or
    every record of an entry-point name several distributions declare (listed as ``name
    (distribution)``)."""
    from sof_core.plugins.loader import records_named

    found = records_named(name, records)
    if found:
        return found
    known = [r.name for r in records] + [r.distribution for r in records if r.distribution]
    raise UsageError(f"no plugin named {name!r}"
                     f"{_suggest(name, known) or '; `sof plugins --all` lists them'}")


def _show_plugin(record: PluginRecord, as_json: bool) -> int:
    if as_json:
        print_json(record.to_dict())
        return 1 if record.status == "failed" else 0
    fields: list[tuple[str, str]] = [
        ("distribution", " ".join(filter(None, [record.distribution, record.version])) or "-"),
        ("module", record.module or "-"),
        ("source", record.source),
        ("status", record.status),
    ]
    if record.error:
        fields.append(("error", f"{record.error_type or 'Error'}: {record.error}"))
    fields += [
        ("requires", f"sof-core{record.requires}" if record.requires else "-"),
        ("import time",
         "-" if record.import_time_ms is None else f"{record.import_time_ms:.1f} ms"),
        ("hooks", ", ".join(record.hooks) or "-"),
    ]
    for kind, names in sorted(record.provides.items()):
        fields.append((kind.replace("_", " "), ", ".join(names) or "-"))
    offered = getattr(record, "offered", None)
    if record.status == "failed" and offered:
        fields.append(("offered", ", ".join(offered)))
    for title in ("conflicts", "warnings"):
        for note in getattr(record, title, None) or ():
            fields.append((title[:-1], note))
    print(f"plugin {record.name}")
    _print_fields(fields)
    return 1 if record.status == "failed" else 0


# --- sof skills --------------------------------------------------------------------------


def cmd_skills(args: argparse.Namespace) -> int:
    common.not_empty(args.name, "NAME", "a skill name (`sof skills` lists them)")
    manager = common.manager()
    registry = manager.registry
    if args.name:
        return _show_skill(registry, args.name, as_json=args.json)
    entries = list(registry.skills())
    if args.json:
        # Unavailable names too, marked so (a consumer that wants runnable skills filters
        # on "available"): the text form lists them under "unavailable:".
        listed = [{**e.describe(), "available": True} for e in entries]
        listed += [{"name": name, "available": False, "unavailable_reason": why}
                   for name, why in registry.unavailable().items()]
        print_json(listed)
        return 0
    if entries:
        rows = []
        for e in entries:
            inputs = list(e.spec.required_inputs) + [f"{k}?" for k in e.spec.optional_inputs]
            rows.append(
                (
                    e.spec.name,
                    e.spec.version,
                    ", ".join(inputs) or "-",
                    ", ".join(e.spec.output_keys) or "-",
                    e.plugin,
                )
            )
        print(render_table(["SKILL", "VERSION", "INPUTS (? = optional)", "OUTPUTS", "PLUGIN"],
                           rows))
    else:
        print("no skills registered; install a skill plugin (see `sof plugins`)")
    unavailable = registry.unavailable()
    if unavailable:
        print("\nunavailable:")
        for name, why in unavailable.items():
            print(f"  {name}: {why}")
    return 0


def _show_skill(registry: Registry, name: str, as_json: bool) -> int:
    entry = registry.skill(name)
    if entry is None:
        why = registry.unavailable().get(name)
        if why is not None:
            return fail(f"skill {name!r} is unavailable: {why}", 1)
        from sof_core.graph.validate import may_provide

        failures = getattr(registry, "failures", None)
        maybe = may_provide(failures() if callable(failures) else ())
        if maybe:  # the name is likely theirs: no other plugin's skill is suggested
            raise UsageError(f"no skill named {name!r}{maybe}")
        raise UsageError(
            f"no skill named {name!r}"
            f"{_suggest(name, registry.skill_names()) or '; `sof skills` lists them'}"
        )
    spec = entry.spec
    others = registry.skills()
    read_by = sorted(e.spec.name for e in others if set(e.spec.inputs) & set(spec.output_keys)
                     and e.spec.name != spec.name)
    providers = getattr(registry, "providers", None)
    also = [p for p in (providers(name) if callable(providers) else []) if p != entry.plugin]
    if as_json:
        print_json({**entry.describe(), "distribution": entry.distribution,
                    "read_by": read_by, "also_offered_by": also})
        return 0
    types = spec.describe()["types"]

    def keys(names: Iterable[str]) -> str:
        shown = [f"{k}: {types[k]}" if k in types else k for k in names]
        return ", ".join(shown) or "-"

    plugin = entry.plugin + (f" (distribution {entry.distribution})" if entry.distribution else "")
    fields = [
        ("description", spec.description),
        ("category", spec.category),
        ("plugin", plugin),
        ("kind", "tool" if entry.kind == "tools" else "skill"),
        ("required inputs", keys(spec.required_inputs)),
        ("optional inputs", keys(spec.optional_inputs)),
        ("outputs", keys(spec.output_keys)),
        ("read by", ", ".join(read_by) or "-"),
        ("parallel", "yes" if spec.can_run_parallel else "no (runs in a stage of its own)"),
        ("async", "yes" if spec.is_async else "no"),
        ("max time", "-" if spec.max_execution_time is None
         else f"{spec.max_execution_time:g} s"),
        ("external access", "yes" if spec.requires_external_access else "no"),
        ("vets content", "yes" if spec.vets_content else "no"),
    ]
    if entry.kind == "tools" or spec.permissions:  # docs/security.md
        fields += [
            ("permissions", ", ".join(sorted(spec.permissions)) or "none"),
            ("output cap", "policy default" if spec.max_output_bytes is None
             else f"{spec.max_output_bytes:,} bytes"),
            ("calls/minute", "no limit" if spec.calls_per_minute is None
             else str(spec.calls_per_minute)),
        ]
    if also:
        fields.append(("also offered by", ", ".join(also)))
    print(f"skill {spec.name} {spec.version}")
    _print_fields(fields)
    return 0


# --- helpers -------------------------------------------------------------------------------


def _print_fields(fields: Sequence[tuple[str, str]]) -> None:
    width = max(len(label) for label, _ in fields)
    for label, value in fields:
        print(f"  {label.ljust(width)}  {value}")


def _suggest(name: str, known: Iterable[str]) -> str:
    """``; did you mean 'X'?`` for a close spelling, a different case, or a fragment."""
    import difflib

    names = list(dict.fromkeys(known))
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    if not close:
        folded = name.lower()
        close = [k for k in names if k.lower() == folded] or [
            k for k in names if folded in k.lower()
        ]
    if not close:
        return ""
    if len(close) == 1:
        return f"; did you mean {close[0]!r}?"
    return f"; did you mean one of {', '.join(repr(c) for c in close[:5])}?"
