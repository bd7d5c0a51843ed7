"""What an isolated skill sends back is read without trusting its process.

``pickle.loads`` calls whatever the bytes name: a reply holding an object whose
``__reduce__`` returns ``(os.mkdir, (path,))`` ran ``os.mkdir`` in the host, whether the
skill wrote it or code that took over its worker forged it, and isolation was undone.
The host now loads plain data, standard value types, exceptions and the classes of the
skill's own package, and refuses the rest with ``SkillReplyRefusedError``.
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).parent
if str(HERE) not in sys.path:  # a worker imports the skills' module by its name
    sys.path.insert(0, str(HERE))

import process_isolation_skills as skills  # noqa: E402

from sof_core import (  # noqa: E402
    UIF,
    ConfigError,
    SkillDefinitionError,
    SkillReplyRefusedError,
    SOFConfig,
)
from sof_core.execution.isolation import isolation_pool  # noqa: E402
from sof_core.security.unpickling import RefusedGlobal, load_reply  # noqa: E402
from sof_core.testing import make_engine  # noqa: E402


def run(skill_classes: list[Any], data: dict[str, Any] | None = None, **config: Any) -> Any:
    engine = make_engine(skill_classes, **config)
    plan = [c.skill_name for c in skill_classes]
    return engine.execute_plan(plan, UIF(input_query="q", intermediate_data=data or {}))


def only(report: Any) -> Any:
    [result] = report.results
    return result


def test_a_write_that_would_run_code_when_unpickled_is_refused_in_the_host(
        tmp_path: Path) -> None:
    marker = tmp_path / "made-by-the-host"
    pool = isolation_pool()
    before = pool.stats()
    report = run([skills.WritesAPayload], {"marker": str(marker)})
    result = only(report)
    assert result.error_type == "SkillReplyRefusedError"
    assert "sent back posix.mkdir" in result.error
    assert not marker.exists()
    assert "payload" not in report.uif.intermediate_data
    assert pool.stats()["killed"] == before["killed"] + 1  # its worker is not used again
    assert run([skills.Where]).status == "success"


def test_a_reply_forged_by_code_that_took_over_its_worker_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "made-by-the-host"
    report = run([skills.TakesOverItsWorker], {"marker": str(marker)})
    result = only(report)
    assert result.error_type == "SkillReplyRefusedError"
    assert "posix.mkdir" in result.error
    assert not marker.exists()
    assert run([skills.Where]).status == "success"  # the taken-over worker was replaced


def test_an_exception_that_would_run_code_when_unpickled_is_told_by_name_only(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = only(run([skills.RaisesAPayload], {"marker": str(elsewhere)}))
    assert result.status == "failed"
    assert result.error_type == "SkillExecutionError"
    assert "raised _Payload" in result.error
    assert Path.cwd() == tmp_path


def test_plain_data_standard_values_and_the_skills_own_classes_come_back() -> None:
    report = run([skills.WritesValues])
    assert report.status == "success", report.errors
    values = report.uif.intermediate_data["values"]
    assert values["plain"][:4] == [1, 2.5, "three", b"four"]
    assert str(values["when"]) == "2026-11-28 01:02:03+00:00"
    assert (str(values["money"]), str(values["ratio"]), values["id"].int) == ("1.10", "1/3", 7)
    assert str(values["path"]) == "/a/b" and values["counts"]["a"] == 2
    assert isinstance(values["record"], skills.Record) and values["record"].text == "mine"


def test_an_exception_class_the_host_has_imported_comes_back_as_itself() -> None:
    result = only(run([skills.RaisesJSONError]))
    assert result.error_type == "JSONDecodeError"


def test_another_packages_class_is_refused_until_trusted() -> None:
    refused = only(run([skills.WritesANamespace]))
    assert refused.error_type == "SkillReplyRefusedError"
    assert "argparse.Namespace" in refused.error
    assert "isolation_reply_packages" in refused.error  # what to do
    trusted = run([skills.TrustsArgparse])
    assert trusted.status == "success", trusted.errors
    assert trusted.uif.intermediate_data["namespace"] == argparse.Namespace(answer=42)
    configured = run([skills.WritesANamespace], isolation_reply_packages=["argparse"])
    assert configured.status == "success", configured.errors


@pytest.mark.parametrize("package", ["builtins", "os", "operator", "functools", "sof_core"])
def test_a_package_that_can_run_any_code_cannot_be_trusted(package: str) -> None:
    with pytest.raises(SkillDefinitionError, match="cannot be trusted whole"):
        class Trusts(skills.WritesANamespace):
            skill_name = "TrustsTooMuch"
            isolation_reply_packages = (package,)
    with pytest.raises(ConfigError, match="cannot be trusted whole"):
        SOFConfig(isolation_reply_packages=[package])
    forged = b"cbuiltins\ngetattr\n."
    with pytest.raises(RefusedGlobal) as caught:  # nor by calling the loader directly
        load_reply(forged, open_packages=["builtins"])
    assert not caught.value.trustable


def test_a_refused_global_of_such_a_package_is_not_met_with_advice_to_trust_it() -> None:
    from sof_core.errors import SkillReplyRefusedError as Refused

    assert "write plain data instead" in str(Refused("s", "builtins.getattr", False))
    assert "isolation_reply_packages" in str(Refused("s", "argparse.Namespace"))


def test_bad_package_lists_are_definition_and_config_errors() -> None:
    with pytest.raises(SkillDefinitionError, match="isolation_reply_packages"):
        class Bad(skills.WritesANamespace):
            skill_name = "BadPackages"
            isolation_reply_packages = "argparse"  # type: ignore[assignment]
    with pytest.raises(ConfigError, match="isolation_reply_packages"):
        SOFConfig(isolation_reply_packages=["not a package"])


@pytest.mark.parametrize(("value", "refused"), [
    (pickle.dumps(print), "builtins.print"),
    (b"cos\nsystem\n(S'true'\ntR.", "os.system"),
    (pickle.dumps(json.loads), "json.loads"),  # a function of an imported module
    (pickle.dumps(argparse.ArgumentParser), "argparse.ArgumentParser"),
])
def test_the_loader_refuses_globals_before_importing_or_calling_them(
        value: bytes, refused: str) -> None:
    with pytest.raises(RefusedGlobal) as caught:
        load_reply(value)
    assert caught.value.name == refused


def test_the_loader_does_not_import_a_module_a_reply_names() -> None:
    forged = b"cantigravity\nnothing\n."
    with pytest.raises(RefusedGlobal):
        load_reply(forged)
    assert "antigravity" not in sys.modules


def test_a_sandboxed_closure_whose_result_would_run_code_is_refused(tmp_path: Path) -> None:
    from sof_core.execution.sandboxed import run_sandboxed

    marker = tmp_path / "made-by-the-host"
    payload = skills._MakesDirectory(str(marker))

    lock = threading.Lock()

    def over_a_lock() -> object:  # no pickler carries it: forked
        with lock:
            return payload

    with pytest.raises(SkillReplyRefusedError, match=r"posix\.mkdir"):
        run_sandboxed(over_a_lock, name="forked closure", timeout=10)
    with pytest.raises(SkillReplyRefusedError, match=r"posix\.mkdir"):
        run_sandboxed(lambda: payload, name="closure", timeout=10)  # by value, to a worker
    with pytest.raises(SkillReplyRefusedError, match=r"posix\.mkdir"):
        run_sandboxed(skills._MakesDirectory, (str(marker),), name="function", timeout=10)
    assert not marker.exists()


def test_a_zoneinfo_datetime_is_refused_and_a_fixed_offset_comes_back() -> None:
    import datetime
    import zoneinfo

    try:
        zone = zoneinfo.ZoneInfo("UTC")
    except zoneinfo.ZoneInfoNotFoundError:  # pragma: no cover - no time zone data here
        pytest.skip("no time zone data")
    with pytest.raises(RefusedGlobal) as caught:
        load_reply(pickle.dumps(datetime.datetime(2026, 1, 1, tzinfo=zone)))
    assert caught.value.name == "builtins.getattr"
    offset = datetime.timezone(datetime.timedelta(hours=2))
    assert str(load_reply(pickle.dumps(datetime.datetime(2026, 1, 1, tzinfo=offset)))) == (
        "2026-01-01 00:00:00+02:00")
