"""``sof_core.lazy_exports``: a package's names imported with their module on first read."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest


def _package(root: Path, listed: bool) -> None:
    package = root / "lazy_demo_pkg"
    package.mkdir()
    (package / "heavy.py").write_text("LOADS = []\nLOADS.append(1)\ndef answer():\n    return 42\n")
    (package / "extra.py").write_text("NAME = 'extra'\n")
    (package / "needs.py").write_text("import not_installed_anywhere\n")
    all_line = '__all__ = ["VERSION", "answer"]\n' if listed else ""
    (package / "__init__.py").write_text(textwrap.dedent("""
        from sof_core import lazy_exports

        VERSION = "1"
        __getattr__, __dir__ = lazy_exports(__name__, {"answer": "lazy_demo_pkg.heavy"})
    """) + all_line)


@pytest.mark.parametrize("listed", [True, False], ids=["with __all__", "without __all__"])
def test_a_name_loads_its_module_on_first_read_only_and_is_kept(tmp_path: Path,
                                                                 listed: bool) -> None:
    _package(tmp_path, listed)
    code = textwrap.dedent("""
        import sys
        import lazy_demo_pkg
        assert "lazy_demo_pkg.heavy" not in sys.modules
        assert lazy_demo_pkg.answer() == 42
        from lazy_demo_pkg import answer
        assert answer is lazy_demo_pkg.__dict__["answer"]  # kept: no second lookup
        assert sys.modules["lazy_demo_pkg.heavy"].LOADS == [1]  # imported once
        try:
            lazy_demo_pkg.missing
        except AttributeError as exc:
            assert str(exc) == "module 'lazy_demo_pkg' has no attribute 'missing'", exc
        else:
            raise AssertionError("no AttributeError")
        # A submodule not in the exports is imported when first read through its package.
        assert "lazy_demo_pkg.extra" not in sys.modules
        assert lazy_demo_pkg.extra.NAME == "extra"
        assert sys.modules["lazy_demo_pkg.extra"] is lazy_demo_pkg.extra
        assert not hasattr(lazy_demo_pkg, "__wrapped__")  # dunders are never looked up
        try:  # a submodule whose own import fails says what is missing
            lazy_demo_pkg.needs
        except ModuleNotFoundError as exc:
            assert exc.name == "not_installed_anywhere", exc
        else:
            raise AssertionError("no ModuleNotFoundError")
        print(sorted(n for n in dir(lazy_demo_pkg) if n not in ("extra", "needs")))
    """)
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    names = ast.literal_eval(done.stdout)
    if listed:
        assert names == ["VERSION", "answer"]
    else:
        assert {"VERSION", "answer"} <= set(names)
