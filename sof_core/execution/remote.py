"""Running a skill somewhere else (another process, a Dask worker) with the local guarantees.

Three steps, one implementation for every executor that leaves the run's thread:

1. ``call_payload(step, uif)`` - what to send: the skill instance, only its declared inputs,
   and the UIF's other fields; ``pack_call(name, call)`` pickles it for a process of this
   environment (by name what that process can import, by value with cloudpickle what it
   cannot, a typed error for what cannot travel). The run's read-only containers pickle as
   plain ones.
2. ``run_skill_call(skill, inputs, fields)`` - on the far side: run the skill on a plain UIF
   holding copies of them and report what it changed (data keys, UIF fields, appended logs),
   in-place changes included. No checks here: the far side is not trusted to enforce them.
3. ``replay_changes(step, view, changes)`` - back home: apply those changes to the skill's
   normal guarded view, so an undeclared write (an in-place change too), a type mismatch or
   ``set_error`` fails exactly as it does in a local run, and the merge order stays
   deterministic.

This module is public (``sof_core`` re-exports its names) so third-party executors get what
the built-in ones use.
"""

from __future__ import annotations

import copy
import functools
import importlib.machinery
import inspect
import os
import pickle
import sys
import weakref
from types import CodeType, ModuleType
from typing import TYPE_CHECKING, Any

from sof_core.errors import (
    SkillExecutionError,
    SkillNotPicklableError,
    UndeclaredReadError,
    UndeclaredWriteError,
)
from sof_core.skills.views import (
    FROZEN_FIELDS,
    ScopedData,
    changed_in_place,
    extra_frozen_fields,
    freeze,
)
from sof_core.uif import UIF, UIFStatus

#: UIF fields a skill appends to; they start empty on the far side and come back whole.
APPENDED = ("log_trace", "warnings", "skill_outputs")
_NOT_SENT = frozenset({"intermediate_data", *APPENDED})
_READ_ONLY_FIELDS = frozenset(FROZEN_FIELDS)
_ABSENT = object()
#: What a reader at home gets read-only when it holds plain data (else a plain copy).
_CONTAINERS = (list, dict, set, tuple)

if TYPE_CHECKING:  # at run time only the home side needs it: the far side imports less
    from sof_core.graph.compile import Step

SkillCall = tuple[Any, dict[str, Any], dict[str, Any]]
#: Key of the fields sent for a UIF subclass: the class to build on the far side.
UIF_CLASS_KEY = "__uif_class__"
#: Key of the fields sent for a skill confined to its declared keys: ``(skill name, keys it
#: may read, keys it may write)``, so the far side refuses an undeclared read as home does.
SCOPE_KEY = "__sof_scope__"


def call_payload(step: Step, uif: UIF) -> SkillCall:
    """``(skill instance, declared inputs present in uif, other UIF fields)`` to send.

    A skill allowed undeclared keys (``strict_declarations = false``) is sent all of
    ``intermediate_data``. For a UIF subclass (``sof_sam.SAM_UIF``) the fields also name the
    class (``UIF_CLASS_KEY``), so the skill works on the model it was written for.
    """
    source = uif.__dict__["intermediate_data"]
    fields = {k: v for k, v in uif.__dict__.items() if k not in _NOT_SENT}
    if step.scope_type is ScopedData:
        inputs = {key: source[key] for key in step.readable if key in source}
        fields[SCOPE_KEY] = (step.name, step.readable, step.writable)
    else:
        inputs = dict(source)
    if type(uif) is not UIF:
        fields[UIF_CLASS_KEY] = type(uif)
    return step.instance, inputs, fields


#: The protocol calls travel with (every worker runs this very interpreter).
PROTOCOL = pickle.HIGHEST_PROTOCOL


def pack_call(skill_name: str, call: SkillCall, *, by_value: bool = False) -> bytes:
    """``call`` (from ``call_payload``) pickled for another process of this environment: an
    isolation worker or a Dask worker, which loads it with plain ``pickle.loads``.

    What that process can import by name travels by name, as plain pickle sends it. A
    skill class it could not import travels by value (cloudpickle): one defined in a
    script's ``__main__`` or inside a function, or in a module imported from a file the
    other process does not find under that name (pytest's ``importlib`` import mode), and
    so does anything else plain pickle refuses that cloudpickle can carry (a lambda in the
    instance's state). What cannot travel at all is a ``SkillNotPicklableError`` naming the
    skill and what: the instance, which input, or the other UIF fields.

    ``by_value=True`` sends the skill's class by value although this process found it
    importable (the far side said it could not load it: an import hook only this process
    has, say); the class is sent so from then on.
    """
    skill = call[0]
    if by_value:
        _SENT_BY_VALUE.add(type(skill))
    strays = _not_importable(type(skill))
    if strays is None:
        try:
            return pickle.dumps(call, PROTOCOL)
        except Exception:  # something inside may still travel by value: try that first
            strays = ()
    import cloudpickle

    for module in strays:
        cloudpickle.register_pickle_by_value(module)
    try:
        return _by_value(call)
    except Exception as exc:
        raise SkillNotPicklableError(skill_name, _culprit(call, cloudpickle.dumps),
                                     f"{type(exc).__name__}: {exc}") from exc


#: Skill classes a far side could not load by name although this process found them
#: importable: sent by value from then on.
_SENT_BY_VALUE: weakref.WeakSet[type] = weakref.WeakSet()


def _by_value(call: SkillCall) -> bytes:
    """cloudpickle's pickling, except that code keeps the file it came from: cloudpickle
    names it ``<dynamic-code>``, which would leave the skill's traceback and its result's
    ``location`` pointing nowhere."""
    import io

    buffer = io.BytesIO()
    _file_keeping_pickler()(buffer, protocol=PROTOCOL).dump(call)
    return buffer.getvalue()


@functools.cache
def _file_keeping_pickler() -> Any:
    """cloudpickle's ``Pickler`` with code objects reduced through ``_code_in_file``."""
    from collections import ChainMap

    import cloudpickle

    reduce_code = cloudpickle.Pickler.dispatch_table[CodeType]

    def keep_file(code: CodeType) -> tuple[Any, ...]:
        rebuild, args = reduce_code(code)
        return _code_in_file, (rebuild, args, code.co_filename)

    class Pickler(cloudpickle.Pickler):  # type: ignore[misc]
        dispatch_table = ChainMap({CodeType: keep_file}, cloudpickle.Pickler.dispatch_table)

    return Pickler


def _code_in_file(rebuild: Any, args: tuple[Any, ...], filename: str) -> CodeType:
    """Far side: a code object sent by value, with the file name it had at home."""
    code: CodeType = rebuild(*args)
    return code.replace(co_filename=filename)


def _culprit(call: SkillCall, dumps: Any) -> str:
    """Which part of ``call`` does not pickle, for the error."""
    skill, inputs, _ = call

    def travels(value: Any) -> bool:
        try:
            dumps(value, PROTOCOL)
        except Exception:
            return False
        return True

    if not travels(skill):
        return "the skill instance"
    bad = [key for key, value in inputs.items() if not travels(value)]
    return f"its input {bad[0]!r}" if bad else "its inputs or UIF fields"


def _not_importable(cls: type) -> tuple[ModuleType, ...] | None:
    """None when another process can import ``cls`` and its bases by name; else the
    modules it could not import (to send by value; ``__main__`` and classes defined in a
    function go by value anyway)."""
    strays: list[ModuleType] = []
    forced = cls in _SENT_BY_VALUE
    by_value = forced
    where = _import_context()
    for klass in cls.__mro__:
        name = klass.__module__
        if name == "builtins":
            continue
        module = sys.modules.get(name)
        if "<locals>" in klass.__qualname__ or module is None:
            by_value = True
        elif not _importable(module, where) or (forced and not _shared(name)):
            by_value = True
            if name not in ("__main__", "__mp_main__"):
                strays.append(module)
    return tuple(strays) if by_value else None


def _shared(name: str) -> bool:
    """A module every process of this interpreter imports the same way: the standard
    library's and SOF's own."""
    top = name.partition(".")[0]
    return top in sys.stdlib_module_names or top == "sof_core"


#: Whether a module (name, file) is found by name with this import path and working folder
#: (a worker gets both: a host that changes either may change the answer).
_IMPORTABLE: dict[tuple[str, str | None, str, tuple[Any, ...]], bool] = {}


def _import_context() -> tuple[str, tuple[Any, ...]]:
    """The working folder and import path a worker gets, which decide what it finds by name
    (read once per packed call, not once per class of the skill's MRO)."""
    try:
        here = os.getcwd()
    except OSError:  # the working folder is gone: "" on the path finds nothing there
        here = ""
    return here, tuple(sys.path)


def _importable(module: ModuleType, where: tuple[str, tuple[Any, ...]]) -> bool:
    """Whether a process started in ``where`` (``_import_context``) imports ``module`` by
    name, cached per module and context."""
    name = module.__name__
    if name in ("__main__", "__mp_main__"):
        return False
    file = getattr(module, "__file__", None)
    key = (name, file, *where)
    known = _IMPORTABLE.get(key)
    if known is None:
        if len(_IMPORTABLE) > 4096:  # a host forever changing its path: start over
            _IMPORTABLE.clear()
        known = _IMPORTABLE[key] = _found_by_name(name, file)
    return known


def _found_by_name(name: str, file: str | None) -> bool:
    """Whether importing ``name`` afresh, on this import path, finds ``file`` again.

    Asked of the import system's finders without looking in ``sys.modules`` (where a
    module imported from a path, by pytest's ``importlib`` mode say, is found by a name
    no other process can import)."""
    if not file:
        return True  # built in, frozen or a namespace package: found the same way there
    top, _, rest = name.partition(".")
    spec = None
    for finder in sys.meta_path:
        find = getattr(finder, "find_spec", None)
        if find is None:
            continue
        try:
            spec = find(top, None)
        except Exception:  # a third-party finder's own trouble: ask the next one
            continue
        if spec is not None:
            break
    if spec is None:
        spec = importlib.machinery.PathFinder.find_spec(top, sys.path)
    if spec is None:
        return False
    if not spec.has_location:
        return True  # frozen or built in (``abc`` is frozen): the same in every process
    real = os.path.realpath(file)
    if not rest:
        return spec.origin is not None and os.path.realpath(spec.origin) == real
    return any(real.startswith(os.path.join(os.path.realpath(location), ""))
               for location in spec.submodule_search_locations or ())


def run_skill_call(skill: Any, inputs: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    """Run ``skill`` on a UIF holding copies of ``inputs`` and ``fields``; return what it
    changed (far side).

    The skill works on copies and ``inputs``/``fields`` stay as they were, even when the far
    side is this process. What comes back: ``data`` (keys it assigned), ``changed`` (dict,
    list, set and tuple inputs of plain data it changed in place: read-only at home),
    ``copies`` (inputs holding other objects, which at home a reader gets a plain copy of,
    so they count as its write only if it declares them as outputs), ``fields`` (UIF fields
    that differ, in place or assigned) and the appended logs.
    """
    own_fields = dict(fields)
    uif_class: type[UIF] = own_fields.pop(UIF_CLASS_KEY, UIF)
    scope: tuple[str, frozenset[str], frozenset[str]] | None = own_fields.pop(SCOPE_KEY, None)
    for name in (*FROZEN_FIELDS, *extra_frozen_fields(uif_class)):
        if name in own_fields:
            own_fields[name] = copy.deepcopy(own_fields[name])
    working = copy.deepcopy(inputs)
    given = dict(working)  # the objects the skill was handed, to tell assignments apart
    # every field given: model_construct then calls no default factory (pydantic inspects
    # each factory's signature per call, which cost more than the rest of the call)
    data = working if scope is None else _FarScope(working, *scope)
    uif = uif_class.model_construct(**own_fields, intermediate_data=data, log_trace=[],
                                    warnings=[], skill_outputs={})
    uif.__pydantic_private__["_sof_remote"] = True  # type: ignore[index]  # see _sof_in_run
    for name in APPENDED:
        uif.__dict__[name] = {} if name == "skill_outputs" else []
    returned = skill.execute(uif)
    if inspect.iscoroutine(returned):
        import asyncio

        returned = asyncio.run(returned)
    result = uif if returned is None else returned
    if not isinstance(result, UIF):
        return {"returned_type": type(returned).__name__}
    produced = result.__dict__
    writes: dict[str, Any] = {}
    changed: dict[str, Any] = {}
    copies: dict[str, Any] = {}
    for key, value in produced["intermediate_data"].items():
        if key not in inputs or value is not given.get(key, _ABSENT):
            if key not in inputs or not _same(inputs[key], value):
                writes[key] = value
        elif type(value) not in _CONTAINERS or not freeze(value, (key, False))[1]:
            copies[key] = value
        elif not _same(inputs[key], value):
            changed[key] = value
    fields_changed = {
        name: value
        for name, value in produced.items()
        if name not in _NOT_SENT and name in fields and not _same(fields[name], value)
    }
    return {"data": writes, "changed": changed, "copies": copies, "fields": fields_changed,
            **{name: produced[name] for name in APPENDED}}


class _FarScope(dict[str, Any]):
    """``intermediate_data`` on the far side for a skill confined to its declared keys: a
    read or write of a key it did not declare raises as its view at home does
    (``UndeclaredReadError``, ``UndeclaredWriteError``), at that line, so the isolated and
    local reports agree. Whatever else it changes is still checked at home, on replay."""

    __slots__ = ("_readable", "_skill", "_writable")

    def __init__(self, data: dict[str, Any], skill: str, readable: frozenset[str],
                 writable: frozenset[str]) -> None:
        super().__init__(data)
        self._skill = skill
        self._readable = readable
        self._writable = writable

    def _may_read(self, key: object) -> None:
        if key not in self._readable and key not in self._writable:
            raise UndeclaredReadError(self._skill, str(key))

    def __getitem__(self, key: str) -> Any:
        self._may_read(key)
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        self._may_read(key)
        return super().get(key, default)

    def __contains__(self, key: object) -> bool:
        self._may_read(key)
        return super().__contains__(key)

    def __setitem__(self, key: str, value: Any) -> None:
        if key not in self._writable:
            raise UndeclaredWriteError(self._skill, key)
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        if key not in self._writable:
            raise UndeclaredWriteError(self._skill, key)
        super().__delitem__(key)

    def __reduce__(self) -> tuple[Any, ...]:  # a UIF the skill sends on pickles as a dict
        return dict, (dict(self),)


def replay_changes(step: Step, view: UIF, changes: dict[str, Any]) -> None:
    """Apply the far side's report to the skill's guarded view (home side)."""
    if "returned_type" in changes:
        raise SkillExecutionError(
            f"execute() returned {changes['returned_type']}; return the uif it was given",
            step.name,
        )
    data = view.intermediate_data
    for key, value in changes.get("changed", {}).items():
        if key not in step.writable:  # as a local run refuses it, with the same message
            raise changed_in_place(step.name, (key, False))
        data[key] = value
    for key, value in changes.get("copies", {}).items():
        if key in step.writable:  # locally its copy is its write; otherwise discarded
            data[key] = value
    for key, value in changes["data"].items():
        data[key] = value  # the scope raises UndeclaredWriteError for undeclared keys
    fields = dict(changes["fields"])
    status = fields.pop("status", None)
    error_details = fields.pop("error_details", None)
    for name, value in fields.items():
        if name in _READ_ONLY_FIELDS and name not in step.writable_fields:
            # read-only at home; over there it may have been changed in place or assigned
            raise changed_in_place(step.name, (name, True))
        setattr(view, name, value)  # the guard rejects undeclared fields, pydantic checks types
    view.log_trace.extend(changes["log_trace"])
    view.warnings.extend(changes["warnings"])
    for skill, values in changes["skill_outputs"].items():
        view.skill_outputs[skill] = values
    if status is UIFStatus.FAILURE or status == UIFStatus.FAILURE.value:
        view.__dict__["status"] = UIFStatus.FAILURE
        view.__dict__["error_details"] = error_details


def _same(before: Any, after: Any) -> bool:
    if before is after:
        return True
    try:
        return bool(before == after)
    except Exception:  # an exotic __eq__ must not hide a write
        return False
