"""Loading user operations from a YAML file or a Python object, and building the library a run uses."""

import dataclasses
import importlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .defaults import default_operations
from .operation import INSTRUCTION_PLACEHOLDER, Operation, OperationLibrary


REQUIRED_KEYS = ("name", "description")
OPTIONAL_KEYS = ("prompt_template", "prompt_file", "backend_options")


def _operation_from_mapping(entry: Any, index: int, source: str, base_dir: Path | None) -> Operation:
    if not isinstance(entry, Mapping):
        raise ValueError(f"{source}: entry {index} must be a mapping with keys {REQUIRED_KEYS}, got {entry!r}.")  # noqa: TRY004
    label = f"{source}: operation {entry.get('name', f'#{index}')!r}"
    unknown = sorted(set(entry) - set(REQUIRED_KEYS) - set(OPTIONAL_KEYS))
    if unknown:
        raise ValueError(f"{label}: unknown key(s) {unknown}. Valid keys: {', '.join(REQUIRED_KEYS + OPTIONAL_KEYS)}.")
    for key in REQUIRED_KEYS:
        if not isinstance(entry.get(key), str) or not entry[key].strip():
            raise ValueError(f"{label}: missing or empty key `{key}`; give a non-empty string.")
    if ("prompt_template" in entry) == ("prompt_file" in entry):
        raise ValueError(f"{label}: give exactly one of the keys `prompt_template` and `prompt_file`.")
    if "prompt_file" in entry:
        prompt_file = Path(entry["prompt_file"])
        if not prompt_file.is_absolute() and base_dir is not None:
            prompt_file = base_dir / prompt_file
        if not prompt_file.is_file():
            raise ValueError(f"{label}: key `prompt_file` points to {str(prompt_file)!r}, which is not a file.")
        template, template_key = prompt_file.read_text(encoding="utf-8"), "prompt_file"
    else:
        template, template_key = entry["prompt_template"], "prompt_template"
    if not isinstance(template, str) or not template.strip():
        raise ValueError(f"{label}: key `{template_key}` gives an empty prompt template; write the rewriter prompt.")
    if INSTRUCTION_PLACEHOLDER not in template:
        raise ValueError(
            f"{label}: key `{template_key}` has no {INSTRUCTION_PLACEHOLDER} placeholder; add it where the current "
            "instruction goes."
        )
    backend_options = entry.get("backend_options", {})
    if not isinstance(backend_options, Mapping):
        raise ValueError(  # noqa: TRY004 - a config error, like the others
            f"{label}: key `backend_options` must be a mapping of backend name -> settings, got {backend_options!r}."
        )
    try:
        return Operation(
            name=entry["name"],
            description=entry["description"],
            prompt_template=template,
            backend_options=backend_options,
            origin=source,
        )
    except ValueError as error:
        raise ValueError(f"{label}: {error}") from error


def _load_yaml(path: Path) -> list[Operation]:
    import yaml

    try:
        entries = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ValueError(f"{path}: not valid YAML: {error}") from error
    if isinstance(entries, Mapping) and "operations" in entries:
        entries = entries["operations"]
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"{path}: expected a non-empty list of operations (mappings with keys {REQUIRED_KEYS}).")
    return [_operation_from_mapping(entry, i, str(path), path.parent) for i, entry in enumerate(entries)]


def _load_object(dotted_path: str) -> list[Operation]:
    module_name, _, attribute = dotted_path.partition(":")
    try:
        value = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        raise ValueError(f"Cannot load operations from {dotted_path!r} (`pkg.module:ATTR`): {error}") from error
    if callable(value) and not isinstance(value, OperationLibrary):
        value = value()
    if isinstance(value, Mapping):
        value = value.values()
    operations = list(value) if isinstance(value, Iterable) else None
    if not operations or not all(isinstance(operation, Operation) for operation in operations):
        raise ValueError(
            f"{dotted_path!r} must be an `OperationLibrary`, a list of `Operation`s or a callable returning one."
        )
    return [
        operation if operation.origin else dataclasses.replace(operation, origin=dotted_path)
        for operation in operations
    ]


def load_operations(source: str | Path | Iterable[Operation]) -> OperationLibrary:
    r"""
    Loads user operations.

    Args:
        source (`str`, `Path` or `Iterable[Operation]`):
            A YAML file (`.yaml` / `.yml`) holding a list of mappings with keys `name`, `description`, one of
            `prompt_template` / `prompt_file` (relative to the YAML file), and optional `backend_options` (settings
            each backend reads itself, e.g. `rules: {strategy: append_clause, texts: [...]}` for the rules engine);
            or a dotted path `pkg.module:ATTR` to an [`OperationLibrary`], a list of [`Operation`]s or a callable
            returning one; or the operations themselves.

    Returns:
        [`OperationLibrary`]: the user operations, in the order given, each with its `origin`. Errors name the file,
        the operation and the key; a backend that reads `backend_options` names them too.
    """
    if isinstance(source, Path) or (isinstance(source, str) and source.endswith((".yaml", ".yml"))):
        path = Path(source)
        if not path.is_file():
            raise ValueError(f"Operations file {str(path)!r} does not exist.")
        operations = _load_yaml(path)
    elif isinstance(source, str):
        if ":" not in source:
            raise ValueError(
                f"Operations source {source!r} is neither a YAML file (.yaml / .yml) nor a `pkg.module:ATTR` path."
            )
        operations = _load_object(source)
    else:
        operations = list(source)
    return OperationLibrary(operations)


def build_operation_library(
    names: Iterable[str] | None = None,
    extra: str | Path | Iterable[Operation] | None = None,
) -> OperationLibrary:
    r"""
    Builds the operation library of a run: the defaults, with user operations merged in, restricted to `names`.

    Args:
        names (`Iterable[str]` or `None`, *optional*, defaults to `None`):
            Operations to keep, in this order (the policy's label ids). `None` keeps all, defaults first.
        extra (`str`, `Path`, `Iterable[Operation]` or `None`, *optional*, defaults to `None`):
            User operations, as accepted by [`load_operations`]; one with a default's name replaces it.
    """
    library = default_operations()
    if extra is not None:
        library = library.merged(load_operations(extra).values())
    if names is not None:
        library = library.select(names)
    return library
