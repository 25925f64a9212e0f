"""
How an operation tells the rules engine what to do: `operation.backend_options["rules"]`, a mapping with the keys
`strategy` (a name in [`RULES`], defaulting to the operation's own name) and `texts` (what the strategy draws from,
for example the clauses `append_clause` appends). In an operations YAML file:

```yaml
- name: add_humor
  description: Ask for a light tone.
  prompt_template: "Make it funny: {instruction}"
  backend_options:
    rules: {strategy: append_clause, texts: ["Keep the tone light and playful."]}
```

Only this package reads these settings; [`RulesRewriter.check_operations`] validates them before any query.
"""

from collections.abc import Mapping
from dataclasses import dataclass

from ...operations import Operation


RULES_OPTIONS_KEY = "rules"
RULES_OPTION_NAMES = ("strategy", "texts")


@dataclass(frozen=True)
class RulesOptions:
    r"""
    The rules-engine settings of one operation.

    Parameters:
        strategy (`str`):
            Name of the strategy (a key of [`RULES`]) that applies the operation offline.
        texts (`tuple[str, ...]`):
            Texts the strategy draws from (the clauses of `append_clause`); empty for the default strategies.
    """

    strategy: str
    texts: tuple[str, ...] = ()


def operation_label(operation: Operation) -> str:
    """How errors name an operation: with the file or dotted path it came from, when known."""
    return f"{operation.origin}: operation {operation.name!r}" if operation.origin else f"Operation {operation.name!r}"


def rules_options(operation: Operation) -> RulesOptions:
    """
    Returns the rules-engine settings of `operation`; raises a `ValueError` naming the operation, its file and the
    key when they are malformed. An operation without settings uses the strategy named like itself.
    """
    key = f"backend_options.{RULES_OPTIONS_KEY}"
    options = operation.backend_options.get(RULES_OPTIONS_KEY, {})
    if not isinstance(options, Mapping):
        raise ValueError(  # noqa: TRY004 - a config error, like the others
            f"{operation_label(operation)}: key `{key}` must be a mapping with keys {RULES_OPTION_NAMES}, got "
            f"{options!r}."
        )
    unknown = sorted(set(options) - set(RULES_OPTION_NAMES))
    if unknown:
        raise ValueError(
            f"{operation_label(operation)}: key `{key}` has unknown key(s) {unknown}. Valid keys: "
            f"{', '.join(RULES_OPTION_NAMES)}."
        )
    strategy = options.get("strategy", operation.name)
    if not isinstance(strategy, str) or not strategy:
        raise ValueError(
            f"{operation_label(operation)}: key `{key}.strategy` must be a strategy name, got {strategy!r}."
        )
    texts = options.get("texts", ())
    if not isinstance(texts, (list, tuple)) or not all(isinstance(text, str) and text.strip() for text in texts):
        raise ValueError(
            f"{operation_label(operation)}: key `{key}.texts` must be a list of non-empty strings, got {texts!r}."
        )
    return RulesOptions(strategy=strategy, texts=tuple(texts))
