"""Claims of docs/configuration.md and docs/cli.md that no other test checked: each test
names the sentence it holds to. Real config files in tmp_path, real environment variables,
real ``sof`` processes; nothing of SOF is mocked."""

from __future__ import annotations

import json
import logging
import math
import os
import re
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydantic
import pytest

import sof_core.config.sources as sources
from sof_core import UIF, BaseSkillModule
from sof_core.config import (
    SAM_KEYS,
    ConfigValidationError,
    SOFConfig,
    load_config,
    unknown_env_vars,
)
from sof_core.config.manager import SOFConfigManager, reset_sof_config_managers
from sof_core.errors import ConfigError

DOCS = Path(__file__).resolve().parents[1] / "docs"
CONFIGURATION = (DOCS / "configuration.md").read_text(encoding="utf-8")


# --- helpers ----------------------------------------------------------------------------------


@pytest.fixture
def config_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private config file (not created), with every outer SOF_* variable removed."""
    for var in [v for v in os.environ if v.startswith("SOF_")]:
        monkeypatch.delenv(var)
    path = tmp_path / "config.json"
    monkeypatch.setenv("SOF_CONFIG", str(path))
    monkeypatch.setattr(sources, "_env_checked", set())  # each test sees its first warning
    reset_sof_config_managers()
    yield path
    reset_sof_config_managers()


def sof_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The outer environment without SOF_*, with a private config file and XDG folders."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOF_")}
    env.pop("COLUMNS", None)
    env["SOF_CONFIG"] = str(tmp_path / "config.json")
    for name in ("XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME"):
        env[name] = str(tmp_path / name.lower())
    env.update(extra)
    return env


def sof(*argv: str, env: dict[str, str], cwd: Path, timeout: float = 120
        ) -> subprocess.CompletedProcess[str]:
    """The real ``sof`` command in a fresh process."""
    return subprocess.run([sys.executable, "-m", "sof_core.cli", *argv], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, check=False)


def one_line_error(done: subprocess.CompletedProcess[str], code: int = 2) -> str:
    assert done.returncode == code, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


def _table_rows(text: str, header: str) -> list[list[str]]:
    """The cells of every row of each markdown table whose header row starts with ``header``."""
    rows: list[list[str]] = []
    inside = False
    for line in text.splitlines():
        if line.startswith(header):
            inside = True
            continue
        if inside and not line.startswith("|"):
            inside = False
        if inside and not line.startswith("| ---"):
            rows.append([cell.strip() for cell in line.strip().strip("|").split(" | ")])
    return rows


def _doc_value(text: str) -> Any:
    return None if text == "None" else json.loads(text)


# --- configuration.md: the tables of settings ---------------------------------------------------


def _documented_defaults() -> tuple[set[str], dict[str, Any]]:
    keys: set[str] = set()
    defaults: dict[str, Any] = {}
    for cells in _table_rows(CONFIGURATION, "| Key | Default | Meaning |"):
        names = re.findall(r"`([a-z_]+)`", cells[0])
        keys.update(names)
        values = re.findall(r"`([^`]+)`", cells[1])
        if values and len(values) == len(names):
            defaults.update(zip(names, map(_doc_value, values), strict=True))
    return keys, defaults


def test_every_setting_is_in_the_tables_with_its_documented_default() -> None:
    # "Every setting SOF reads is a field of sof_core.config.SOFConfig" and "Defaults: the
    # values in the tables below."
    keys, defaults = _documented_defaults()
    assert keys == set(SOFConfig.model_fields)
    actual = SOFConfig().model_dump()
    assert len(defaults) >= 45
    assert {key: actual[key] for key in defaults} == defaults


def test_the_default_tool_policy_allows_everything() -> None:
    # tool_policy | everything allowed | ... default_max_output_bytes (1 MiB),
    # network_isolation (auto)
    policy = SOFConfig().tool_policy
    assert policy == {"allow_tools": None, "deny_tools": [], "allow_permissions": None,
                      "deny_permissions": [], "limits": {},
                      "default_max_output_bytes": 1024 * 1024, "network_isolation": "auto"}


def test_the_sam_table_is_sam_keys() -> None:
    # "SAM's config/sof_config.json, as SAM writes it (31 keys)" / "sof_core.config.SAM_KEYS
    # holds this table."
    rows = _table_rows(CONFIGURATION, "| SAM key | SAM's default | SOF setting | Notes |")
    assert len(rows) == 31 == len(SAM_KEYS)
    for cells in rows:
        name = cells[0].strip("`")
        key = SAM_KEYS[name]
        assert key.fresh_default() == _doc_value(cells[1].strip("`")), name
        setting = None if cells[2] == "—" else cells[2].strip("`")
        assert key.setting == setting, name


def test_an_unknown_key_never_passes_silently() -> None:
    # "a pydantic model that rejects unknown keys, so a typo never passes silently"
    with pytest.raises(ConfigError) as info:
        SOFConfig(sof_rolout_percentage=5)
    assert info.value.key == "sof_rolout_percentage"


@pytest.mark.parametrize("how", ["call", "assign", "model_validate", "model_validate_json",
                                 "model_validate_strings"])
def test_every_way_into_sofconfig_raises_a_config_validation_error(how: str) -> None:
    # "Given to SOFConfig(...) directly (or assigned to one, or through
    # SOFConfig.model_validate, model_validate_json or model_validate_strings), it raises
    # ConfigValidationError: a ConfigError whose key names the first setting at fault, and
    # still pydantic's ValidationError (with its errors())"
    attempts = {
        "call": lambda: SOFConfig(log_level="LOUD", max_workers=0),
        "assign": lambda: setattr(SOFConfig(), "max_workers", 0),
        "model_validate": lambda: SOFConfig.model_validate({"max_workers": 0}),
        "model_validate_json": lambda: SOFConfig.model_validate_json('{"max_workers": 0}'),
        "model_validate_strings": lambda: SOFConfig.model_validate_strings({"max_workers": "0"}),
    }
    with pytest.raises(ConfigValidationError) as info:
        attempts[how]()
    error = info.value
    assert isinstance(error, ConfigError) and isinstance(error, pydantic.ValidationError)
    assert error.key == "max_workers"
    assert error.errors()[0]["loc"] == ("max_workers",)


def test_the_key_at_fault_is_the_first_in_declaration_order_not_in_the_call() -> None:
    # "whose key names the first setting at fault (first in the order SOFConfig declares
    # its fields, whatever order they were given in)"
    fields = list(SOFConfig.model_fields)
    assert fields.index("sof_rollout_percentage") < fields.index("max_workers")
    for given in ({"max_workers": 0, "sof_rollout_percentage": 150},
                  {"sof_rollout_percentage": 150, "max_workers": 0}):
        with pytest.raises(ConfigValidationError) as info:
            SOFConfig(**given)
        assert info.value.key == "sof_rollout_percentage"


@pytest.mark.parametrize(("key", "value"), [
    ("observer_timeout", math.inf), ("observer_timeout", math.nan),
    ("retry_backoff", 1e300), ("plugin_import_timeout", math.inf),
    ("plugin_import_timeout", 1_000_001),
])
def test_other_timeouts_are_finite_and_at_most_a_million(key: str, value: float) -> None:
    # observer_timeout "Finite."; retry_backoff "finite, at most 1,000,000";
    # plugin_import_timeout "Finite, at most 1,000,000."
    with pytest.raises(ConfigError) as info:
        SOFConfig(**{key: value})
    assert info.value.key == key
    assert getattr(SOFConfig(**{key: 1_000_000}), key) == 1_000_000


@pytest.mark.parametrize(("value", "ok"), [(0, False), (1, True), (64, True), (65, False)])
def test_isolation_workers_are_one_to_sixty_four(value: int, ok: bool) -> None:
    # isolation_workers: "Worker processes for isolated skills (1-64)"
    if ok:
        assert SOFConfig(isolation_workers=value).isolation_workers == value
    else:
        with pytest.raises(ConfigError, match="isolation_workers"):
            SOFConfig(isolation_workers=value)


# --- configuration.md: environment variables ---------------------------------------------------


@pytest.mark.parametrize(("var", "text", "key", "value"), [
    ("SOF_USE_SOF_FRAMEWORK", "true", "use_sof_framework", True),
    ("SOF_SKILL_TIMEOUT", "5", "skill_timeout", 5.0),
    ("SOF_DEFAULT_PLAN", "A,B", "default_plan", ["A", "B"]),
    ("SOF_DEFAULT_PLAN", '["A", "B"]', "default_plan", ["A", "B"]),
    ("SOF_SKILL_PROVIDERS", '{"MemoryRetrievalSkill": "sam-skills"}', "skill_providers",
     {"MemoryRetrievalSkill": "sam-skills"}),
    ("SOF_SKILL_TIMEOUT", "none", "skill_timeout", None),
    ("SOF_PLAN_CACHE_TTL", "null", "plan_cache_ttl", None),
    ("SOF_ROLLOUT_PERCENTAGE", "25", "sof_rollout_percentage", 25),
    ("SOF_EXECUTOR", "sequential", "executor", "sequential"),
    ("SOF_PLUGINS_ONLY", "memory,response", "plugins_only", ["memory", "response"]),
    ("SOF_PLUGINS_DISABLE", "web", "plugins_disable", ["web"]),
    ("SOF_STRICT_PLUGINS", "1", "strict_plugins", True),
    ("SOF_DISABLE_PLUGIN_AUTOLOAD", "1", "plugins_autoload", False),
    ("SOF_PLANNER", "static", "planner", "static"),
    ("SOF_PLANNER_OPTIONS", '{"rules": {"threshold": 0.3}}', "planner_options",
     {"rules": {"threshold": 0.3}}),
    ("SOF_PLAN_STORE", "0", "plan_store", False),
    ("SOF_OBSERVER_TIMEOUT", "2", "observer_timeout", 2.0),
    ("SOF_ISOLATE_SKILLS", "A,B", "isolate_skills", ["A", "B"]),
    ("SOF_ISOLATION_IDLE_TIMEOUT", "45", "isolation_idle_timeout", 45.0),
    ("SOF_ISOLATION_IDLE_TIMEOUT", "null", "isolation_idle_timeout", None),
    ("SOF_STRICT_DECLARATIONS", "false", "strict_declarations", False),
    ("SOF_USE_TPV_CONTROL", "1", "use_tpv_control", True),
    ("SOF_PLUGIN_IMPORT_BUDGET_MS", "250", "plugin_import_budget_ms", 250),
    ("SOF_PLUGIN_IMPORT_TIMEOUT", "7", "plugin_import_timeout", 7),
    ("SOF_PLUGIN_IMPORT_TIMEOUT", "null", "plugin_import_timeout", None),
    ("SOF_LOG_LEVEL", "debug", "log_level", "DEBUG"),
])
def test_each_documented_variable_sets_its_setting(
    config_path: Path, monkeypatch: pytest.MonkeyPatch, var: str, text: str, key: str,
    value: Any
) -> None:
    # "SOF_<FIELD> in upper case ... List values are either comma-separated or a JSON list;
    # mapping values (SOF_SKILL_PROVIDERS) are a JSON object. none/null set an optional
    # value to None. Short aliases: ..." and the variables the tables name.
    monkeypatch.setenv(var, text)
    config = load_config()
    assert getattr(config, key) == value
    assert unknown_env_vars(dict(os.environ)) == {}


def test_json_variables_keep_keys_left_out_at_their_defaults(
    config_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # isolation_limits: "keys left out keep their defaults ... SOF_ISOLATION_LIMITS takes a
    # JSON object"; tool_policy: "keys left out keep their defaults ... SOF_TOOL_POLICY
    # takes a JSON object"
    monkeypatch.setenv("SOF_ISOLATION_LIMITS", '{"cpu_seconds": 5}')
    monkeypatch.setenv("SOF_TOOL_POLICY", '{"deny_tools": ["AgentZeroWebBrowserTool"]}')
    config = load_config()
    assert config.isolation_limits == {**SOFConfig().isolation_limits, "cpu_seconds": 5}
    assert config.tool_policy == {**SOFConfig().tool_policy,
                                  "deny_tools": ["AgentZeroWebBrowserTool"]}


@pytest.mark.parametrize("var", ["SOF_SKILL_PROVIDERS", "SOF_PLUGINS_DISABLE"])
def test_json_is_refused_past_thirty_two_levels_not_at_them(
    config_path: Path, monkeypatch: pytest.MonkeyPatch, var: str
) -> None:
    # "JSON nested more than 32 levels deep is a ConfigError naming the variable."
    def nested(levels: int) -> str:
        if var == "SOF_SKILL_PROVIDERS":
            return '{"a":' * (levels - 1) + '{"a": "b"}' + "}" * (levels - 1)
        return "[" * levels + "]" * levels

    monkeypatch.setenv(var, nested(32))
    with pytest.raises(ConfigError) as at_limit:  # a wrong value, not a refused depth
        load_config()
    assert "levels deep" not in str(at_limit.value)
    monkeypatch.setenv(var, nested(33))
    with pytest.raises(ConfigError) as past:
        load_config()
    assert f"{var} holds JSON nested more than 32 levels deep" in str(past.value)


def test_a_bad_variable_is_reported_as_the_docs_show(
    config_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # "The error names the key and the source it came from, e.g. sof_rollout_percentage
    # (from environment SOF_ROLLOUT_PERCENTAGE): Input should be less than or equal to 100
    # (got '150')" (a variable's value is quoted as the text it was).
    monkeypatch.setenv("SOF_ROLLOUT_PERCENTAGE", "150")
    with pytest.raises(ConfigError) as info:
        load_config()
    assert info.value.key == "sof_rollout_percentage"
    assert ("sof_rollout_percentage (from environment SOF_ROLLOUT_PERCENTAGE): Input should "
            "be less than or equal to 100 (got '150')") in str(info.value)


def test_a_misspelt_variable_gets_the_documented_warning(
    config_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # "SOF_ROLOUT_PERCENTAGE=0 logs `ignoring environment variable SOF_ROLOUT_PERCENTAGE:
    # did you mean SOF_ROLLOUT_PERCENTAGE or SOF_SOF_ROLLOUT_PERCENTAGE?`" on sof.config
    monkeypatch.setenv("SOF_ROLOUT_PERCENTAGE", "0")
    with caplog.at_level(logging.WARNING, logger="sof.config"):
        load_config()
    messages = [r.getMessage() for r in caplog.records if r.name == "sof.config"]
    assert ("ignoring environment variable SOF_ROLOUT_PERCENTAGE: did you mean "
            "SOF_ROLLOUT_PERCENTAGE or SOF_SOF_ROLLOUT_PERCENTAGE?") in messages


def test_variables_of_installed_plugins_and_llm_plugins_are_theirs() -> None:
    # "A variable belongs to a plugin when it starts with SOF_<NAME>_ for the entry-point
    # name of an installed plugin (SOF_MEMORY_PATH, SOF_DASK_SCHEDULER), or with SOF_LLM_,
    # SOF_TPV_ or SOF_USE_TPV_"
    pytest.importorskip("sof_dask")
    environ = {"SOF_MEMORY_PATH": "m.db", "SOF_DASK_SCHEDULER": "tcp://x:8786",
               "SOF_LLM_ANYTHING": "1", "SOF_TPV_ANYTHING": "1", "SOF_USE_TPV_ANYTHING": "1",
               "SOF_NOBODYS_SETTING": "1"}
    assert list(unknown_env_vars(environ)) == ["SOF_NOBODYS_SETTING"]


# --- configuration.md: where the file is -------------------------------------------------------


@pytest.mark.parametrize(("platform", "folder"), [
    ("darwin", Path("home") / "Library" / "Application Support" / "sof"),
    ("win32", Path("appdata") / "sof"),
])
def test_the_user_config_file_on_macos_and_windows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, platform: str, folder: Path
) -> None:
    # "~/Library/Application Support/sof/config.json on macOS, and %APPDATA%\sof\config.json
    # on Windows"
    from sof_core._paths import config_file

    monkeypatch.delenv("SOF_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("APPDATA", str(tmp_path / "appdata"))
    monkeypatch.setattr(sys, "platform", platform)
    assert config_file() == tmp_path / folder / "config.json"


@pytest.mark.parametrize(("platform", "plans"), [
    ("linux", Path("home") / ".cache" / "sof" / "plans"),
    ("darwin", Path("home") / "Library" / "Caches" / "sof" / "plans"),
    ("win32", Path("localappdata") / "sof" / "Cache" / "plans"),
])
def test_the_plan_store_folder_on_each_platform(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, platform: str, plans: Path
) -> None:
    # plan_store: "$XDG_CACHE_HOME/sof/plans (default ~/.cache/sof/plans;
    # ~/Library/Caches/sof/plans on macOS, %LOCALAPPDATA%\sof\Cache\plans on Windows)"
    from sof_core.graph.plan_store import store_dir

    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path / "localappdata"))
    monkeypatch.setattr(sys, "platform", platform)
    assert store_dir() == tmp_path / plans


def test_the_persistent_plan_cache_defaults_to_the_user_cache_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # plan_cache_path: "default path: planner-plans.sqlite in the user cache dir,
    # $XDG_CACHE_HOME/sof/"
    from sof_core.planning.cache import default_store_path

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert default_store_path() == tmp_path / "cache" / "sof" / "planner-plans.sqlite"


@pytest.mark.skipif(sys.platform in ("win32", "darwin"), reason="XDG_CONFIG_HOME is Linux's")
def test_sof_config_path_and_set_follow_the_user_config_dir(tmp_path: Path) -> None:
    # "else the platform's user config dir: ... $XDG_CONFIG_HOME/sof/config.json on Linux
    # ...; config.toml in the same folder is read (and written by `sof config set`) when
    # there is no config.json. `sof config path` prints which one."
    env = sof_env(tmp_path)
    del env["SOF_CONFIG"]
    folder = tmp_path / "xdg_config_home" / "sof"
    done = sof("config", "path", env=env, cwd=tmp_path)
    assert done.returncode == 0 and done.stdout.strip() == str(folder / "config.json")
    folder.mkdir(parents=True)
    (folder / "config.toml").write_text("sof_rollout_percentage = 7\n", encoding="utf-8")
    done = sof("config", "path", env=env, cwd=tmp_path)
    assert done.stdout.strip() == str(folder / "config.toml")
    done = sof("config", "set", "planner", "goal", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    tomllib = pytest.importorskip("tomllib" if sys.version_info >= (3, 11) else "tomli")

    assert tomllib.loads((folder / "config.toml").read_text(encoding="utf-8")) == {
        "sof_rollout_percentage": 7, "planner": "goal"}
    assert not (folder / "config.json").exists()


@pytest.mark.skipif(not Path(os.devnull).exists(), reason="needs os.devnull")
def test_sof_config_dev_null_means_all_defaults(tmp_path: Path) -> None:
    # "A missing file means "all defaults", and so does SOF_CONFIG=/dev/null (os.devnull)."
    for path in (os.devnull, str(tmp_path / "missing.json")):
        done = sof("config", "show", "--json", env=sof_env(tmp_path, SOF_CONFIG=path),
                   cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        settings = json.loads(done.stdout)["settings"]
        assert {row["source"] for row in settings} == {"default"}
        assert {row["key"]: row["value"] for row in settings} == json.loads(
            SOFConfig().model_dump_json())


# --- configuration.md: the live configuration ---------------------------------------------------


def test_an_override_of_an_updated_key_is_logged_and_the_file_still_updated(
    config_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # "If an environment variable or argument overrides a key you update, the file is still
    # updated, the effective value does not change, and SOF logs a warning."
    manager = SOFConfigManager(config_path, environ={"SOF_PLANNER": "goal"}, skill_retries=2)
    with caplog.at_level(logging.WARNING, logger="sof.config"):
        config = manager.update_config(planner="static", skill_retries=3)
    assert json.loads(config_path.read_text()) == {"planner": "static", "skill_retries": 3}
    assert (config.planner, config.skill_retries) == ("goal", 2)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("planner" in w and "SOF_PLANNER" in w for w in warnings), warnings
    assert any("skill_retries" in w and "argument" in w for w in warnings), warnings


def test_set_aside_files_are_named_with_the_unix_time(config_path: Path) -> None:
    # reset_to_defaults(): "the old file is kept as <name>.before-reset-<unix time>";
    # disable_sof_framework() on a corrupt file "keeps the old file as
    # <name>.corrupt-<unix time>"
    config_path.write_text('{"planner": "goal"}')
    manager = SOFConfigManager(config_path)
    before = int(time.time())
    manager.reset_to_defaults()
    assert manager.last_backup is not None
    reset = re.fullmatch(r"config\.json\.before-reset-(\d+)", manager.last_backup.name)
    assert reset is not None and before <= int(reset.group(1)) <= int(time.time())
    config_path.write_text("{oops")
    manager.disable_sof_framework()
    corrupt = re.fullmatch(r"config\.json\.corrupt-(\d+)", manager.last_backup.name)
    assert corrupt is not None and before <= int(corrupt.group(1)) <= int(time.time())
    assert manager.last_backup.read_text() == "{oops"


def test_save_config_without_a_config_writes_nothing(config_path: Path) -> None:
    # save_config(config=None): "Without config, nothing is written."
    manager = SOFConfigManager(config_path)
    manager.save_config()
    assert not config_path.exists()
    config_path.write_text('{ "planner":   "goal" }')
    manager.save_config()
    assert config_path.read_text() == '{ "planner":   "goal" }'


def test_validate_config_lists_every_problem_of_file_and_environment(config_path: Path) -> None:
    # validate_config(): "every bad value and unknown key of the file, environment and
    # arguments, plus skill_timeout above total_timeout. Empty when there are none."
    config_path.write_text(json.dumps({"sof_rollout_percentage": 150, "planer": "goal",
                                       "skill_timeout": 200}))
    manager = SOFConfigManager(config_path, environ={"SOF_MAX_WORKERS": "0"})
    problems = manager.validate_config()
    assert len(problems) == 4, problems
    assert any(p.startswith("sof_rollout_percentage") for p in problems)
    assert any(p.startswith("max_workers") and "SOF_MAX_WORKERS" in p for p in problems)
    assert any("'planer'" in p and "did you mean 'planner'" in p for p in problems)
    assert any(p.startswith("skill_timeout") and "total_timeout" in p for p in problems)
    config_path.write_text("{}")
    assert SOFConfigManager(config_path, environ={}).validate_config() == []


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_router_on_a_fifo_config_answers_through_legacy(tmp_path: Path) -> None:
    # SOF_CONFIG naming a FIFO: "reading it for running reports it (the router then answers
    # through legacy)"
    from sof_core.routing.router import QueryRouter
    from sof_core.testing import make_engine

    class Answer(BaseSkillModule):
        skill_name = "Answer"
        skill_description = "answers"
        output_keys = ["final_response"]

        def execute(self, uif: UIF) -> UIF:
            uif.final_response = "sof"
            return uif

    fifo = tmp_path / "config.json"
    os.mkfifo(fifo)
    manager = SOFConfigManager(fifo, environ={})
    router = QueryRouter(make_engine([Answer], default_plan=["Answer"]),
                         lambda query: f"legacy:{query}", manager)
    result = router.route("q")
    assert (result.path, result.response, result.fallback_reason) == ("legacy", "legacy:q",
                                                                       "config")
    assert "named pipe (FIFO)" in (result.sof_error or "")
    assert fifo.is_fifo()


# --- configuration.md: A/B metrics -------------------------------------------------------------


def test_metrics_defaults_and_snapshot_shape() -> None:
    # "Latencies are kept in a ring buffer of the last 10,000 queries, and shadow mode keeps
    # only the last 50 differing answers (max_examples), each cut to 500 characters."
    # "Each is measured over the last window (1000) queries, and none fires until the window
    # holds min_samples (20)", at 5 %, 10 s and 10 %.
    from sof_core import ABMetrics
    from sof_core.routing.metrics import AlertThresholds

    metrics = ABMetrics()
    for _ in range(10_050):
        metrics.record("sof", 0.001)
    for n in range(60):
        metrics.record_shadow(f"q{n}", "sof", "a" * 600, "b")
    snapshot = metrics.snapshot()
    assert snapshot["paths"]["sof"]["latency_ms"]["samples"] == 10_000
    examples = snapshot["shadow"]["examples"]
    assert len(examples) == 50 and examples[0]["query"] == "q10"
    assert len(examples[0]["primary_response"]) == 500
    thresholds = AlertThresholds()
    assert (thresholds.window, thresholds.min_samples) == (1000, 20)
    assert (thresholds.error_rate, thresholds.response_time,
            thresholds.skill_failure_rate) == (0.05, 10.0, 0.10)
    assert set(snapshot) == {"paths", "shadow", "alerts"}
    assert set(snapshot["paths"]) == {"sof", "legacy"}
    assert set(snapshot["paths"]["sof"]) == {
        "count", "errors", "error_rate", "fallbacks", "fallback_reasons", "latency_ms",
        "skill_runs", "skill_failures", "skill_failure_rate"}
    assert set(snapshot["paths"]["sof"]["latency_ms"]) == {"p50", "p95", "p99", "samples"}
    assert set(snapshot["shadow"]) == {"runs", "differences", "difference_rate", "errors",
                                       "dropped", "examples"}
    assert set(snapshot["alerts"]) == {"active", "fired"}


# --- configuration.md: `sof config` -------------------------------------------------------------


def test_sof_config_errors_are_the_documented_lines(tmp_path: Path) -> None:
    # The console example of "sof config": exit 2 and these lines on stderr.
    env = sof_env(tmp_path)
    path = tmp_path / "config.json"
    line = one_line_error(sof("config", "set", "sof_rollout_percentage", "150", env=env,
                              cwd=tmp_path))
    assert line == ("sof config: error: invalid configuration: sof_rollout_percentage (from "
                    "update_config): Input should be less than or equal to 100 (got 150)")
    path.write_text("{\n")
    line = one_line_error(sof("config", "show", env=env, cwd=tmp_path))
    assert line.startswith(f"sof config: error: config file {path} is corrupt (")
    assert line.endswith("); fix it or delete it to use defaults")


def test_sof_config_show_lists_ignored_variables_in_their_own_section(tmp_path: Path) -> None:
    # "Then two sections when they apply: ... "SOF_* environment variables SOF ignores""
    done = sof("config", "show", env=sof_env(tmp_path, SOF_ROLOUT_PERCENTAGE="0"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    table, _, section = done.stdout.partition("SOF_* environment variables SOF ignores")
    assert "SOF_ROLOUT_PERCENTAGE" in section and "SOF_ROLOUT_PERCENTAGE" not in table
    assert "did you mean SOF_ROLLOUT_PERCENTAGE" in section


def test_sof_config_enable_without_a_percentage_keeps_the_rollout(tmp_path: Path) -> None:
    # "sof config enable [--percentage P]: use_sof_framework = true, and optionally sets
    # the rollout percentage."
    path = tmp_path / "config.json"
    path.write_text('{"sof_rollout_percentage": 30}')
    done = sof("config", "enable", env=sof_env(tmp_path), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(path.read_text()) == {"sof_rollout_percentage": 30,
                                            "use_sof_framework": True}


def test_sof_planner_static_gives_the_fixed_plan(tmp_path: Path) -> None:
    # planner: "SOF_PLANNER=static gives the fixed plan."
    done = sof("plan", "What is 15% of 240?", "--json",
               env=sof_env(tmp_path, SOF_PLANNER="static"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["planner"] == "static" and data["plan"] == SOFConfig().default_plan


# --- cli.md ----------------------------------------------------------------------------------


def test_the_prefer_error_is_the_documented_line(tmp_path: Path) -> None:
    # `sof run "q" --goal final_response --prefer x` prints this one line.
    line = one_line_error(sof("run", "q", "--goal", "final_response", "--prefer", "x",
                              env=sof_env(tmp_path), cwd=tmp_path))
    assert line == ("sof: error: --prefer expects KEY=SKILL (e.g. "
                    "final_response=ResponseGenerationSkill), got 'x'")


SPY = """
    from pathlib import Path
    Path({marker!r}).touch()
    from sof_core import BaseSkillModule, hookimpl

    class Spied(BaseSkillModule):
        skill_name = "Spied"
        skill_description = "shows that its plugin was imported"
        required_inputs = ["input_query"]
        output_keys = ["final_response"]
        def execute(self, uif):
            uif.final_response = "spied"
            return uif

    @hookimpl
    def sof_register_skills():
        return [Spied]
"""


def test_run_usage_errors_are_found_before_any_plugin_loads(tmp_path: Path) -> None:
    # "These are usage errors (one line, exit 2), checked before any plugin loads"
    site = tmp_path / "site"
    site.mkdir()
    marker = tmp_path / "imported"
    (site / "sof_spy_plugin.py").write_text(textwrap.dedent(SPY.format(marker=str(marker))))
    info = site / "sof_spy-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: sof-spy\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[sof.plugins]\nspy = sof_spy_plugin\n")
    env = sof_env(tmp_path, SOF_PLUGINS_ONLY="spy", SOF_DEFAULT_PLAN="Spied",
                  PYTHONPATH=os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
    queries = tmp_path / "queries.txt"
    queries.write_text("a\nb\n", encoding="utf-8")
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"\x00\x01\xff" * 50)
    cases = [
        ["--file", str(queries), "--concurrency", "0"],
        ["q", "--file", str(queries)],
        ["-", "q"],
        ["--file", str(binary)],
        ["q", "--goal", "final_response", "--prefer", "x"],
        ["q", "--include-optional"],
        ["q", "--json", "--output", "final_response"],
        ["--file", str(queries), "--trace"],
    ]
    for args in cases:
        one_line_error(sof("run", *args, env=env, cwd=tmp_path))
        assert not marker.exists(), args
    done = sof("run", "q", "--output", "final_response", env=env, cwd=tmp_path)
    assert done.returncode == 0 and done.stdout == "spied\n", done.stderr
    assert marker.exists()  # the plugin is importable: the errors above came first


@pytest.mark.parametrize("option", [["--output", "final_response"], ["--trace"],
                                    ["--context", "k=v"], ["--session", "s"], ["--user", "u"]])
def test_options_of_one_run_are_refused_with_several_queries(
    tmp_path: Path, option: list[str]
) -> None:
    # "with several queries, --output, --trace, --context, --session or --user (they apply
    # to one run; use --json to get every run)"
    queries = tmp_path / "queries.txt"
    queries.write_text("a\nb\n", encoding="utf-8")
    line = one_line_error(sof("run", "--file", str(queries), *option, env=sof_env(tmp_path),
                              cwd=tmp_path))
    assert f"{option[0]} applies to a single query" in line and "--json" in line


def test_json_and_output_together_are_a_usage_error(tmp_path: Path) -> None:
    # "--json together with --output"
    line = one_line_error(sof("run", "q", "--json", "--output", "final_response",
                              env=sof_env(tmp_path), cwd=tmp_path))
    assert "--json" in line and "--output" in line


def test_a_batch_skips_blank_lines_and_comments_and_runs_max_workers_at_once(
    tmp_path: Path
) -> None:
    # "--concurrency N says how many run at once (default: max_workers, 64 unless
    # configured" / "blank lines and # comments are skipped" / the sof.batch/1 keys
    queries = tmp_path / "queries.txt"
    queries.write_text("first\n\n# a comment\nsecond\n", encoding="utf-8")
    summaries = []
    for extra in ({}, {"SOF_MAX_WORKERS": "3"}):
        done = sof("run", "--file", str(queries), "--plan", "MemoryRetrievalSkill", "--json",
                   env=sof_env(tmp_path, **extra), cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        data = json.loads(done.stdout)
        assert set(data) == {"schema", "schema_version", "summary", "items"}
        summaries.append(data["summary"])
        assert [item["query"] for item in data["items"]] == ["first", "second"]
        assert all({"index", "latency_ms", "error", "error_type"} <= set(item)
                   for item in data["items"])
    assert [s["concurrency"] for s in summaries] == [64, 3]
    assert set(summaries[0]) == {"count", "succeeded", "errors", "statuses", "concurrency",
                                 "duration_ms", "throughput_qps", "latency_ms"}
    assert set(summaries[0]["latency_ms"]) == {"p50", "p95", "max", "mean"}


def test_the_planner_answers_the_calculator_query(tmp_path: Path) -> None:
    # "with the calculator installed, `sof run "What is 15% of 240?"` runs CalculatorTool
    # and ResponseGenerationSkill and answers 36"
    pytest.importorskip("sof_calculator")
    done = sof("run", "What is 15% of 240?", "--json", env=sof_env(tmp_path), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["plan"] == ["CalculatorTool", "ResponseGenerationSkill"]
    assert "36" in report["final_response"]
    assert report["planning"]["planner"] == "rules"


def test_sof_plan_json_has_the_documented_keys(tmp_path: Path) -> None:
    # "--json prints the plan as JSON, schema sof.plan/1: plan, stages, planner, cache_hit,
    # reasons, reasoning, fallbacks, changes, scores, skipped, duration_ms, and query,
    # valid, problems"
    done = sof("plan", "What is 15% of 240?", "--json", env=sof_env(tmp_path), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert set(json.loads(done.stdout)) == {
        "schema", "plan", "stages", "planner", "cache_hit", "reasons", "reasoning",
        "fallbacks", "changes", "scores", "skipped", "duration_ms", "query", "valid",
        "problems"}


def test_an_unknown_planner_lists_the_installed_planners(tmp_path: Path) -> None:
    # "an unknown name is a configuration error (one line, exit 2) listing the installed
    # planners"
    line = one_line_error(sof("plan", "q", "--planner", "oracle", env=sof_env(tmp_path),
                              cwd=tmp_path))
    for planner in ("static", "goal", "rules", "llm"):
        assert f"'{planner}'" in line


def test_plans_may_be_comma_separated_and_graph_defaults_to_the_default_plan(
    tmp_path: Path
) -> None:
    # "Plans can be given as separate words or comma-separated: sof validate A,B C." /
    # sof graph: "(default plan when no skill is given)"
    env = sof_env(tmp_path, SOF_PLUGINS_ONLY="memory,conflict,response")
    done = sof("validate", "MemoryRetrievalSkill,ConflictDetectorSkill",
               "ResponseGenerationSkill", "--json", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    graph = sof("graph", "--format", "json", env=env, cwd=tmp_path)
    assert graph.returncode == 0, graph.stderr
    assert json.loads(graph.stdout)["plan"] == SOFConfig().default_plan


def test_plugins_hides_the_builtin_plugins_unless_all(tmp_path: Path) -> None:
    # "--all includes SOF's built-in plugins."
    env = sof_env(tmp_path)
    plain = json.loads(sof("plugins", "--json", env=env, cwd=tmp_path).stdout)
    every = json.loads(sof("plugins", "--json", "--all", env=env, cwd=tmp_path).stdout)

    def names(listing: Any) -> set[str]:
        rows = listing["plugins"] if isinstance(listing, dict) else listing
        return {row["name"] for row in rows}

    builtin = {"sof-executors", "sof-planners"}
    assert not builtin & names(plain)
    assert builtin <= names(every) and names(plain) <= names(every)


def test_help_lists_the_memory_plugins_command(tmp_path: Path) -> None:
    # "Plugins can add sub-commands (the memory plugin adds `sof memory`), and `sof --help`
    # lists them with the core commands."
    pytest.importorskip("sof_memory")
    done = sof("--help", env=sof_env(tmp_path), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert re.search(r"^\s+memory\s+\S", done.stdout, flags=re.M), done.stdout
    assert re.search(r"^\s+run\s+\S", done.stdout, flags=re.M)


def test_the_skill_details_are_the_documented_ones(tmp_path: Path) -> None:
    # `sof skills Memory` and `sof skills MemoryRetrievalSkill` as shown; `sof skills
    # CalculatorTool` "ends with permissions none, output cap 65,536 bytes, calls/minute no
    # limit".
    for module in ("sof_memory", "sof_conflict", "sof_response", "sof_calculator"):
        pytest.importorskip(module)
    env = sof_env(tmp_path)
    line = one_line_error(sof("skills", "Memory", env=env, cwd=tmp_path))
    assert line == "sof: error: no skill named 'Memory'; did you mean 'MemoryRetrievalSkill'?"
    done = sof("skills", "MemoryRetrievalSkill", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    pairs = [re.split(r"\s{2,}", line.strip(), maxsplit=1)
             for line in done.stdout.splitlines()[1:] if line.strip()]
    fields = dict((key, value) for key, value in pairs)
    assert done.stdout.startswith("skill MemoryRetrievalSkill 1.0.0\n")
    assert fields["plugin"] == "memory (distribution sof-memory)"
    assert fields["required inputs"] == "input_query"
    assert fields["outputs"] == "memory_results: list, source_documents: list"
    assert fields["read by"] == "ConflictDetectorSkill, ResponseGenerationSkill"
    assert fields["max time"] == "10 s"
    tool = sof("skills", "CalculatorTool", env=env, cwd=tmp_path)
    assert tool.returncode == 0, tool.stderr
    assert [re.split(r"\s{2,}", line.strip()) for line in tool.stdout.splitlines()[-3:]] == [
        ["permissions", "none"], ["output cap", "65,536 bytes"], ["calls/minute", "no limit"]]


def test_plugins_check_of_a_name_not_installed_exits_2(tmp_path: Path) -> None:
    # "2 for a name that is not installed"
    line = one_line_error(sof("plugins", "check", "no-such-plugin", env=sof_env(tmp_path),
                              cwd=tmp_path))
    assert "no-such-plugin" in line


@pytest.mark.parametrize("value", ["true", "yes", "on"])
def test_plugin_tracing_takes_each_yes_value(tmp_path: Path, value: str) -> None:
    # "SOF_TRACE_PLUGINS=1 (or true, yes, on) logs every call of every hook implementation"
    done = sof("validate", "MemoryRetrievalSkill",
               env=sof_env(tmp_path, SOF_TRACE_PLUGINS=value), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "sof: INFO: sof_register_planners: plugin 'sof-planners' returned" in done.stderr


def test_warnings_reach_stderr_with_the_sof_prefix(tmp_path: Path) -> None:
    # "Warnings reach stderr as `sof: WARNING: ...`."
    done = sof("validate", "MemoryRetrievalSkill",
               env=sof_env(tmp_path, SOF_ROLOUT_PERCENTAGE="0"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert ("sof: WARNING: ignoring environment variable SOF_ROLOUT_PERCENTAGE: did you mean "
            "SOF_ROLLOUT_PERCENTAGE or SOF_SOF_ROLLOUT_PERCENTAGE?") in done.stderr.splitlines()


BOOM = """
    from sof_core import BaseSkillModule, hookimpl

    class Boom(BaseSkillModule):
        skill_name = "Boom"
        skill_description = "fails"
        required_inputs = ["input_query"]
        output_keys = ["never"]
        def execute(self, uif):
            return {}["missing"]

    @hookimpl
    def sof_register_skills():
        return [Boom]
"""


def test_a_failed_skills_error_line_names_its_plugin_and_line(tmp_path: Path) -> None:
    # "When a skill fails, each `error:` line on stderr names the plugin and the line of its
    # code that raised, with or without --trace (`error: Boom: KeyError: 'missing' (plugin
    # boom, at /path/boom.py:11; --trace shows the traceback)`), and --trace prints its
    # traceback after the table."
    site = tmp_path / "site"
    site.mkdir()
    source = site / "boom.py"
    source.write_text(textwrap.dedent(BOOM), encoding="utf-8")
    info = site / "sof_boom-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: sof-boom\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[sof.plugins]\nboom = boom\n")
    env = sof_env(tmp_path, SOF_PLUGINS_ONLY="boom",
                  PYTHONPATH=os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
    raising = next(number for number, line in enumerate(source.read_text().splitlines(), 1)
                   if '{}["missing"]' in line)
    named = f"error: Boom: KeyError: 'missing' (plugin boom, at {source}:{raising}"
    for extra, end in (([], "; --trace shows the traceback)"), (["--trace"], ")")):
        done = sof("run", "q", "--plan", "Boom", *extra, env=env, cwd=tmp_path)
        assert done.returncode == 1
        assert named + end in done.stderr.splitlines(), done.stderr
        assert "Traceback" not in done.stderr
    table, _, after = done.stdout.partition("Traceback of Boom")
    assert "STAGE" in table and "KeyError: 'missing'" in after


@pytest.mark.parametrize(("only", "optional"), [
    (["memory", "response", "conflict"],
     ["MemoryRetrievalSkill", "ConflictDetectorSkill", "ResponseGenerationSkill"]),
    (None, ["AgentZeroWebBrowserTool", "CalculatorTool", "ContentVettingSkill",
            "MemoryRetrievalSkill", "ConflictDetectorSkill", "ResponseGenerationSkill"]),
])
def test_goal_final_response_plans_what_cli_md_says_with_the_bundled_plugins(
    tmp_path: Path, only: list[str] | None, optional: list[str]
) -> None:
    # "`--goal final_response` plans `ResponseGenerationSkill` alone ... With the demo's
    # plugins ... `--include-optional` plans [three]; with every bundled plugin installed ...
    # six skills in all." From the API and from the CLI.
    env = sof_env(tmp_path)
    if only is not None:
        env["SOF_PLUGINS_ONLY"] = ",".join(only)
    for extra, expected in (([], ["ResponseGenerationSkill"]), (["--include-optional"], optional)):
        shown = sof("graph", "--goal", "final_response", *extra, "--format", "json", env=env,
                    cwd=tmp_path)
        assert shown.returncode == 0, shown.stderr
        assert json.loads(shown.stdout)["plan"] == expected
    from sof_core import CoordinatorEngine, SOFConfig

    config = SOFConfig(plugins_only=only) if only is not None else SOFConfig()
    with CoordinatorEngine(config=config) as engine:
        assert engine.resolve_goal(["final_response"], include_optional=True) == optional
