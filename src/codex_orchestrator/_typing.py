"""`NamedTuple`, `TypedDict` and `Protocol` for the modules a run loads, without importing `typing` when
the program runs.

Importing `typing` costs about 3.5 ms, and every `typing.NamedTuple` or `TypedDict` class then compiles
each field's annotation: together more than a trivial stage. Type checkers read the `typing` originals
(the `TYPE_CHECKING` branch, which mypy and ruff take as true). At run time, as with `typing`:
- a NamedTuple class is the `collections.namedtuple` of its annotated fields (defaults last), carrying
  the class body's methods, properties and docstring;
- calling a TypedDict class makes a plain `dict`;
- a Protocol class is an ordinary class, only ever used in annotations.
`tests/test_typing_shim.py` holds the first two to `typing`'s own behaviour.

A module that uses these imports `TYPE_CHECKING` from here (or sets `TYPE_CHECKING = False` itself) and
keeps `Any`, `IO` and the like under `if TYPE_CHECKING:`; with `from __future__ import annotations` no
annotation is evaluated.
"""

from __future__ import annotations

TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import NamedTuple as NamedTuple
    from typing import Protocol as Protocol
    from typing import TypedDict as TypedDict
else:
    import collections

    # what typing.NamedTuple refuses to take from a class body, and what it leaves out
    _PROHIBITED = frozenset(
        {"__new__", "__init__", "__slots__", "__getnewargs__", "_fields", "_field_defaults"}
        | {"_make", "_replace", "_asdict", "_source"}
    )
    _SPECIAL = frozenset({"__module__", "__name__", "__annotations__"})

    class _NamedTupleMeta(type):
        def __new__(mcs, name, bases, namespace):
            if bases == ():  # NamedTuple itself
                return super().__new__(mcs, name, bases, namespace)
            annotations = namespace.get("__annotations__", {})
            fields = list(annotations)
            defaults = []
            for field in fields:
                if field in namespace:
                    defaults.append(namespace[field])
                elif defaults:
                    raise TypeError(
                        f"Non-default namedtuple field {field} cannot follow default field"
                        f"{'s' if len(defaults) > 1 else ''} {', '.join(fields[: fields.index(field)])}"
                    )
            cls = collections.namedtuple(name, fields, defaults=defaults, module=namespace["__module__"])
            cls.__annotations__ = dict(annotations)
            for key, value in namespace.items():
                if key in _PROHIBITED:
                    raise AttributeError("Cannot overwrite NamedTuple attribute " + key)
                if key not in _SPECIAL and key not in cls._fields:
                    setattr(cls, key, value)
            return cls

    class NamedTuple(metaclass=_NamedTupleMeta):
        pass

    class _TypedDictMeta(type):
        def __new__(mcs, name, bases, namespace, total=True):
            return super().__new__(mcs, name, (), namespace)

        def __call__(cls, *args, **kwargs):
            return dict(*args, **kwargs)

    class TypedDict(metaclass=_TypedDictMeta):
        pass

    class Protocol:
        pass
