"""What the zoo's YAML files share: a strict pydantic base, one-line validation errors that name the entry and the
field, and a YAML loader that refuses duplicate keys, cached per file and modification time.

Used by the registry (registry.yaml) and the data catalogue (catalogue.yaml). No TensorFlow.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any, Callable, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

__all__ = ["Strict", "validation_message", "validate", "load_yaml", "cached_by_mtime", "UniqueKeyLoader"]

T = TypeVar("T")


class Strict(BaseModel):
    """`extra="forbid"`: a misspelt field is an error, not a silently ignored fact; frozen: facts do not change."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def validation_message(where: str, err: ValidationError) -> str:
    """'<where>: field 'a.b': <pydantic's reason>' for the first error."""
    first = err.errors()[0]
    field = ".".join(str(p) for p in first["loc"]) or "(entry)"
    return f"{where}: field '{field}': {first['msg']}"


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
