"""Fail if a relative link in docs/ or README.md points at a missing file (``nox -s docs``)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
#: Fenced blocks and inline code spans: Markdown shown as text there is not a link.
CODE = re.compile(r"^```.*?^```|`[^`\n]*`", re.MULTILINE | re.DOTALL)


def broken_links() -> list[str]:
    problems = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        for target in LINK.findall(CODE.sub("", page.read_text(encoding="utf-8"))):
            if "://" in target or target.startswith("mailto:"):
                continue
            if not (page.parent / target).exists():
                problems.append(f"{page.relative_to(ROOT)}: broken link to {target}")
    return problems


if __name__ == "__main__":
    found = broken_links()
    print("\n".join(found) or "all documentation links resolve")
    sys.exit(1 if found else 0)
