"""What the zoo's YAML files share: a strict pydantic base, one-line validation errors that name the entry and the
field, and a YAML loader that refuses duplicate keys, cached per file and modification time.

Used by the registry (registry.yaml) and the data catalogue (catalogue.yaml). No TensorFlow.
"""

from __future__ import annotations

import difflib
import functools
import os
from pathlib import Path
from typing import Annotated, Any, Callable, TypeVar, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import PydanticCustomError

__all__ = ["Strict", "validation_message", "validate", "load_yaml", "cached_by_mtime", "UniqueKeyLoader",
           "name_unknown_keys", "validate_model", "field_names", "UNKNOWN_KEY"]

T = TypeVar("T")


class Strict(BaseModel):
    """`extra="forbid"`: a misspelt field is an error, not a silently ignored fact; frozen: facts do not change."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# The error type name_unknown_keys gives a misspelt key: reported before anything else, since the "Field required"
# of the name it was meant to be is its echo.
UNKNOWN_KEY = "unknown_key"


def validation_message(where: str, err: ValidationError) -> str:
    """'<where>: field 'a.b': <pydantic's reason>' for the first error (an unknown key first of all)."""
    errors = err.errors()
    first = next((e for e in errors if e["type"] == UNKNOWN_KEY), errors[0])
    field = ".".join(str(p) for p in first["loc"]) or "(entry)"
    return f"{where}: field '{field}': {first['msg']}"


def _members(annotation) -> list:
    """The types an annotation stands for: Annotated unwrapped, the members of a Union / Optional."""
    if get_origin(annotation) is Annotated:
        return _members(get_args(annotation)[0])
    if get_origin(annotation) is Union:
        return [t for member in get_args(annotation) for t in _members(member)]
    return [annotation]


def _step(annotation, part) -> list:
    """What sits at `part` (a field name, a list index, a mapping key) inside a value of type `annotation`."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        field = annotation.model_fields.get(part) if isinstance(part, str) else None
        return [field.annotation] if field else []
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (list, tuple, set, frozenset) and isinstance(part, int) and args:
        return [args[0]]
    if origin is dict and len(args) == 2:
        return [args[1]]
    return []


def field_names(schema: type[BaseModel], loc: tuple) -> list[str]:
    """The keys the model at `loc` inside `schema` accepts, in declaration order (the members of a union
    together); [] where `loc` leads to no model."""
    types = [schema]
    for part in loc:
        types = [after for t in types for member in _members(t) for after in _step(member, part)]
    names: list[str] = []
    for t in (member for t in types for member in _members(t)):
        if isinstance(t, type) and issubclass(t, BaseModel):
            names += [name for name in t.model_fields if name not in names]
    return names


def _unknown_key_text(key: str, names: list[str]) -> str:
    close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
    if close:
        return f"unknown key (did you mean '{close[0]}'?)"
    return f"unknown key (the keys here: {', '.join(names)})" if names else "unknown key"


def name_unknown_keys(schema: type[BaseModel], err: ValidationError) -> ValidationError:
    """`err` of `schema.model_validate` with each key the schema does not have ("Extra inputs are not
    permitted") told as an UNKNOWN_KEY error suggesting the closest name it has at that place (difflib); the
    other errors keep their type, place and message."""
    errors = err.errors()
    if not any(e["type"] == "extra_forbidden" for e in errors):
        return err
    line_errors = []
    for e in errors:
        if e["type"] == "extra_forbidden":
            text, kind = _unknown_key_text(str(e["loc"][-1]), field_names(schema, e["loc"][:-1])), UNKNOWN_KEY
        else:
            text, kind = e["msg"], e["type"]
        escaped = text.replace("{", "{{").replace("}", "}}")  # the message is a template to pydantic
        line_errors.append({"type": PydanticCustomError(kind, escaped), "loc": e["loc"], "input": e["input"]})
    return ValidationError.from_exception_data(err.title, line_errors)


def validate_model(schema: type[T], value: Any) -> T:
    """`schema.model_validate(value)`, a misspelt key in its ValidationError named with the close name."""
    try:
        return schema.model_validate(value)
    except ValidationError as e:
        raise name_unknown_keys(schema, e) from None


def validate(schema: type[T], value: Any, where: str, error: type[Exception]) -> T:
    """`schema.model_validate(value)`, a ValidationError turned into `error` with a one-line message."""
    if not isinstance(value, dict):
        raise error(f"{where}: expected a mapping, got {type(value).__name__}")
    try:
        return schema.model_validate(value)
    except ValidationError as e:
        raise error(validation_message(where, e)) from None


class UniqueKeyLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """A safe YAML loader that refuses duplicate keys (plain YAML silently keeps the last one)."""


class DuplicateKeyError(ValueError):
    pass


def _construct_unique_mapping(loader, node, deep=False):
    # Check the keys written in this mapping before merging `<<: *anchor` keys in: an explicit key may override
    # a merged one (that is what merge keys are for), but the same key written twice is a mistake.
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise DuplicateKeyError(f"duplicate key {key!r} at line {key_node.start_mark.line + 1} "
                                    f"(first at line {seen[key] + 1})")
        seen[key] = key_node.start_mark.line
    loader.flatten_mapping(node)
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping)


def load_yaml(text: str, where: str, error: type[Exception]) -> Any:
    """Parse YAML text (duplicate keys refused); any problem becomes `error` naming `where` and the line."""
    try:
        return yaml.load(text, Loader=UniqueKeyLoader)
    except DuplicateKeyError as e:
        raise error(f"{where}: {e}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark else ""
        raise error(f"{where}: not valid YAML{at}: {getattr(e, 'problem', e)}") from None


def cached_by_mtime(parse: Callable[[Path], T], error: type[Exception], what: str) -> Callable[..., T]:
    """`load(path)` -> parse(path), cached until the file changes (its modification time), so an edited registry
    or catalogue is read again in a long-lived process and an unchanged one is parsed once."""

    @functools.lru_cache(maxsize=None)
    def cached(path: str, mtime: float) -> T:
        return parse(Path(path))

    def load(path: str | os.PathLike) -> T:
        p = Path(path)
        try:
            mtime = p.stat().st_mtime
        except OSError:
            raise error(f"{p}: cannot read the {what}: no such file") from None
        return cached(str(p), mtime)

    load.cache_clear = cached.cache_clear  # type: ignore[attr-defined]
    return load
