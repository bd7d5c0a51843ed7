"""The child process of ``sof plugins check`` (``sof_core.cli.contract_command``).

``python -m sof_core.cli.contract_child --events FILE [NAME...]`` runs ``check_plugins`` and
writes each check as it starts and ends to FILE, one JSON line each, flushed before the
plugin's code runs next: what the parent reads when the child dies.
"""

from __future__ import annotations

import json
import sys
from typing import Any

#: Exit code of a child that could not start checking (its message is in the events).
NOT_STARTED = 3


def main(argv: list[str]) -> int:
    import argparse

    from sof_core.cli.contract import check_plugins
    from sof_core.cli.main import configure_logging
    from sof_core.errors import SOFError

    parser = argparse.ArgumentParser(prog="python -m sof_core.cli.contract_child")
    parser.add_argument("--events", required=True)
    parser.add_argument("names", nargs="*")
    args = parser.parse_args(argv)
    configure_logging()  # warnings and SOF_TRACE_PLUGINS lines as the `sof` command writes them
    with open(args.events, "a", encoding="utf-8") as out:

        def listener(event: str, data: dict[str, Any]) -> None:
            out.write(json.dumps([event, data]) + "\n")
            out.flush()  # with the kernel before the plugin's code runs next

        try:
            check_plugins(args.names or None, listener=listener)
        except LookupError as exc:
            listener("error", {"type": "LookupError", "message": str(exc.args[0])})
            return NOT_STARTED
        except SOFError as exc:  # a broken config file, say: nothing was checked
            listener("error", {"type": type(exc).__name__, "message": str(exc)})
            return NOT_STARTED
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
