"""SAM's ``sam.orchestration.security`` on SOF's tool security framework.

The names, signatures and defaults are SAM's (``SecurityPolicy``, ``RateLimitConfig``,
``ExecutionResult``, ``RateLimiter``, ``SecureSandbox``, ``ToolSecurityManager``,
``get_security_manager``), so SAM tools that import them port by rewriting the import
prefix. What they do is SOF's (docs/security.md), and enforced where SAM's only declared:

- a call runs in a sandboxed worker process (``sof_core.run_sandboxed``) that is killed at
  the policy's ``max_execution_time``: a 6 s call under a 5 s policy is stopped at 5 s.
  The closures SAM's tools pass (they cannot be pickled to a worker) run in a forked child
  under the same rules;
- without ``allow_network_access`` the call cannot open a socket (a network namespace, or
  the audit-hook fallback); without ``allow_file_system_access`` Python code in it cannot
  write files; ``max_memory_usage`` caps what the call may allocate;
- a tool that raises gives ``ExecutionResult(success=False, error_message=...)``; a failure
  is never returned as a successful result string;
- ``SOFConfig.tool_policy`` applies too: a tool it denies is refused with the entry named.

``SecureSandbox.execute_python_code`` checks the code's syntax tree (imports, dunder
attributes, ``eval``/``exec``/``open``/...) instead of SAM's substring search, and runs it
in the sandbox with SAM's restricted builtins, never in the host. ``RateLimitConfig``'s
``cooldown_period`` is kept for compatibility and, as in SAM, not enforced.
"""

from __future__ import annotations

import ast
import builtins
import logging
import pickle
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sof_core
import sof_core.config

logger = logging.getLogger(__name__)


@dataclass
class SecurityPolicy:
    """Security policy for tool execution (SAM's fields and defaults)."""

    allow_network_access: bool = False
    allow_file_system_access: bool = False
    max_execution_time: float = 30.0
    max_memory_usage: int = 100 * 1024 * 1024  # bytes
    allowed_commands: list[str] | None = None
    blocked_commands: list[str] | None = None
    sandbox_enabled: bool = True

    def permissions(self) -> frozenset[str]:
        """The SOF permissions this policy grants ("network", "filesystem")."""
        granted = set()
        if self.allow_network_access:
            granted.add("network")
        if self.allow_file_system_access:
            granted.add("filesystem")
        return frozenset(granted)


@dataclass
class RateLimitConfig:
    """Rate limiting configuration (SAM's fields and defaults)."""

    max_requests_per_minute: int = 60
    max_requests_per_hour: int = 1000
    cooldown_period: float = 1.0  # seconds; kept for SAM's callers, not enforced (as in SAM)


@dataclass
class ExecutionResult:
    """Result of a secure tool execution (SAM's dataclass, not the coordinator's enum)."""

    success: bool
    output: Any
    error_message: str | None = None
    execution_time: float = 0.0
    security_violations: list[str] | None = None
    rate_limited: bool = False


class RateLimiter:
    """Requests per minute and per hour over sliding windows (``sof_core.RateLimiter``)."""

    def __init__(self, config: RateLimitConfig) -> None:
        self.config = config
        self._limiter = sof_core.RateLimiter(
            config.max_requests_per_minute, config.max_requests_per_hour
        )

    def is_allowed(self, tool_name: str) -> bool:
        """Record a request and say whether it is within the limits (a refused request is
        not counted)."""
        wait = self._limiter.acquire()
        if wait > 0:
            logger.warning("Rate limit exceeded for %s: next request allowed in %.1fs",
                           tool_name, wait)
            return False
        return True

    def get_stats(self) -> dict[str, Any]:
        """Requests in the last minute and hour, with the limits (SAM's keys)."""
        return dict(self._limiter.stats())


# --- the sandbox ----------------------------------------------------------------------------

#: Builtins code run by ``execute_python_code`` gets (SAM's list, without ``getattr``,
#: ``type``, ``dir`` and ``id``, which reach object internals).
SAFE_BUILTINS = (
    "abs", "all", "any", "bin", "bool", "chr", "dict", "divmod", "enumerate", "filter",
    "float", "format", "frozenset", "hasattr", "hash", "hex", "int", "isinstance",
    "issubclass", "iter", "len", "list", "map", "max", "min", "next", "oct", "ord", "pow",
    "range", "repr", "reversed", "round", "set", "slice", "sorted", "str", "sum", "tuple",
    "zip", "print", "True", "False", "None",
)
_DANGEROUS_MODULES = frozenset({
    "os", "sys", "subprocess", "shutil", "tempfile", "socket", "urllib", "requests", "http",
    "ftplib", "ctypes", "importlib", "builtins", "pathlib", "io", "pickle", "marshal",
    "multiprocessing", "threading", "signal", "resource", "gc", "inspect",
})
_DANGEROUS_CALLS = frozenset({
    "eval", "exec", "compile", "__import__", "open", "input", "breakpoint", "globals",
    "locals", "vars", "getattr", "setattr", "delattr",
})
#: SAM's list of commands refused whatever the policy says.
DANGEROUS_COMMANDS = frozenset({
    "rm", "del", "format", "fdisk", "mkfs", "sudo", "su", "chmod", "chown", "wget", "curl",
    "nc", "netcat", "ssh", "scp", "rsync",
})


class SecureSandbox:
    """Runs code and commands under a ``SecurityPolicy``, in a sandboxed process."""

    def __init__(self, policy: SecurityPolicy) -> None:
        self.policy = policy
        self.logger = logging.getLogger(f"{__name__}.SecureSandbox")
        self._temp_dirs: list[Path] = []

    def execute_python_code(
        self, code: str, globals_dict: dict[str, Any] | None = None
    ) -> ExecutionResult:
        """Run ``code`` with restricted builtins in a sandboxed process. Its ``result``
        variable (else its picklable local variables) is the output."""
        started = time.monotonic()
        violations = self._validate_python_code(code)
        if violations:
            return ExecutionResult(False, None, "Security violations detected",
                                   time.monotonic() - started, violations)
        safe_globals = {
            key: value for key, value in (globals_dict or {}).items()
            if not key.startswith("_") and not callable(value)
        }
        return self._run(_run_code, (code, safe_globals), "SecureSandbox.python", started)

    def execute_command(
        self, command: list[str], input_data: str | None = None
    ) -> ExecutionResult:
        """Run ``command`` (no shell) in a sandboxed process; its stdout is the output, a
        non-zero exit status an error result."""
        started = time.monotonic()
        violations = self._validate_command(command)
        if violations:
            return ExecutionResult(False, None, "Command security violations detected",
                                   time.monotonic() - started, violations)
        temp_dir = self._create_temp_directory() if self.policy.allow_file_system_access else None
        try:
            return self._run(
                _run_command, (list(command), input_data, str(temp_dir) if temp_dir else None),
                "SecureSandbox.command", started, extra={"subprocess"},
            )
        finally:
            if temp_dir is not None:
                self._cleanup_temp_directory(temp_dir)

    def _run(
        self,
        func: Callable[..., Any],
        args: tuple[Any, ...],
        name: str,
        started: float,
        extra: set[str] | frozenset[str] = frozenset(),
    ) -> ExecutionResult:
        try:
            output = run_with_policy(self.policy, func, args, {}, name=name, extra=extra)
        except Exception as exc:
            return _failed(exc, started)
        return ExecutionResult(True, output, None, time.monotonic() - started, [])

    def _validate_python_code(self, code: str) -> list[str]:
        """What in ``code`` the sandbox refuses to run (checked on the syntax tree)."""
        try:
            tree = ast.parse(code)
        except SyntaxError as exc:
            return [f"Code does not parse: {exc.msg} (line {exc.lineno})"]
        violations: list[str] = []
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [
                    node.module or ""]
                for name in names:
                    if name.partition(".")[0] in _DANGEROUS_MODULES:
                        violations.append(f"Dangerous import detected: {name}")
                    else:  # the code has no __import__: only ``math``, given, is there
                        violations.append(f"Import not allowed: {name} (math is provided)")
            elif isinstance(node, ast.Name) and node.id in _DANGEROUS_CALLS:
                violations.append(f"Dangerous function detected: {node.id}")
            elif isinstance(node, ast.Attribute) and node.attr.startswith("__"):
                violations.append(f"Access to dunder attribute not allowed: {node.attr}")
        return list(dict.fromkeys(violations))

    def _validate_command(self, command: list[str]) -> list[str]:
        """SAM's checks: an empty command, the allowed and blocked lists, dangerous names."""
        if not command:
            return ["Empty command not allowed"]
        name = command[0]
        violations = []
        if self.policy.allowed_commands and name not in self.policy.allowed_commands:
            violations.append(f"Command not in allowed list: {name}")
        if self.policy.blocked_commands and name in self.policy.blocked_commands:
            violations.append(f"Command is blocked: {name}")
        if name in DANGEROUS_COMMANDS:
            violations.append(f"Dangerous command detected: {name}")
        return violations

    def _create_temp_directory(self) -> Path:
        temp_dir = Path(tempfile.mkdtemp(prefix="sof_sandbox_"))
        self._temp_dirs.append(temp_dir)
        return temp_dir

    def _cleanup_temp_directory(self, temp_dir: Path) -> None:
        try:
            shutil.rmtree(temp_dir, ignore_errors=True)
        finally:
            if temp_dir in self._temp_dirs:
                self._temp_dirs.remove(temp_dir)

    def cleanup_all(self) -> None:
        """Remove every temporary directory this sandbox made."""
        for temp_dir in list(self._temp_dirs):
            self._cleanup_temp_directory(temp_dir)


def run_with_policy(
    policy: SecurityPolicy,
    func: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    name: str,
    extra: set[str] | frozenset[str] = frozenset(),
    timeout: float | None = None,
    max_output_bytes: int | None = None,
) -> Any:
    """``func(*args, **kwargs)`` in a sandboxed process under ``policy`` (raises what the
    call raised, or SOF's typed errors: ``SkillTimeoutError`` when it was stopped, ...)."""
    return sof_core.run_sandboxed(
        func, args, kwargs,
        name=name,
        timeout=policy.max_execution_time if timeout is None else timeout,
        permissions=policy.permissions() | set(extra),
        memory_mb=policy.max_memory_usage / 2**20 if policy.max_memory_usage else None,
        max_output_bytes=max_output_bytes,
    )


def _run_code(code: str, user_globals: dict[str, Any]) -> Any:
    """In the sandbox process: run ``code`` with SAM's restricted globals."""
    import math as math_module

    restricted: dict[str, Any] = {
        "__builtins__": {n: getattr(builtins, n) for n in SAFE_BUILTINS if hasattr(builtins, n)},
        "math": math_module,
    }
    restricted.update(user_globals)
    local_vars: dict[str, Any] = {}
    exec(code, restricted, local_vars)
    if "result" in local_vars:
        return local_vars["result"]
    return {k: v for k, v in local_vars.items() if _picklable(v)}


def _run_command(command: list[str], input_data: str | None, cwd: str | None) -> str:
    """In the sandbox process: run ``command``; its stdout, or an error with its stderr."""
    done = subprocess.run(
        command, input=input_data, capture_output=True, text=True, cwd=cwd, check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"Command failed with return code {done.returncode}: {done.stderr.strip()}"
        )
    return done.stdout


def _picklable(value: Any) -> bool:
    try:
        pickle.dumps(value)
    except Exception:
        return False
    return True


def _failed(exc: BaseException, started: float) -> ExecutionResult:
    violations: list[str] = []
    if isinstance(exc, sof_core.ToolPermissionError):
        violations.append(str(exc))
    message = str(exc) if isinstance(exc, sof_core.SOFError) else f"{type(exc).__name__}: {exc}"
    return ExecutionResult(False, None, message, time.monotonic() - started, violations)


# --- the manager --------------------------------------------------------------------------------


class ToolSecurityManager:
    """Security for every tool call: SOF's tool policy, rate limits, a sandboxed process."""

    def __init__(self) -> None:
        self.logger = logging.getLogger(f"{__name__}.ToolSecurityManager")
        self._tool_policies: dict[str, SecurityPolicy] = {}
        self._rate_limiters: dict[str, RateLimiter] = {}
        self._sandboxes: dict[str, SecureSandbox] = {}
        self._setup_default_policies()

    def _setup_default_policies(self) -> None:
        """SAM's defaults: the calculator 5 s offline, the web browser 30 s online, any
        other tool 10 s offline; 30 requests a minute and 500 an hour each."""
        self._tool_policies["CalculatorTool"] = SecurityPolicy(
            max_execution_time=5.0, allowed_commands=[], blocked_commands=["rm", "del", "format"],
        )
        self._tool_policies["AgentZeroWebBrowserTool"] = SecurityPolicy(
            allow_network_access=True, max_execution_time=30.0,
            allowed_commands=["curl", "wget"], blocked_commands=["rm", "del", "format", "sudo"],
        )
        self._tool_policies["default"] = SecurityPolicy(max_execution_time=10.0)
        rates = RateLimitConfig(max_requests_per_minute=30, max_requests_per_hour=500)
        for tool_name in self._tool_policies:
            self._rate_limiters[tool_name] = RateLimiter(rates)

    def execute_tool_safely(
        self, tool_name: str, execution_func: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> ExecutionResult:
        """Run ``execution_func(*args, **kwargs)`` for ``tool_name`` under its policy.

        Refused (``success=False``) when SOF's tool policy denies the tool, or when it is
        over its rate (``rate_limited=True``). Otherwise the call runs in a sandboxed process
        killed at the policy's ``max_execution_time``; what it raises is an error result.
        SAM's tools pass closures (``def calculation_func(): ...``), which cannot be pickled
        to a worker: those run in a forked child with the same permissions and limits
        (``sof_core.run_sandboxed``), so they are stopped and sandboxed all the same.
        """
        started = time.monotonic()
        policy = self._tool_policies.get(tool_name, self._tool_policies["default"])
        denial, overrides = self._sof_policy(tool_name, policy)
        if denial is not None:
            return ExecutionResult(False, None, denial, 0.0, [denial])
        limiter = self._rate_limiters.get(tool_name, self._rate_limiters["default"])
        if not limiter.is_allowed(tool_name):
            return ExecutionResult(False, None, "Rate limit exceeded", 0.0, [], rate_limited=True)
        self._sandboxes.setdefault(tool_name, SecureSandbox(policy))
        timeout = overrides.get("max_execution_time", policy.max_execution_time)
        try:
            output = run_with_policy(
                policy, execution_func, args, kwargs, name=tool_name, timeout=timeout,
                max_output_bytes=overrides.get("max_output_bytes"),
            )
        except Exception as exc:
            return _failed(exc, started)
        return ExecutionResult(True, output, None, time.monotonic() - started, [])

    def _sof_policy(
        self, tool_name: str, policy: SecurityPolicy
    ) -> tuple[str | None, dict[str, Any]]:
        """SOF's tool policy for ``tool_name``: a denial message, and its ``limits`` entry.
        A configuration that cannot be read denies (it may hold the deny list)."""
        try:
            config = sof_core.config.get_sof_config()
        except sof_core.ConfigError as exc:
            return f"tool {tool_name!r} refused: the SOF configuration is invalid: {exc}", {}
        rules = sof_core.ToolPolicy.from_config(config)
        denial = rules.denial(tool_name, policy.permissions(), tool=True)
        return (None if denial is None else denial.message), rules.limits.get(tool_name, {})

    def register_tool_policy(self, tool_name: str, policy: SecurityPolicy) -> None:
        """Use ``policy`` for ``tool_name`` (a new tool gets SAM's default rate limits)."""
        self._tool_policies[tool_name] = policy
        self._sandboxes[tool_name] = SecureSandbox(policy)
        if tool_name not in self._rate_limiters:
            self._rate_limiters[tool_name] = RateLimiter(RateLimitConfig())
        self.logger.info("Registered security policy for tool: %s", tool_name)

    def get_security_stats(self) -> dict[str, Any]:
        """Rate-limit statistics per tool (SAM's shape)."""
        return {name: limiter.get_stats() for name, limiter in self._rate_limiters.items()}

    def cleanup(self) -> None:
        """Remove the sandboxes' temporary directories."""
        for sandbox in self._sandboxes.values():
            sandbox.cleanup_all()


_security_manager: ToolSecurityManager | None = None
_manager_lock = threading.Lock()


def get_security_manager() -> ToolSecurityManager:
    """The process's ``ToolSecurityManager`` (created on first use)."""
    global _security_manager
    with _manager_lock:
        if _security_manager is None:
            _security_manager = ToolSecurityManager()
        return _security_manager
