"""The run-time stand-ins of `codex_orchestrator._typing` behave as `typing`'s own classes do."""

from __future__ import annotations

import pickle
import typing

import pytest

from codex_orchestrator import _typing


def _named_tuples(base: type) -> type:
    class Point(base):  # type: ignore[valid-type,misc]
        """A point."""

        x: int
        y: int = 2
        label: str = "p"

        @property
        def total(self) -> int:
            return int(self.x) + int(self.y)

        def moved(self, dx: int) -> Point:
            return self._replace(x=self.x + dx)  # type: ignore[no-any-return]

        @classmethod
        def origin(cls) -> Point:
            return cls(0, 0)  # type: ignore[no-any-return]

    return Point


def test_a_named_tuple_behaves_as_typing_makes_it() -> None:
    ours, theirs = _named_tuples(_typing.NamedTuple), _named_tuples(typing.NamedTuple)
    for cls in (ours, theirs):
        point = cls(1)
        assert point == (1, 2, "p") and tuple(point) == (1, 2, "p")
        assert cls._fields == ("x", "y", "label") and cls._field_defaults == {"y": 2, "label": "p"}
        assert repr(point) == "Point(x=1, y=2, label='p')"
        assert point.total == 3 and point.moved(4) == (5, 2, "p") and cls.origin() == (0, 0, "p")
        assert point._asdict() == {"x": 1, "y": 2, "label": "p"} and cls._make([7, 8, "q"]).y == 8
        assert cls.__doc__ == "A point." and cls.__module__ == __name__
        assert cls.__qualname__ == "_named_tuples.<locals>.Point"
        written = {k: getattr(v, "__forward_arg__", v) for k, v in cls.__annotations__.items()}
        assert written == {"x": "int", "y": "int", "label": "str"}  # (typing wraps each in a ForwardRef)
        assert issubclass(cls, tuple) and hash(point) == hash((1, 2, "p"))
        with pytest.raises(TypeError):
            cls()
        with pytest.raises(AttributeError):
            point.x = 3  # type: ignore[misc]
    assert type(ours.total) is type(theirs.total)


def test_a_named_tuple_at_module_level_pickles() -> None:
    from codex_orchestrator.runs.layout import RunPaths

    paths = RunPaths(__import__("pathlib").Path("/tmp/x"))
    assert pickle.loads(pickle.dumps(paths)) == paths


@pytest.mark.parametrize("base", [_typing.NamedTuple, typing.NamedTuple], ids=["ours", "typing"])
def test_what_a_named_tuple_refuses(base: type) -> None:
    with pytest.raises(TypeError, match="Non-default namedtuple field b cannot follow default field a"):

        class Wrong(base):  # type: ignore[valid-type,misc]
            a: int = 1
            b: int

    with pytest.raises(AttributeError, match="Cannot overwrite NamedTuple attribute _replace"):

        class Clash(base):  # type: ignore[valid-type,misc]
            a: int

            def _replace(self) -> None: ...


def test_a_typed_dict_makes_plain_dicts() -> None:
    class Base(_typing.TypedDict):  # type: ignore[misc]
        a: int

    class More(Base, total=False):  # type: ignore[misc]
        b: str

    for cls in (Base, More):
        made = cls(a=1, b="x") if cls is More else cls(a=1)
        assert type(made) is dict and made["a"] == 1
    assert More.__name__ == "More" and More({"a": 2}) == {"a": 2}


def test_the_modules_of_a_run_never_import_typing() -> None:
    """The stand-ins exist for start-up: a `typing` import anywhere on the path of a run undoes them
    (tests/cli/test_quick.py runs a whole `start` and checks it too)."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import codex_orchestrator.cli._start, codex_orchestrator.runs.engine, codex_orchestrator.cli._show\n"
        "import codex_orchestrator.pipelines.resolve, codex_orchestrator.pipelines.adapters\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'typing'))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
