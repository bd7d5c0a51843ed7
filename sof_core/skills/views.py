"""What a running skill sees: a UIF copy whose data holds only its declared keys.

Concurrent skills get separate copies, so they cannot race; the coordinator merges what each
wrote back into the real UIF in plan order. Writes are checked as they happen (one set lookup),
never by re-validating the whole UIF.

In-place changes are covered too, at no cost to a skill that touches no container. While a
run goes, the UIF's container fields (``user_context``, ``security_context``,
``source_documents`` and the bookkeeping lists) are read-only versions (``ReadOnlyList``,
``ReadOnlyDict``, ``ReadOnlySet``), made once per run (``RunFreeze``); a container or object a
skill reads from ``intermediate_data`` is handed to it as a read-only copy, made when it first
reads it. Changing a read-only container raises ``UndeclaredWriteError`` naming the key or
field, before anything changed. A skill gets a plain copy of exactly what it may change in
place: a key it declares as input *and* output (the copy is its write), a UIF container
field it declares as output. A value holding objects other than dicts, lists, sets, tuples
and immutable scalars cannot be made read-only: the reader gets a plain deep copy instead.

This is the hot path (one view per skill per run), so a view is built without pydantic
(the source UIF is already valid) and one ``ScopedData`` object is both the skill's
``intermediate_data`` and the guard on its UIF field writes.
"""

from __future__ import annotations

import copy
import datetime
import decimal
import enum
import json
import logging
import operator
import threading
import uuid
from collections.abc import Iterator, MutableMapping
from typing import Any, NoReturn, Protocol, Union, get_args, get_origin

from pydantic import BaseModel

from sof_core.errors import UndeclaredReadError, UndeclaredWriteError
from sof_core.uif import BOOKKEEPING_FIELDS, UIF, UIF_FIELD_TYPES

_MISSING = object()
_NOTHING_WRITTEN: frozenset[str] = frozenset()
_new = object.__new__
# pydantic keeps these three in slots; their descriptors' setters are the cheapest way in.
_set_fields_set = vars(BaseModel)["__pydantic_fields_set__"].__set__
_set_extra = vars(BaseModel)["__pydantic_extra__"].__set__
_set_private = vars(BaseModel)["__pydantic_private__"].__set__

# --- read-only containers ----------------------------------------------------------------

#: Values that cannot change in place: handed to skills as they are.
ATOMIC: frozenset[type] = frozenset({
    str, int, float, bool, type(None), bytes, complex, range, decimal.Decimal,
    datetime.date, datetime.datetime, datetime.time, datetime.timedelta, datetime.timezone,
    uuid.UUID,
})
#: Fields each view gets fresh and empty; the coordinator appends what a skill put there.
PER_VIEW_FIELDS: frozenset[str] = frozenset({"log_trace", "warnings", "skill_outputs"})


def _is_container(annotation: Any) -> bool:
    origin = get_origin(annotation)
    if origin in (list, dict, set):
        return True
    if origin is Union or type(annotation).__name__ == "UnionType":
        return any(_is_container(arg) for arg in get_args(annotation))
    return annotation in (list, dict, set)


#: UIF fields holding a container that views share with the UIF: read-only during a run.
#: ``execution_plan`` first: it is the one the coordinator always fills.
FROZEN_FIELDS: tuple[str, ...] = tuple(sorted(
    (
        name
        for name, annotation in UIF_FIELD_TYPES.items()
        if _is_container(annotation)
        and name != "intermediate_data"
        and name not in PER_VIEW_FIELDS
    ),
    key=lambda name: name != "execution_plan",
))


def changed_in_place(skill: str, owner: tuple[str, bool]) -> UndeclaredWriteError:
    """The error for an in-place change of a read-only container (``owner``: key, is field)."""
    key, is_field = owner
    if is_field and key in BOOKKEEPING_FIELDS:
        text = (f"changed {key!r} in place; the coordinator keeps it (it records every skill "
                "itself), so leave it alone")
    else:
        what = f"the UIF field {key!r}" if is_field else f"{key!r}"
        text = (f"changed {what} in place, which is not in its output_keys; change a copy "
                f"(list(...), dict(...), copy.deepcopy(...)) or add {key!r} to output_keys")
    return write_refused(skill, key, text)


def never_assigned(skill: str, name: str) -> UndeclaredWriteError:
    """The error for assigning ``task_id`` or ``intermediate_data`` whole, which no
    declaration allows: what to do instead (declaring them is refused)."""
    text = ("assigned 'intermediate_data' whole; write its keys one by one "
            "(uif.intermediate_data[key] = ...)" if name == "intermediate_data" else
            "assigned 'task_id', which names the task and is the coordinator's; leave it "
            "alone (a skill changes the uif it was given and returns it)")
    return write_refused(skill, name, text)


def write_refused(skill: str, key: str, text: str) -> UndeclaredWriteError:
    """An ``UndeclaredWriteError`` for ``key`` that says ``text`` instead of "add it to
    output_keys": for writes no declaration could allow."""
    error = UndeclaredWriteError(skill, key)
    error.args = (f"skill {skill!r}: {text}" if skill else text,)
    return error


def _refuse(self: Any, *args: Any, **kwargs: Any) -> NoReturn:
    # The container does not know which skill holds it; the report names the skill.
    raise changed_in_place("", self._sof_owner)


class ReadOnlyList(list[Any]):
    """A list in the UIF during a run: reads as a list, changing it in place raises.

    ``list(x)``, ``x.copy()``, ``copy.deepcopy(x)`` and pickling give plain lists.
    """

    __slots__ = ("_sof_owner",)
    _sof_owner: tuple[str, bool]  # the key or field it belongs to, and whether a field
    append = extend = insert = remove = pop = clear = sort = reverse = _refuse
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, ...]:
        return (list, (list(self),))


class ReadOnlyDict(dict[Any, Any]):
    """A dict in the UIF during a run: reads as a dict, changing it in place raises."""

    __slots__ = ("_sof_owner",)
    _sof_owner: tuple[str, bool]  # the key or field it belongs to, and whether a field
    pop = popitem = clear = update = setdefault = _refuse
    __setitem__ = __delitem__ = __ior__ = _refuse

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, ...]:
        return (dict, (dict(self),))


class ReadOnlySet(set[Any]):
    """A set in the UIF during a run: reads as a set, changing it in place raises."""

    __slots__ = ("_sof_owner",)
    _sof_owner: tuple[str, bool]  # the key or field it belongs to, and whether a field
    add = discard = remove = pop = clear = update = _refuse
    difference_update = intersection_update = symmetric_difference_update = _refuse
    __ior__ = __iand__ = __isub__ = __ixor__ = _refuse

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, ...]:
        return (set, (set(self),))


READ_ONLY: frozenset[type] = frozenset({ReadOnlyList, ReadOnlyDict, ReadOnlySet})
_SHARED = ATOMIC | READ_ONLY


def freeze(value: Any, owner: tuple[str, bool]) -> tuple[Any, bool]:
    """``(read-only version of value, whether all of it is read-only)``.

    Lists, dicts and sets become read-only copies, tuples are rebuilt around their frozen
    items; immutable scalars are kept. Anything else is kept as it is, and the answer says so.
    """
    if type(value) is list and ATOMIC.issuperset(map(type, value)):  # the common case
        out = ReadOnlyList(value)
        out._sof_owner = owner
        return out, True
    opaque: list[Any] = []
    try:
        frozen = _freeze(value, owner, opaque)
    except RecursionError:
        return value, False
    return frozen, not opaque


def _freeze(value: Any, owner: tuple[str, bool], opaque: list[Any]) -> Any:
    kind = type(value)
    if kind in _SHARED:
        return value
    out: Any
    if kind is list:
        if ATOMIC.issuperset(map(type, value)):
            out = ReadOnlyList(value)
        else:
            out = ReadOnlyList([_freeze_item(item, owner, opaque) for item in value])
    elif kind is dict:
        if ATOMIC.issuperset(map(type, value.values())):
            out = ReadOnlyDict(value)
        else:
            out = ReadOnlyDict({k: _freeze(v, owner, opaque) for k, v in value.items()})
    elif kind is tuple:
        items = [_freeze(item, owner, opaque) for item in value]
        return value if all(a is b for a, b in zip(items, value, strict=True)) else tuple(items)
    elif kind is set or kind is frozenset:
        for item in value:  # hashable, but a hashable object may still change
            if type(item) not in ATOMIC and _freeze(item, owner, opaque) is not item:
                opaque.append(item)
        if kind is frozenset:
            return value
        out = ReadOnlySet(value)
    elif isinstance(value, enum.Enum):
        return value
    else:
        opaque.append(value)
        return value
    out._sof_owner = owner
    return out


def _freeze_item(item: Any, owner: tuple[str, bool], opaque: list[Any]) -> Any:
    """``_freeze`` for a list's items, flat dicts (rows, passages) without a further call."""
    kind = type(item)
    if kind in ATOMIC:
        return item
    if kind is dict:
        for value in item.values():  # a loop beats issuperset() on small dicts
            if type(value) not in ATOMIC:
                return _freeze(item, owner, opaque)
        out = ReadOnlyDict(item)
        out._sof_owner = owner
        return out
    return _freeze(item, owner, opaque)


class _Opaque(Exception):
    """Raised inside ``_plain_copy`` for a value only ``copy.deepcopy`` can copy."""


def own_copy(value: Any) -> Any:
    """A plain copy a skill may change freely (the value itself if it cannot be copied).

    Plain data (read-only or not) is copied by a loop several times faster than
    ``copy.deepcopy``, which is left for other objects.
    """
    kind = type(value)
    if kind in ATOMIC:
        return value
    try:
        return _plain_copy(value)
    except (_Opaque, RecursionError):
        pass
    try:
        return copy.deepcopy(value)
    except Exception:  # a lock, a client, a generator: nothing to copy, hand it as it is
        return value


def _plain_copy(value: Any) -> Any:
    kind = type(value)
    if kind in ATOMIC:
        return value
    if kind is list or kind is ReadOnlyList:
        if ATOMIC.issuperset(map(type, value)):
            return list(value)
        return [_plain_copy(item) for item in value]
    if kind is dict or kind is ReadOnlyDict:
        for item in value.values():
            if type(item) not in ATOMIC:
                return {k: _plain_copy(v) for k, v in value.items()}
        return dict(value)
    if kind is set or kind is ReadOnlySet:
        if ATOMIC.issuperset(map(type, value)):
            return set(value)
        raise _Opaque
    if kind is tuple:
        items = [_plain_copy(item) for item in value]
        return value if all(a is b for a, b in zip(items, value, strict=True)) else tuple(items)
    if kind is frozenset and ATOMIC.issuperset(map(type, value)):
        return value
    if isinstance(value, enum.Enum):
        return value
    raise _Opaque


def plain_again(value: Any) -> Any:
    """``value`` with every read-only container in it replaced by a plain copy: what a
    skill was lent and stored in its output (``out = uif.intermediate_data["docs"]``).

    The UIF holds only plain containers between skills and after the run (the host may
    change them; a reader is lent a copy naming its own key). Containers around lent ones
    are the skill's own output and are changed in place; the value itself when nothing was
    lent, which is found by a walk as cheap as a read of it.
    """
    kind = type(value)
    if kind in READ_ONLY:
        return own_copy(value)
    try:
        if kind is list:
            if not ATOMIC.issuperset(map(type, value)):
                for index, item in enumerate(value):
                    if type(item) not in ATOMIC and not (
                            type(item) is dict
                            and ATOMIC.issuperset(map(type, item.values()))):
                        plain = plain_again(item)
                        if plain is not item:
                            value[index] = plain
        elif kind is dict:
            if not ATOMIC.issuperset(map(type, value.values())):
                for key, item in value.items():
                    if type(item) not in ATOMIC:
                        plain = plain_again(item)
                        if plain is not item:
                            value[key] = plain
        elif kind is tuple:
            items = [plain_again(item) for item in value]
            if any(a is not b for a, b in zip(items, value, strict=True)):
                return tuple(items)
    except RecursionError:  # too deep (or holding itself) to walk: stored as it is
        pass
    return value


def own_writes(writes: dict[str, Any]) -> None:
    """Make a skill's data writes plain (``plain_again``) before they are merged."""
    for key, value in writes.items():
        if type(value) not in ATOMIC:
            plain = plain_again(value)
            if plain is not value:
                writes[key] = plain


def read_only_copy(value: Any, key: str) -> Any:
    """What a skill that reads (but may not write) ``key`` is handed for a container value:
    a read-only copy, or a plain deep copy of a value holding objects."""
    frozen, complete = freeze(value, (key, False))
    return frozen if complete else own_copy(value)


def _field_kind(annotation: Any) -> type:
    origin = get_origin(annotation)
    if origin in (list, dict, set):
        return origin  # type: ignore[no-any-return]
    for arg in get_args(annotation):
        if get_origin(arg) in (list, dict, set) or arg in (list, dict, set):
            return _field_kind(arg)
    return annotation  # type: ignore[no-any-return]


_READ_ONLY_OF: dict[type, type] = {list: ReadOnlyList, dict: ReadOnlyDict, set: ReadOnlySet}
_FIELD_KINDS = tuple(_field_kind(UIF_FIELD_TYPES[name]) for name in FROZEN_FIELDS)


def _empty(name: str, kind: type) -> Any:
    empty: Any = _READ_ONLY_OF[kind]()
    empty._sof_owner = (name, True)
    return empty


# An empty field is frozen into a shared read-only empty of its own (errors name the field).
_FIELD_EMPTIES = tuple(
    _empty(name, kind) for name, kind in zip(FROZEN_FIELDS, _FIELD_KINDS, strict=True)
)
_ALL_EMPTY = dict(zip(FROZEN_FIELDS, _FIELD_EMPTIES, strict=True))
_field_values = operator.itemgetter(*FROZEN_FIELDS)

# --- UIF subclasses with container fields of their own (SAM's dict ``vetted_content``) ----

_EXTRA_FROZEN: dict[type, tuple[str, ...]] = {UIF: ()}


def extra_frozen_fields(uif_class: type[UIF]) -> tuple[str, ...]:
    """Container fields a UIF subclass has beyond ``FROZEN_FIELDS`` (none for ``UIF``).

    They are read-only during a run like the others; looked up once per run.
    """
    extra = _EXTRA_FROZEN.get(uif_class)
    if extra is None:
        extra = _EXTRA_FROZEN[uif_class] = tuple(sorted(
            name
            for name, info in uif_class.model_fields.items()
            if _is_container(info.annotation)
            and name != "intermediate_data"
            and name not in PER_VIEW_FIELDS
            and name not in _ALL_EMPTY
        ))
    return extra


def copyable_fields() -> frozenset[str]:
    """Container fields of ``UIF`` and of every subclass defined so far: a skill declaring
    one as output gets its own copy (``Step.copied_fields``). Called once per compile."""
    names = set(FROZEN_FIELDS)
    pending = list(UIF.__subclasses__())
    while pending:
        subclass = pending.pop()
        names.update(extra_frozen_fields(subclass))
        pending.extend(subclass.__subclasses__())
    return frozenset(names)


class RunFreeze:
    """The UIF fields one run made read-only, and the originals it puts back when it ends.

    Per run, never per skill. While the run goes, ``executed`` and ``timings`` are the UIF's
    own ``executed_skills`` and ``skill_timings``: the coordinator records each skill there,
    and skills see the read-only versions the fields held before the run.
    """

    __slots__ = ("executed", "extra", "extra_originals", "fields", "originals", "timings")

    def __init__(self, extra: tuple[str, ...] = ()) -> None:
        #: field written during the run -> (read-only version, the value written)
        self.fields: dict[str, tuple[Any, Any]] | None = None
        #: the UIF's FROZEN_FIELDS values before the run
        self.originals: tuple[Any, ...] = ()
        #: a UIF subclass's own container fields (``extra_frozen_fields``) and their values
        self.extra = extra
        self.extra_originals: tuple[Any, ...] = ()

    executed: list[str]
    timings: dict[str, float]

    def freeze_uif(self, fields: dict[str, Any], plan: list[str] | None = None) -> None:
        """Make the UIF's container fields read-only for the run (its ``__dict__`` is given).

        ``plan`` is a read-only ``execution_plan`` made earlier, used if it is equal.
        """
        originals = self.originals = _field_values(fields)
        self.executed = fields["executed_skills"]
        self.timings = fields["skill_timings"]
        fields.update(_ALL_EMPTY)  # the usual case; the few non-empty fields are redone below
        value = originals[0]
        if value:
            fields["execution_plan"] = (
                plan if plan is not None and value == plan
                else freeze(value, ("execution_plan", True))[0]
            )
        if any(originals[1:]):  # rare: usually only the plan holds anything
            for name, value in zip(FROZEN_FIELDS[1:], originals[1:], strict=True):
                if value:
                    # A field keeps what freeze could not reach (an object inside
                    # user_context): the containers around it are read-only all the same.
                    fields[name] = freeze(value, (name, True))[0]
        if self.extra:
            self.extra_originals = tuple(fields[name] for name in self.extra)
            for name, value in zip(self.extra, self.extra_originals, strict=True):
                fields[name] = freeze(value, (name, True))[0]

    def keep(self, name: str, frozen: Any, value: Any) -> Any:
        """Store ``frozen``, the read-only version of ``value`` made earlier, for UIF field
        ``name``; the run puts ``value`` back when it ends."""
        if frozen is not value:
            if self.fields is None:
                self.fields = {}
            self.fields[name] = (frozen, value)
        return frozen

    def thaw_uif(self, fields: dict[str, Any]) -> None:
        """Put the originals back where the UIF still holds what this run made of them."""
        if not self.originals:  # never frozen
            return
        written = self.fields
        if self.extra:
            self._thaw(fields, self.extra, self.extra_originals)
        if written is None:  # no skill wrote a container field: all are as frozen
            fields.update(zip(FROZEN_FIELDS, self.originals, strict=True))
            return
        self._thaw(fields, FROZEN_FIELDS, self.originals)

    def _thaw(self, fields: dict[str, Any], names: tuple[str, ...],
              originals: tuple[Any, ...]) -> None:
        written = self.fields or {}
        for name, original in zip(names, originals, strict=True):
            current = fields[name]
            if name in written and current is written[name][0]:
                fields[name] = written[name][1]
            elif type(current) in READ_ONLY:  # what freeze_uif made of it
                fields[name] = original


def exact_key(key: Any) -> str:
    """A key or UIF field name as an exact ``str``.

    Keys are stored in the run's own dicts under its lock, where a ``str`` subclass could
    run its ``__eq__`` (a hash collision with a key already there): a skill's keys are made
    plain strings where it writes them. Anything but a string is refused.
    """
    if type(key) is str:
        return key
    if issubclass(type(key), str):  # type(): the key's own __class__ is not asked
        return str.__str__(key)
    raise TypeError(f"intermediate_data keys are strings, not {type(key).__name__} ({key!r})")


class ScopedData(MutableMapping[str, Any]):
    """One skill's scope: ``intermediate_data`` as it may see it, and its UIF field writes.

    Reads of undeclared keys raise ``UndeclaredReadError``; writes of keys or fields not in
    its outputs raise ``UndeclaredWriteError``. What it wrote is kept in ``written`` (data)
    and ``written_fields`` (UIF fields) for the merge.

    A declared key is a data key whatever its name: a key named like a UIF field
    (``final_response``) is both that field and this mapping's key, each holding what was
    written there.
    """

    __slots__ = (
        "_copies",
        "_readable",
        "_skill",
        "_source",
        "_writable",
        "allowed_fields",
        "written",
        "written_fields",
    )

    #: Copies handed out of values that are not read-only (set on first need).
    _copies: dict[str, Any]

    def __init__(
        self,
        skill: str,
        source: dict[str, Any],
        readable: frozenset[str],
        writable: frozenset[str],
        allowed_fields: frozenset[str] = _NOTHING_WRITTEN,
    ) -> None:
        self._skill = skill
        self._source = source
        self._readable = readable
        self._writable = writable
        self.allowed_fields = allowed_fields
        self.written: dict[str, Any] = {}
        #: Stays the shared empty frozenset until the first field write (most skills write none).
        self.written_fields: set[str] | frozenset[str] = _NOTHING_WRITTEN

    @property
    def skill(self) -> str:
        return self._skill

    # --- UIF field writes (called by UIF.__setattr__ on a view) ---------------------------

    def check_field_write(self, name: str) -> None:
        if name in self.allowed_fields:
            if self.written_fields is _NOTHING_WRITTEN:
                self.written_fields = {name}
            else:
                self.written_fields.add(name)  # type: ignore[union-attr]
        elif name in _NEVER_ASSIGNED:
            raise never_assigned(self._skill, name)
        elif name not in BOOKKEEPING_FIELDS:
            raise UndeclaredWriteError(self._skill, name)

    # --- the mapping ---------------------------------------------------------------------

    def __getitem__(self, key: str) -> Any:
        written = self.written.get(key, _MISSING)
        if written is not _MISSING:
            return written
        if key not in self._readable:
            if key in self._writable:
                raise KeyError(key)
            raise UndeclaredReadError(self._skill, key)
        value = self._source[key]
        if type(value) in ATOMIC:
            return value
        return self._hand_out(key, value)

    def _hand_out(self, key: str, value: Any) -> Any:
        """A container or object value: the skill's own copy, the same one at every read.

        Read-only for an input (changing it raises, naming the key); plain for a key that is
        also an output, and then the copy is the skill's write. Copies are made for readers,
        not writers, so a skill that writes a list pays nothing for isolation.
        """
        if key in self._writable:  # input and output: the skill's copy is its write
            mine = own_copy(value)
            self.written[exact_key(key)] = mine
            return mine
        if type(value) in READ_ONLY:  # already read-only (a skill wrote what it had read)
            return value
        try:
            copies = self._copies
        except AttributeError:  # unset until needed: most skills never need it
            copies = self._copies = {}
        if key in copies:
            return copies[key]
        mine = copies[key] = read_only_copy(value, key)
        return mine

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except UndeclaredReadError:
            raise
        except KeyError:
            return default

    def __contains__(self, key: object) -> bool:
        if key in self.written:
            return True
        if key not in self._readable:
            if key in self._writable:
                return False
            raise UndeclaredReadError(self._skill, str(key))
        return key in self._source

    def __setitem__(self, key: str, value: Any) -> None:
        if key not in self._writable:
            raise UndeclaredWriteError(self._skill, key)
        if type(key) is not str:
            key = exact_key(key)
        self.written[key] = value

    def __delitem__(self, key: str) -> None:
        if key not in self._writable:
            raise UndeclaredWriteError(self._skill, key)
        del self.written[key]

    def __iter__(self) -> Iterator[str]:
        seen = set(self.written)
        yield from self.written
        for key in self._readable:
            if key in self._source and key not in seen:
                yield key

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __repr__(self) -> str:
        return f"ScopedData(skill={self._skill!r}, keys={list(self)!r})"

    def to_dict(self) -> dict[str, Any]:
        return {key: self[key] for key in self}

    def given(self) -> dict[str, Any]:
        """The inputs the skill was given, as stored (no copies made): for comparing what it
        returned with, never for handing out."""
        source = self._source
        return {key: source[key] for key in self._readable if key in source}


#: The field-write guard is the scope itself; the old name is kept for readers and type hints.
WriteGuard = ScopedData

# --- strict_declarations = false ---------------------------------------------------------

declarations_log = logging.getLogger("sof.declarations")
_reported: set[tuple[str, str, str]] = set()
_report_lock = threading.Lock()


def report_undeclared(skill: str, key: str, access: str) -> None:
    """Log, once per process for each skill, key and access, that a skill allowed to
    (``LenientScopedData``) used an undeclared key, with the declaration to add. ``access``
    is ``"read"`` or ``"write"`` (an ``intermediate_data`` key) or ``"set"`` (a UIF field)."""
    marker = (skill, key, access)
    with _report_lock:
        if marker in _reported:
            return
        _reported.add(marker)
    quoted = json.dumps(key, ensure_ascii=False)
    if access == "read":
        what, lists = "read the intermediate_data key", "required_inputs or optional_inputs"
    else:
        what = "set the UIF field" if access == "set" else "wrote the intermediate_data key"
        lists = "output_keys"
    declarations_log.warning(
        "skill %r %s %s, which is not in its %s (allowed because strict_declarations is "
        "off); add %s to %s of %s", skill, what, quoted, lists, quoted, lists, skill,
    )


#: Fields no skill may assign, declared or not.
_NEVER_ASSIGNED = frozenset({"intermediate_data", "task_id"})


class LenientScopedData(ScopedData):
    """The scope of a skill whose class opts in (``sof_sam`` skills) when the configuration
    has ``strict_declarations = false``: it may read and write undeclared
    ``intermediate_data`` keys and assign undeclared UIF fields, each logged once with the
    declaration to add. Undeclared writes are merged like declared ones. Values it reads are
    handed out exactly as to a declared reader (read-only), and ``task_id`` and
    ``intermediate_data`` itself stay unassignable.
    """

    __slots__ = ()

    def check_field_write(self, name: str) -> None:
        if name in self.allowed_fields or name in BOOKKEEPING_FIELDS or name in _NEVER_ASSIGNED:
            super().check_field_write(name)
            return
        report_undeclared(self._skill, name, "set")
        if self.written_fields is _NOTHING_WRITTEN:
            self.written_fields = {name}
        else:
            self.written_fields.add(name)  # type: ignore[union-attr]

    def __getitem__(self, key: str) -> Any:
        written = self.written.get(key, _MISSING)
        if written is not _MISSING:
            return written
        if key not in self._readable:
            report_undeclared(self._skill, key, "read")
        value = self._source[key]
        if type(value) in ATOMIC:
            return value
        return self._hand_out(key, value)

    def __contains__(self, key: object) -> bool:
        if key in self.written:
            return True
        if key not in self._readable:
            report_undeclared(self._skill, str(key), "read")
        return key in self._source

    def __setitem__(self, key: str, value: Any) -> None:
        if type(key) is not str:
            key = exact_key(key)
        if key not in self._writable:
            report_undeclared(self._skill, key, "write")
        self.written[key] = value

    def __delitem__(self, key: str) -> None:
        if key not in self._writable:
            report_undeclared(self._skill, key, "write")
        del self.written[key]

    def __iter__(self) -> Iterator[str]:
        yield from self.written
        written = self.written
        for key in self._source:
            if key not in written:
                yield key

    def to_dict(self) -> dict[str, Any]:
        # SOF's own reads (a dump, a diff) are not the skill's: nothing is logged for them.
        return {**self._source, **self.written}

    def given(self) -> dict[str, Any]:
        return dict(self._source)


class StepAccess(Protocol):
    """What a view needs of a compiled step (``sof_core.Step`` has it)."""

    @property
    def name(self) -> str: ...
    @property
    def readable(self) -> frozenset[str]: ...
    @property
    def writable(self) -> frozenset[str]: ...
    @property
    def writable_fields(self) -> frozenset[str]: ...


def own_fields(fields: dict[str, Any], scope: ScopedData, names: frozenset[str]) -> None:
    """Give a view its own copies of the container fields its skill declares as outputs.

    The skill may then change them in place; whatever they hold when it returns is its write
    (merged like an assignment, and validated).
    """
    for name in names:
        fields[name] = own_copy(fields[name])
    written = set(names)
    if scope.written_fields:
        written |= scope.written_fields
    scope.written_fields = written


def skill_view(uif: UIF, step: StepAccess) -> tuple[UIF, ScopedData]:
    """A shallow UIF copy for one skill, plus its scope (what it wrote ends up there).

    Built without validation (the source is valid): a dict copy and three slot writes,
    a fraction of ``model_copy()``. Executors that run skills elsewhere build one per call
    and replay the far side's changes into it (``sof_core.replay_changes``). Container
    fields the step declares as outputs are the view's own copies (``Step.copied_fields``).
    """
    source = uif.__dict__
    scope_type: type[ScopedData] = getattr(step, "scope_type", ScopedData)
    scope = scope_type(
        step.name, source["intermediate_data"], step.readable, step.writable,
        step.writable_fields,
    )
    view = _new(type(uif))
    fields = view.__dict__
    fields.update(source)
    fields["intermediate_data"] = scope
    fields["log_trace"] = []
    fields["warnings"] = []
    fields["skill_outputs"] = {}
    _set_fields_set(view, set(uif.__pydantic_fields_set__))
    _set_extra(view, None)
    _set_private(view, {"_sof_guard": scope})
    copied = getattr(step, "copied_fields", None)
    if copied:
        own_fields(fields, scope, copied)
    return view, scope
