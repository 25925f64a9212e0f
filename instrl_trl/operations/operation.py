"""The `Operation` type: one textual operation that turns an instruction into a new one."""

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field


INSTRUCTION_PLACEHOLDER = "{instruction}"


@dataclass(frozen=True)
class Operation:
    r"""
    A textual operation that an LLM rewriter (or the offline rules engine) applies to an instruction.

    Parameters:
        name (`str`):
            Identifier of the operation, used as the policy's label (`config.id2label`) and in recipes.
        description (`str`):
            One-sentence human description, shown in cards and logs.
        prompt_template (`str`):
            Prompt sent to an LLM rewriter. Must contain the `{instruction}` placeholder, which is replaced by the
            current instruction.
        rule (`str` or `None`, *optional*, defaults to `None`):
            Name of the rules-engine strategy that applies this operation offline (see
            [`~instrl_trl.backends.rules.RULES`]). `None` means the operation needs an LLM rewriter.
        rule_texts (`tuple[str, ...]`, *optional*, defaults to `()`):
            Texts the rules strategy draws from (for example the clauses of the `append_clause` strategy).
    """

    name: str
    description: str
    prompt_template: str
    rule: str | None = None
    rule_texts: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self):
        if not self.name or not self.name.replace("_", "").isalnum():
            raise ValueError(
                f"Operation `name` must be a non-empty identifier (letters, digits, underscores), got {self.name!r}."
            )
        if self.name == "stop":
            raise ValueError("Operation `name` 'stop' is reserved for the policy's stop action; choose another name.")
        if not self.prompt_template or not self.prompt_template.strip():
            raise ValueError(f"Operation {self.name!r}: `prompt_template` is empty; write the rewriter prompt.")
        if INSTRUCTION_PLACEHOLDER not in self.prompt_template:
            raise ValueError(
                f"Operation {self.name!r}: `prompt_template` has no {INSTRUCTION_PLACEHOLDER} placeholder; add it "
                "where the current instruction goes."
            )
        object.__setattr__(self, "rule_texts", tuple(self.rule_texts))

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
