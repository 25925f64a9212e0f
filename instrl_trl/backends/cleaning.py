"""
Cleaning a chat model's rewrite before the elimination rules read it. Small instruct models wrap the rewritten
prompt in what the prompt showed them or what chat tuning taught them: an echoed label (`#Rewritten Prompt#:`,
`Rewritten Prompt:`, `The new prompt is:`), a "Sure, here is..." preamble, a Markdown `#`, quotes, and a closing
explanation. Each cut is named, so that a run can count how often a model needed which.
"""

import re


CLEANUP_REASONS = ("preamble", "label", "given_prompt", "heading", "quotes", "commentary")

# A label that introduces the rewritten prompt: what follows the last one is the rewrite
_LABEL = re.compile(
    r"(?:^|\n)[ \t]*[#*]*[ \t]*(?:(?:the|my|a|your)[ \t]+)?(?:rewritten|created|new|revised|final)[ \t]+"
    r"(?:prompt|instruction)[ \t]*[#*]*[ \t]*(?:(?:is|would be)[ \t]*)?"
    # it ends with a colon, a closing `#` or `*`, or the line
    r"(?:[:\-]+[ \t]*[#*]*|(?<=[#*])|(?=[ \t]*\n))[ \t]*",
    re.IGNORECASE,
)
# The original echoed back: it starts a section the rewrite must not include
_GIVEN = re.compile(r"[#*]*[ \t]*(?:given|original)[ \t]+(?:prompt|instruction)[ \t]*[#*]*[ \t]*:?", re.IGNORECASE)
_INTERJECTION = re.compile(r"^(?:sure|certainly|of course|okay|ok|absolutely|great)[!.,][ \t]*(?=\S)", re.IGNORECASE)
_PREAMBLE = re.compile(
    r"^(?:sure|certainly|of course|okay|ok|absolutely|great|here is|here's|here are|below is)\b[^\n]*?"
    r"(?::[ \t]*(?=\S)|[:.!][ \t]*(?:\n|$))",
    re.IGNORECASE,
)
_COMMENTARY = re.compile(
    r"^(?:this (?:rewritten|new|revised|prompt|version)|the (?:rewritten|new|revised) (?:prompt|version)|"
    r"in this (?:rewritten|new|revised)|note:|explanation:|i (?:have|added|made|rewrote)|by adding|\(|---|\*\*note)",
    re.IGNORECASE,
)
_QUOTES = (('"', '"'), ("\u201c", "\u201d"), ("'", "'"), ("**", "**"), ("`", "`"))


def clean_rewrite(text: str) -> tuple[str, tuple[str, ...]]:
    r"""
    Returns the rewrite without the wrapping a chat model put around it, and the reasons for each cut, in the order
    they were made (each of [`CLEANUP_REASONS`] at most once).

    - `"preamble"`: a first sentence such as "Sure, here is the rewritten prompt:".
    - `"label"`: an echoed label introducing the rewrite (`#Rewritten Prompt#:`, `The new prompt is:`); the text
      after the last one is kept.
    - `"given_prompt"`: an echoed `#Given Prompt#` section, cut with what follows it (the original, again).
    - `"heading"`: leading Markdown `#` marks.
    - `"quotes"`: quotes, bold marks or backticks around the whole rewrite.
    - `"commentary"`: closing paragraphs that explain the rewrite ("This rewritten prompt adds...", "Note: ...").

    Example:
    ```python
    >>> clean_rewrite("Sure! Here is the rewritten prompt:\n\n#Rewritten Prompt#: \"Name three rivers in Peru.\"")
    ('Name three rivers in Peru.', ('preamble', 'label', 'quotes'))
    >>> clean_rewrite("Name three rivers in Peru.")
    ('Name three rivers in Peru.', ())

    ```
    """
    reasons: list[str] = []
    text = text.strip()

    for pattern in (_INTERJECTION, _PREAMBLE):
        preamble = pattern.match(text)
        if preamble and text[preamble.end() :].strip():
            text = text[preamble.end() :].strip()
            if "preamble" not in reasons:
                reasons.append("preamble")

    labels = list(_LABEL.finditer(text))
    if labels and text[labels[-1].end() :].strip():
        text = text[labels[-1].end() :].strip()
        reasons.append("label")

    given = _GIVEN.search(text)
    if given and text[: given.start()].strip():
        text = text[: given.start()].strip()
        reasons.append("given_prompt")

    paragraphs = re.split(r"\n[ \t]*\n", text)
    kept = list(paragraphs)
    while len(kept) > 1 and _COMMENTARY.match(kept[-1].strip()):
        kept.pop()
    if len(kept) < len(paragraphs):
        text = "\n\n".join(kept).strip()
        reasons.append("commentary")

    if text.startswith("#") and text.lstrip("#").strip():
        text = text.lstrip("#").strip()
        reasons.append("heading")

    for opening, closing in _QUOTES:
        inner = text[len(opening) : len(text) - len(closing)]
        wrapped = len(text) > len(opening) + len(closing) and text.startswith(opening) and text.endswith(closing)
        if wrapped and opening not in inner and closing not in inner and inner.strip():
            text = inner.strip()
            reasons.append("quotes")
            break
    return text, tuple(reasons)
