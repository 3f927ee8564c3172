"""A small, strict JSON Schema (2020-12 subset) validator for our own bundled schemas.

Why not jsonschema everywhere: importing it costs ~100 ms and start-up is a feature. This validator
implements exactly the keywords our schemas use and *refuses* a schema with any other keyword, so it
can never silently ignore a constraint. The test suite checks it agrees with jsonschema on our schemas.
"""

from __future__ import annotations

import re
from functools import cache

from codex_orchestrator import resources
from codex_orchestrator._typing import TYPE_CHECKING, NamedTuple
from codex_orchestrator.errors import AssetError

if TYPE_CHECKING:
    from typing import Any

ANNOTATIONS = {"$schema", "$id", "$comment", "title", "description", "default", "examples", "format", "$defs"}
SUPPORTED = ANNOTATIONS | {
    "type",
    "properties",
    "required",
    "additionalProperties",
    "patternProperties",
    "items",
    "enum",
    "const",
    "pattern",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "minItems",
    "maxItems",
    "uniqueItems",
    "$ref",
    "oneOf",
    "anyOf",
    "minProperties",
}

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}


# A value's place, built only when a violation names it: the root, or (parent place, key or index).
_ROOT: Any = None
if TYPE_CHECKING:
    _Path = Any


class Violation(NamedTuple):
    path: str  # JSON path of the offending value, e.g. $.pipelines[0].stages[1].command
    message: str  # what was expected

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def _is_type(value: Any, name: str) -> bool:
    if name in ("integer", "number") and isinstance(value, bool):
        return False
    if name == "integer" and isinstance(value, float):
        return value.is_integer()
    return isinstance(value, _TYPES[name])


def _json_equal(a: Any, b: Any) -> bool:
    """Equality as JSON Schema defines it: true is not 1, 1.0 is 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    a_num, b_num = isinstance(a, int | float), isinstance(b, int | float)
    if a_num or b_num:
        return a_num and b_num and bool(a == b)
    if isinstance(a, str) or isinstance(b, str):  # a str enum member is the JSON string it encodes to
        return isinstance(a, str) and isinstance(b, str) and str.__eq__(a, b)
    return type(a) is type(b) and bool(a == b)


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def check_schema_keywords(schema: Any, where: str = "#") -> None:
    """Raise AssetError if the schema uses a keyword this validator does not implement."""
    if isinstance(schema, bool):
        return
    if not isinstance(schema, dict):
        raise AssetError(f"schema node {where} is not an object")
    unknown = set(schema) - SUPPORTED
    if unknown:
        raise AssetError(f"schema node {where} uses unsupported keywords: {', '.join(sorted(unknown))}")
    for key in ("properties", "$defs", "patternProperties"):
        for name, sub in schema.get(key, {}).items():
            check_schema_keywords(sub, f"{where}/{key}/{name}")
    for key in ("items", "additionalProperties"):
        if key in schema:
            check_schema_keywords(schema[key], f"{where}/{key}")
    for key in ("oneOf", "anyOf"):
        for i, sub in enumerate(schema.get(key, [])):
            check_schema_keywords(sub, f"{where}/{key}/{i}")


class Validator:
    def __init__(self, schema: dict[str, Any]) -> None:
        check_schema_keywords(schema)
        self.root = schema
        self._trying = 0  # inside an alternative: its violations are counted, their wording is not needed

    def _resolve(self, ref: str) -> Any:
        if not ref.startswith("#/"):
            raise AssetError(f"unsupported $ref {ref!r}")
        node: Any = self.root
        for part in ref[2:].split("/"):
            node = node[part]
        return node

    def errors(self, instance: Any) -> list[Violation]:
        out: list[Violation] = []
        self._check(instance, self.root, _ROOT, out)
        return out

    def errors_within(
        self, properties: dict[str, Any], items: dict[str, dict[int, Any]] | None = None
    ) -> list[Violation]:
        """Violations of a document known valid but for what is passed: top-level `properties` (name to
        value) and, for array properties, single `items` (name to {index: value}). The rest, and so
        `required` and the arrays' own length and uniqueness, are unchanged and not checked again."""
        out: list[Violation] = []
        root = self.root
        if "$ref" in root or "oneOf" in root or "anyOf" in root:  # not a plain object schema: check whole
            raise AssetError("errors_within needs a plain object schema")
        shell = {k: v for k, v in root.items() if k not in ("required", "minProperties")}
        self._check_object(properties, shell, _ROOT, out)
        for name, changed in (items or {}).items():
            prop = root.get("properties", {}).get(name)
            if not isinstance(prop, dict) or "items" not in prop or set(prop) - {"type", "items"}:
                raise AssetError(f"errors_within cannot check single items of {name!r}")
            for index, value in changed.items():
                self._check(value, prop["items"], ((_ROOT, name), index), out)
        return out

    def _check(self, value: Any, schema: Any, path: _Path, out: list[Violation]) -> None:
        if schema is True:
            return
        if schema is False:
            out.append(Violation(_render(path), "no value is allowed here"))
            return
        if "$ref" in schema:
            self._check(value, self._resolve(schema["$ref"]), path, out)
        if "type" in schema:
            types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
            if not any(_is_type(value, t) for t in types):
                out.append(Violation(_render(path), f"expected {' or '.join(types)}, got {_describe(value)}"))
                return
        if "enum" in schema and not any(_json_equal(value, choice) for choice in schema["enum"]):
            choices = ", ".join(repr(v) for v in schema["enum"])
            out.append(Violation(_render(path), f"expected one of {choices}, got {value!r}"))
        if "const" in schema and not _json_equal(value, schema["const"]):
            out.append(Violation(_render(path), f"expected {schema['const']!r}, got {value!r}"))
        if isinstance(value, str):
            if "minLength" in schema and len(value) < schema["minLength"]:
                out.append(Violation(_render(path), f"expected at least {schema['minLength']} characters"))
            if "maxLength" in schema and len(value) > schema["maxLength"]:
                out.append(Violation(_render(path), f"expected at most {schema['maxLength']} characters"))
            if "pattern" in schema and not _regex(schema["pattern"]).search(value):
                out.append(
                    Violation(
                        _render(path), f"expected a string matching {schema['pattern']!r}, got {value!r}"
                    )
                )
        if isinstance(value, int | float) and not isinstance(value, bool):
            if "minimum" in schema and value < schema["minimum"]:
                out.append(Violation(_render(path), f"expected a number >= {schema['minimum']}, got {value}"))
            if "maximum" in schema and value > schema["maximum"]:
                out.append(Violation(_render(path), f"expected a number <= {schema['maximum']}, got {value}"))
            if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
                out.append(
                    Violation(_render(path), f"expected a number > {schema['exclusiveMinimum']}, got {value}")
                )
        if isinstance(value, list):
            if "minItems" in schema and len(value) < schema["minItems"]:
                out.append(Violation(_render(path), f"expected at least {schema['minItems']} items"))
            if "maxItems" in schema and len(value) > schema["maxItems"]:
                out.append(Violation(_render(path), f"expected at most {schema['maxItems']} items"))
            if schema.get("uniqueItems"):
                seen: list[Any] = []
                for item in value:
                    if item in seen:
                        out.append(Violation(_render(path), f"expected unique items, {item!r} repeats"))
                        break
                    seen.append(item)
            if "items" in schema:
                for i, item in enumerate(value):
                    self._check(item, schema["items"], (path, i), out)
        if isinstance(value, dict):
            self._check_object(value, schema, path, out)
        for key in ("oneOf", "anyOf"):
            if key in schema:
                self._check_alternatives(value, schema, key, path, out)

    def _check_object(
        self, value: dict[str, Any], schema: dict[str, Any], path: _Path, out: list[Violation]
    ) -> None:
        for name in schema.get("required", []):
            if name not in value:
                out.append(Violation(_render(path), f"missing required property {name!r}"))
        if "minProperties" in schema and len(value) < schema["minProperties"]:
            out.append(Violation(_render(path), f"expected at least {schema['minProperties']} properties"))
        props = schema.get("properties", {})
        patterns = schema.get("patternProperties", {})
        extra = schema.get("additionalProperties", True)
        for name, item in value.items():
            sub = (path, name)
            matched = False
            if name in props:
                matched = True
                self._check(item, props[name], sub, out)
            for pattern, pschema in patterns.items():
                if _regex(pattern).search(name):
                    matched = True
                    self._check(item, pschema, sub, out)
            if not matched:
                if extra is False:
                    allowed = ", ".join(sorted(props)) or "none"
                    guess = "" if self._trying else _guess(name, props)
                    out.append(
                        Violation(_render(sub), f"unknown property {name!r} ({guess}allowed: {allowed})")
                    )
                elif isinstance(extra, dict):
                    self._check(item, extra, sub, out)

    def _check_alternatives(
        self, value: Any, schema: dict[str, Any], key: str, path: _Path, out: list[Violation]
    ) -> None:
        results = []
        self._trying += 1
        try:
            for alt in schema[key]:
                errs: list[Violation] = []
                self._check(value, alt, path, errs)
                results.append(errs)
        finally:
            self._trying -= 1
        passing = sum(1 for errs in results if not errs)
        if (key == "anyOf" and passing == 0) or (key == "oneOf" and passing != 1):
            if passing > 1:
                out.append(Violation(_render(path), "matches more than one allowed form"))
                return
            # report the alternative that came closest (fewest errors, deepest path), fully worded
            best = min(
                range(len(results)), key=lambda i: (len(results[i]), -max(len(e.path) for e in results[i]))
            )
            if self._trying:
                out.extend(results[best])
            else:
                self._check(value, schema[key][best], path, out)


def _guess(name: str, known: dict[str, Any]) -> str:
    import difflib  # only a refusal needs it

    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}? " if close else ""


@cache
def _regex(pattern: str) -> re.Pattern[str]:
    """A schema's `pattern` as JSON Schema (ECMA-262) reads it: there `$` matches at the very end only,
    where Python's also matches before a final newline, so each `$` outside a character class becomes
    `\\Z` (`^[a-z]+$` must refuse "abc\\n")."""
    out: list[str] = []
    escaped = False
    in_class = -1  # characters read since a class's `[` (-1: outside one)
    for char in pattern:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
            if in_class >= 0:
                in_class += 1  # an escape is one of the class's characters
        elif in_class >= 0:
            # as Python reads it: a `]` first in the class (after `[` or `[^`) is a literal
            closes = char == "]" and not (in_class == 0 or (in_class == 1 and out[-1] == "^"))
            in_class = -1 if closes else in_class + 1
        elif char == "[":
            in_class = 0
        elif char == "$":
            char = "\\Z"
        out.append(char)
    return re.compile("".join(out))


def _render(path: _Path) -> str:
    """`$.pipelines[0].stages[1]['odd key']` from the chain of (parent, key) pairs."""
    parts: list[str] = []
    node: Any = path
    while node is not _ROOT:
        node, key = node
        if isinstance(key, int):
            parts.append(f"[{key}]")
        elif key.isascii() and key.isidentifier():  # [A-Za-z_][A-Za-z0-9_]*
            parts.append(f".{key}")
        else:
            parts.append(f"[{key!r}]")
    return "$" + "".join(reversed(parts))


@cache
def validator(schema_name: str) -> Validator:
    return Validator(resources.schema(schema_name))


def validate(instance: Any, schema_name: str) -> list[Violation]:
    """All violations of `instance` against the bundled schema `schema_name` (empty list: valid)."""
    return validator(schema_name).errors(instance)
