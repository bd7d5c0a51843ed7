"""The ``sof`` command: the parser, logging, plugin commands and error handling.

One module per command group: ``inspect`` (plugins, skills), ``plan`` (plan, graph, validate),
``run`` and ``config``; plugins add theirs through ``sof_register_commands``.

Exit codes: 0 success; 1 the thing asked about is broken (invalid plan, failed run, broken
plugin in strict mode); 2 usage or configuration error. Expected errors print one line on
stderr, never a traceback; an unexpected one prints one line too, and its traceback with
``SOF_LOG_LEVEL=DEBUG``. Nothing heavy is imported before a command needs it, so
``sof --version`` stays fast.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from sof_core._bounded import call_bounded
from sof_core._installed import ENTRY_POINT_GROUP
from sof_core._installed import installed_plugins as installed_plugins
from sof_core._version import __version__
from sof_core.cli import command_cache, completion, hooks, inspect, new_plugin, plan, run, startup
from sof_core.cli import config as config_cli
from sof_core.cli.output import (
    OutputWriteError,
    UsageError,
    fail,
    one_line,
    take_output_failure,
    warn,
)

if TYPE_CHECKING:
    from sof_core.plugins import PluginManager

CORE_COMMANDS = (
    "plugins", "skills", "plan", "graph", "validate", "run", "config", "hooks", "new-plugin"
)
log = logging.getLogger("sof.cli")


# --- parser --------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sof",
        description="SOF, the SAM Orchestration Framework: skills as plugins, planned, "
        "validated as a graph and executed.",
        epilog="Installed plugins may add more commands (e.g. `sof memory`); see `sof plugins`.",
    )
    parser.add_argument(
        "--version", action=_VersionAction, help="show SOF's version and its plugins' and exit"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    inspect.register(sub)
    plan.register(sub)
    run.register(sub)
    config_cli.register(sub)
    hooks.register(sub)
    new_plugin.register(sub)
    completion.register(sub, parser)  # covers plugin commands: not in CORE_COMMANDS
    return parser


class _VersionAction(argparse.Action):
    """``sof --version``: the core's version and every installed plugin's, from metadata."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS,
                 default: Any = argparse.SUPPRESS, help: str | None = None) -> None:
        super().__init__(option_strings, dest, nargs=0, default=default, help=help)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        print(version_text())
        parser.exit()


def version_text() -> str:
    """Read from installed metadata only: no plugin (and no pydantic) is imported."""
    lines = [f"sof-core {__version__} (Python {sys.version.split()[0]})"]
    plugins = installed_plugins()
    if not plugins:
        lines.append(f"plugins: none installed (entry point group {ENTRY_POINT_GROUP!r})")
        return "\n".join(lines)
    lines.append("plugins:")
    width = max(len(name) for name, _, _ in plugins)
    for name, dist, version in plugins:
        lines.append(f"  {name.ljust(width)}  {dist} {version}")
    return "\n".join(lines)


def _subcommands(parser: argparse.ArgumentParser) -> argparse._SubParsersAction[Any]:
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))


def _add_plugin_commands(parser: argparse.ArgumentParser, manager: PluginManager) -> bool:
    """Let each plugin add its commands; one that raises, clashes with a command already
    there or does not return within ``plugin_import_timeout`` is skipped with a warning and
    leaves no half-added command behind. False if one was.

    Each hook fills a scratch copy of the subcommands in a daemon thread of its own
    (``call_bounded``), and its commands are moved over only once it returned cleanly: a
    hook that hangs (it asks a server what to offer) cannot hold ``sof --help``, and what
    it adds later never reaches the parser being used.
    """
    sub = _subcommands(parser)
    limit = manager.config.plugin_import_timeout
    clean = True
    for impl in manager.hook_manager.hook.sof_register_commands.get_hookimpls():
        outcome = call_bounded(functools.partial(_commands_of, impl, sub), limit,
                               f"sof-commands-{impl.plugin_name}", main_thread_retry=True)
        if outcome is None:
            problem = f"sof_register_commands did not return within {limit:g} s " \
                      "(plugin_import_timeout)"
        elif not outcome[0]:
            error = outcome[1]
            if isinstance(error, KeyboardInterrupt):  # Ctrl-C: the user's
                raise error
            problem = f"sof_register_commands raised {type(error).__name__}: {error}"
        else:
            scratch = outcome[1]
            taken = sorted(set(scratch._name_parser_map) & set(sub._name_parser_map))
            if not taken:
                sub._name_parser_map.update(scratch._name_parser_map)
                sub._choices_actions.extend(scratch._choices_actions)
                continue
            problem = f"its command(s) {taken} clash with commands already there"
        clean = False
        warn(f"plugin {impl.plugin_name!r} failed to add its commands ({problem}); they are "
             "unavailable")
    return clean


def _commands_of(impl: Any, sub: argparse._SubParsersAction[Any]
                 ) -> argparse._SubParsersAction[Any]:
    """A fresh, empty copy of ``sub``, filled by one plugin's ``sof_register_commands``."""
    scratch = argparse._SubParsersAction(
        option_strings=[], prog=sub._prog_prefix, parser_class=sub._parser_class,
        dest=sub.dest, metavar=sub.metavar)
    arguments = {"subparsers": scratch}
    impl.function(*[arguments[name] for name in impl.argnames])
    return scratch


# --- logging -------------------------------------------------------------------------------


class _OwnLogsOnly(logging.Filter):
    """Below WARNING, only SOF's own loggers (``sof``, ``sof.*``) reach the terminal.

    Third-party libraries set their own loggers' levels when imported (Dask's
    ``distributed`` logs ~40 INFO lines per run), so levels alone cannot keep them quiet.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or _is_sof(record.name)


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        if not _is_sof(record.name):
            return f"sof: {record.levelname}: [{record.name}] {text}"
        return f"sof: {record.levelname}: {text}"


def _is_sof(name: str) -> bool:
    return name == "sof" or name.startswith(("sof.", "sof_"))


def _file_log_level() -> str | None:
    """``log_level`` in the config file (SAM's ``config/sof_config.json`` included), read
    without building the configuration so start-up stays cheap; None when the file does
    not set it or cannot be read (the configuration reports a bad file when it loads)."""
    from sof_core._paths import config_file, read_cache_file

    path = config_file()
    raw = read_cache_file(path, 1_000_000)  # bounded, and never blocks on a FIFO or device
    if raw is None:
        return None
    try:
        if path.suffix == ".toml":
            if sys.version_info >= (3, 11):
                import tomllib
            else:  # pragma: no cover - exercised on 3.10 only
                import tomli as tomllib
            data = tomllib.loads(raw.decode("utf-8"))
        else:
            import json

            data = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    value = data.get("log_level") if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


def configure_logging() -> None:
    """Warnings reach the terminal; ``log_level`` (``SOF_LOG_LEVEL``, else the config file)
    asks for more or fewer of SOF's own logs.

    Other libraries stay at WARNING unless the level is DEBUG, which shows everything.
    (An unknown level is reported by the configuration, ``log_level``.)
    """
    chosen = os.environ.get("SOF_LOG_LEVEL", "").strip() or _file_log_level() or "WARNING"
    level = chosen.strip().upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        level = "WARNING"
    root = logging.getLogger()
    handler = next((h for h in root.handlers if isinstance(h, _Handler)), None)
    if handler is None:  # main() may run more than once in one process (tests, hosts)
        handler = _Handler()
        handler.setFormatter(_Formatter("%(message)s"))
        root.addHandler(handler)
    handler.filters.clear()
    if level == "DEBUG":
        root.setLevel(logging.DEBUG)
    else:
        root.setLevel(logging.WARNING)
        handler.addFilter(_OwnLogsOnly())
    logging.getLogger("sof").setLevel(level)


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """The ``sof`` command's stderr handler (a class of its own so it is installed once).

    It writes to ``sys.stderr`` as it is when a record comes, like logging's last resort:
    the handler outlives ``main()``, and a host or a test that replaced ``sys.stderr``
    around the call (and closed its stand-in) would otherwise get "--- Logging error ---
    ValueError: I/O operation on closed file" for every later warning.
    """

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        """``StreamHandler`` sets one; the current ``sys.stderr`` is always used instead."""


# --- entry point ---------------------------------------------------------------------------


def _wants_plugins(argv: Sequence[str]) -> bool:
    """Plugin commands are needed for a plugin's command and for the top-level help."""
    for arg in argv:
        if arg in ("-h", "--help"):
            return True
        if arg == "--version":
            return False
        if not arg.startswith("-"):
            return arg not in CORE_COMMANDS
    return True  # `sof` alone prints the help


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``sof`` command in this process and return its exit code.

    Called from Python (a host, a test), it leaves the process's logging as it found it:
    the command's stderr handler and levels are for the command only, so a later
    ``caplog`` or host logger sees SOF's records as before (``logging_restored``)."""
    with logging_restored():
        return _run(argv)


def console_main() -> int:
    """``main()`` for the ``sof`` console script: its logging stays set up until the
    process exits, for what is logged while it leaves (``cli.leave``)."""
    return _run(None)


def _run(argv: Sequence[str] | None) -> int:
    paused = startup.pause()  # until the plugins are loaded: see cli/startup.py
    loader = sys.modules.get("sof_core.plugins.loader")
    if loader is not None:  # called again in one process: each command loads afresh
        loader.reset_plugin_manager()
    try:
        return _main(argv)
    finally:
        startup.restore(paused)


@contextlib.contextmanager
def logging_restored() -> Iterator[None]:
    """Undo what ``configure_logging`` does to the process's logging (the root handler it
    adds, the levels and filters it sets) when the block ends."""
    root = logging.getLogger()
    sof = logging.getLogger("sof")
    handlers, level, sof_level = list(root.handlers), root.level, sof.level
    streams = {id(h): getattr(h, "stream", None) for h in handlers}
    filters = {id(h): list(h.filters) for h in handlers}
    try:
        yield
    finally:
        for handler in list(root.handlers):
            if handler not in handlers:
                root.removeHandler(handler)
        for handler in handlers:
            if streams[id(handler)] is not None:
                handler.stream = streams[id(handler)]  # type: ignore[attr-defined]
            handler.filters[:] = filters[id(handler)]
        root.setLevel(level)
        sof.setLevel(sof_level)


def _main(argv: Sequence[str] | None) -> int:
    from sof_core.errors import SOFError

    argv = list(sys.argv[1:] if argv is None else argv)
    configure_logging()
    parser = build_parser()
    try:
        if _wants_plugins(argv):
            key = command_cache.fingerprint()  # before loading: a change meanwhile is a miss
            if not (_top_help(argv) and _add_cached_commands(parser, key)):
                _load_plugin_commands(parser, argv, key)
        args = parser.parse_args(argv)
        if getattr(args, "func", None) is None:
            parser.print_help()
            code = 0
        else:
            code = int(args.func(args))
        _flush_output()  # a write that fails is this command's error (OutputWriteError)
        return code
    except OutputWriteError as exc:
        _silence_stdout()  # what is still held would fail again at exit
        take_output_failure()  # reported here
        return fail(f"could not write the output: {exc.strerror or exc}", 1)
    except UsageError as exc:
        return fail(str(exc), exc.code)
    except SOFError as exc:
        return fail(
            str(exc), 1 if type(exc).__name__.startswith(("Plan", "Plugin", "Goal")) else 2
        )
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        _silence_stdout()
        return 0
    except Exception as exc:
        if type(exc).__name__ == "ValidationError":  # pydantic: bad data on the command line
            from sof_core.uif import describe_validation_error

            return fail(describe_validation_error(exc, "input"))  # type: ignore[arg-type]
        return _unexpected(exc)


def _top_help(argv: Sequence[str]) -> bool:
    """``sof``, ``sof --help``: the help that lists every command, plugins' included."""
    return not argv or argv[0] in ("-h", "--help")


def _add_cached_commands(parser: argparse.ArgumentParser, key: str) -> bool:
    """The plugin commands as the last clean load left them (``command_cache``), for the
    help alone; False when there is none for the installed plugins and settings as they
    are now (``key``)."""
    commands = command_cache.cached_commands(key)
    if commands is None:
        return False
    sub = _subcommands(parser)
    for name, text in commands:
        if name not in sub.choices:
            sub.add_parser(name, help=text)
    return True


def _load_plugin_commands(parser: argparse.ArgumentParser, argv: Sequence[str],
                          key: str) -> None:
    """For the help, a plugin problem is a warning (the core commands still work); for a
    plugin's own command, it is the error. A clean load is cached under ``key``."""
    from sof_core.cli import common
    from sof_core.errors import SOFError

    helping = not argv or argv[0].startswith("-")
    try:
        manager = common.manager()
    except SOFError as exc:
        if not helping:
            raise
        warn(f"plugin commands are not listed: {exc}")
        return
    sub = _subcommands(parser)
    core = set(sub.choices)
    if _add_plugin_commands(parser, manager) and _loaded_cleanly(manager):
        helps = {action.dest: action.help or "" for action in sub._choices_actions}
        command_cache.remember(key, [(name, helps.get(name, "")) for name in sub.choices
                                     if name not in core])


def _loaded_cleanly(manager: PluginManager) -> bool:
    """No plugin failed, warned (a slow import) or was skipped for unreadable metadata:
    the help must go on saying so, so nothing is cached."""
    records = manager.records.values()
    return not (manager.failed() or manager.discovery_warnings
                or any(getattr(r, "warnings", None) for r in records))


def _unexpected(exc: BaseException) -> int:
    """A bug (SOF's or a plugin's): one line, the traceback only at debug level."""
    log.debug("unexpected error", exc_info=exc)
    message = one_line(str(exc))
    if len(message) > 300:
        message = message[:297] + "..."
    detail = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    hint = "" if log.isEnabledFor(logging.DEBUG) else (
        " (run with SOF_LOG_LEVEL=DEBUG for the traceback)")  # shown above it, otherwise
    return fail(f"{detail}{hint}", 1)


def _flush_output() -> None:
    """Write what stdout still holds now, while a failure can be reported (a stdout that
    is closed, as a host's stand-in may be, has nothing to write)."""
    with contextlib.suppress(ValueError):
        sys.stdout.flush()


def _silence_stdout() -> None:
    """The reader went away (``sof ... | head``): drop what is left instead of a warning."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    sys.exit(main())
