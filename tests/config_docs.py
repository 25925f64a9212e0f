"""
Checks that a config dataclass documents every field it declares twice, in agreement: a `help` for the command
line and an entry in the class docstring (TRL writes both and nothing checks them; see STYLE.md section 2).
"""

import dataclasses
import re

from transformers import HfArgumentParser


def declared_fields(cls) -> list[dataclasses.Field]:
    """The dataclass fields declared in `cls`'s own body (new fields and overridden defaults), not inherited ones."""
    own = vars(cls).get("__annotations__", {})
    return [field for field in dataclasses.fields(cls) if field.name in own]


def overridden_field_names(cls) -> set[str]:
    """Names of the fields `cls` declares that a dataclass base already had (overridden defaults)."""
    inherited = {
        field.name for base in cls.__mro__[1:] if dataclasses.is_dataclass(base) for field in dataclasses.fields(base)
    }
    return {field.name for field in declared_fields(cls)} & inherited


def _note_block(docstring: str) -> str:
    """The `> [!NOTE]` block of a docstring (the lines starting with `>` after the marker), or `""`."""
    lines = docstring.splitlines()
    for i, line in enumerate(lines):
        if line.strip() == "> [!NOTE]":
            block = []
            for following in lines[i + 1 :]:
                if not following.strip().startswith(">"):
                    break
                block.append(following)
            return "\n".join(block)
    return ""


def assert_config_documented(cls) -> None:
    """
    Asserts, for every field declared in `cls`:
    - its `help` metadata is a non-empty string without an unescaped `%` (argparse formats help with `%`);
    - the docstring documents it: as `name (` under `Parameters:`, or, for a default overridden from a base class, as
      `` `name` `` in the closing `> [!NOTE]` list of changed defaults (TRL's layout);
    and that argparse can format the class's `--help`.
    """
    docstring = cls.__doc__ or ""
    note = _note_block(docstring)
    overridden = overridden_field_names(cls)
    fields = declared_fields(cls)
    assert fields, f"{cls.__name__} declares no dataclass fields"
    problems = []
    for field in fields:
        help_text = field.metadata.get("help")
        if not isinstance(help_text, str) or not help_text.strip():
            problems.append(f"`{field.name}` has no `help`")
        elif "%" in help_text.replace("%%", ""):
            problems.append(f"`{field.name}`'s help has an unescaped `%` (write `%%`)")
        documented = re.search(rf"^\s*{re.escape(field.name)} \(", docstring, flags=re.MULTILINE) is not None
        if not documented and field.name in overridden:
            documented = f"`{field.name}`" in note
        if not documented:
            problems.append(f"`{field.name}` is not in the docstring (as `{field.name} (`)")
    assert not problems, f"{cls.__name__}: " + "; ".join(problems)
    HfArgumentParser([cls]).format_help()  # raises on a stray `%` anywhere in the help texts
