"""The `Operation` type: one textual operation that turns an instruction into a new one."""

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any


INSTRUCTION_PLACEHOLDER = "{instruction}"
# The policy's extra action after the operations: end the episode. No operation may take its name.
STOP_ACTION = "stop"


@dataclass(frozen=True)
class Operation:
    r"""
    A textual operation that a rewriter (an LLM, or the offline rules engine) applies to an instruction.

    Parameters:
        name (`str`):
            Identifier of the operation, used as the policy's label (`config.id2label`) and in recipes.
        description (`str`):
            One-sentence human description, shown in cards and logs.
        prompt_template (`str`):
            Prompt sent to an LLM rewriter. Must contain the `{instruction}` placeholder, which is replaced by the
            current instruction.
        backend_options (`Mapping[str, Mapping]`, *optional*, defaults to `{}`):
            Settings for particular backends, keyed by backend name. Operations pass them through unread; each
            backend reads and validates its own (the offline rules engine reads `backend_options["rules"]`, see
            `instrl_trl.backends.rules.options`).
        origin (`str` or `None`, *optional*, defaults to `None`):
            Where the operation was defined (a YAML file or a `pkg.module:ATTR` path), set by [`load_operations`] so
            that a backend's error can name it. Not part of the operation's identity.
    """

    name: str
    description: str
    prompt_template: str
    backend_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict, hash=False)
    origin: str | None = field(default=None, compare=False)

    def __post_init__(self):
        if not self.name or not self.name.replace("_", "").isalnum():
            raise ValueError(
                f"Operation `name` must be a non-empty identifier (letters, digits, underscores), got {self.name!r}."
            )
        if self.name == STOP_ACTION:
            raise ValueError(
                f"Operation `name` {STOP_ACTION!r} is reserved for the policy's stop action; choose another name."
            )
        if not self.prompt_template or not self.prompt_template.strip():
            raise ValueError(f"Operation {self.name!r}: `prompt_template` is empty; write the rewriter prompt.")
        if INSTRUCTION_PLACEHOLDER not in self.prompt_template:
            raise ValueError(
                f"Operation {self.name!r}: `prompt_template` has no {INSTRUCTION_PLACEHOLDER} placeholder; add it "
                "where the current instruction goes."
            )
        if not isinstance(self.backend_options, Mapping) or not all(
            isinstance(backend, str) and isinstance(options, Mapping)
            for backend, options in self.backend_options.items()
        ):
            raise ValueError(
                f"Operation {self.name!r}: `backend_options` must map backend names to mappings of settings (for "
                f"example {{'rules': {{'strategy': 'append_clause'}}}}), got {self.backend_options!r}."
            )
        object.__setattr__(self, "backend_options", dict(self.backend_options))

    def render_prompt(self, instruction: str) -> str:
        """Returns the rewriter prompt for `instruction` (plain replacement, so other braces stay as written)."""
        return self.prompt_template.replace(INSTRUCTION_PLACEHOLDER, instruction)


class OperationLibrary(Mapping[str, Operation]):
    """
    An ordered name -> [`Operation`] mapping. The order fixes the policy's label ids, so keep it stable between
    training and generation.
    """

    def __init__(self, operations: Iterable[Operation]):
        self._operations: dict[str, Operation] = {}
        for operation in operations:
            if operation.name in self._operations:
                raise ValueError(f"Operation {operation.name!r} is defined twice; operation names must be unique.")
            self._operations[operation.name] = operation
        if not self._operations:
            raise ValueError("An `OperationLibrary` needs at least one operation.")

    def __getitem__(self, name: str) -> Operation:
        try:
            return self._operations[name]
        except KeyError:
            raise KeyError(f"Unknown operation {name!r}. Valid operations: {', '.join(self._operations)}.") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._operations)

    def __len__(self) -> int:
        return len(self._operations)

    def __repr__(self) -> str:
        return f"OperationLibrary({list(self._operations)})"

    @property
    def names(self) -> list[str]:
        return list(self._operations)

    def select(self, names: Iterable[str]) -> "OperationLibrary":
        """Returns a library with only `names`, in that order; an unknown name raises a `ValueError`."""
        names = list(names)
        unknown = [name for name in names if name not in self._operations]
        if unknown:
            raise ValueError(f"Unknown operations {unknown}. Valid operations: {', '.join(self._operations)}.")
        return OperationLibrary(self._operations[name] for name in names)

    def merged(self, operations: Iterable[Operation]) -> "OperationLibrary":
        """Returns a library where `operations` replace same-named ones and new names are appended."""
        merged = dict(self._operations)
        for operation in operations:
            merged[operation.name] = operation
        return OperationLibrary(merged.values())
