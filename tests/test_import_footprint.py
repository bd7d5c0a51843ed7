"""``sof_core.testing.import_footprint``: what each phase of some code imports and compiles,
measured in a fresh interpreter."""

from __future__ import annotations

import pytest

from sof_core.testing import import_footprint


def test_each_phase_reports_its_own_imports_and_pattern_compiles() -> None:
    first, second = import_footprint(
        "import colorsys",
        "import re\nPATTERN = re.compile('x+')\nimport colorsys, wave",
    )
    assert first.loaded(["colorsys", "wave"]) == ["colorsys"]
    assert second.loaded(["colorsys", "wave"]) == ["wave"]  # colorsys came in phase 1
    assert not first.compiled
    assert second.compiled == ("<phase 2>",)
    assert first.compiled_in("sof_core") == []


def test_the_setup_is_not_measured_and_phases_share_a_namespace() -> None:
    [only] = import_footprint("assert colorsys.hls_to_rgb(0, 0, 0) == (0, 0, 0)",
                              setup="import colorsys")
    assert not only.loaded(["colorsys"])


def test_a_phase_that_raises_fails_with_its_traceback() -> None:
    with pytest.raises(AssertionError, match=r"(?s)phase 2 raised:.*ValueError: no"):
        import_footprint("x = 1", "raise ValueError('no')")
