"""
Cleaning a chat model's rewrite before the elimination rules read it. Small instruct models wrap the rewritten
prompt in what the prompt showed them or what chat tuning taught them: an echoed label (`#Rewritten Prompt#:`,
`Rewritten Prompt:`, `The new prompt is:`), lines copied from the rewriter prompt itself ("Rewrite the prompt with
the following method:"), a "Sure, here is..." preamble, a Markdown `#`, quotes, and a closing explanation. They also
degenerate: a sentence repeated over and over, and a last sentence cut off at the length limit. Each cut is named,
so that a run can count how often a model needed which.
"""

import re
from collections.abc import Iterable


CLEANUP_REASONS = (
    "preamble",
    "label",
    "given_prompt",
    "heading",
    "quotes",
    "commentary",
    "echoed_template_line",
    "truncated",
    "repeated_sentence",
)
# A sentence of the prompt shorter than this is not looked for in the answer: "Given Prompt" is the label rules'
# business, and a two-word sentence may well belong in a rewrite
MIN_ECHO_WORDS = 3
# Where a line splits into sentences: after an end mark or a colon ("...the following method: Name three rivers.")
_SENTENCE_BREAK = re.compile(r"(?<=[.!?:])[ \t]+")
# The end of a complete sentence, closing quotes and brackets included
_SENTENCE_END = re.compile(r"[.!?][\"'\u201d)\]*]*(?=\s|$)")
_LIST_MARKER = re.compile(r"[ \t]*(?:\d+|[a-zA-Z])")

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


def clean_rewrite(
    text: str, prompt: str = "", keep: Iterable[str] = (), truncated: bool = False
) -> tuple[str, tuple[str, ...]]:
    r"""
    Returns the rewrite without the wrapping a chat model put around it, and the reasons for each cut, in the order
    they were made (each of [`CLEANUP_REASONS`] at most once).

    - `"echoed_template_line"`: lines, or sentences of a line, that copy a line or a sentence of `prompt` (of at
      least `MIN_ECHO_WORDS` words; case, spacing, quotes and Markdown marks aside), such as "Rewrite the prompt with
      the following method:". Sentences found in a `keep` text are never cut. An answer made only of such copies
      holds no rewrite and becomes empty.
    - `"preamble"`: a first sentence such as "Sure, here is the rewritten prompt:".
    - `"label"`: an echoed label introducing the rewrite (`#Rewritten Prompt#:`, `The new prompt is:`); the text
      after the last one is kept.
    - `"given_prompt"`: an echoed `#Given Prompt#` section, cut with what follows it (the original, again).
    - `"heading"`: leading Markdown `#` marks.
    - `"quotes"`: quotes, bold marks or backticks around the whole rewrite.
    - `"commentary"`: closing paragraphs that explain the rewrite ("This rewritten prompt adds...", "Note: ...").
    - `"truncated"`: when `truncated` (the generation stopped at its length limit), the unfinished fragment after
      the last complete sentence (or line), provided a complete sentence remains and the end of the answer was not
      cut already.
    - `"repeated_sentence"`: a sentence repeated verbatim (case, spacing and its end mark aside) is kept once, at its
      first place.

    Args:
        text (`str`):
            The model's answer.
        prompt (`str`, *optional*, defaults to `""`):
            What the model was shown (every message's text), whose lines and sentences the rewrite must not copy.
        keep (`Iterable[str]`, *optional*, defaults to `()`):
            Texts a rewrite may well repeat although `prompt` holds them: the instruction being rewritten, a
            constraint to state word for word.
        truncated (`bool`, *optional*, defaults to `False`):
            Whether the generation stopped at its length limit ([`Generation.finish_reason`] `"length"`), so that
            its last sentence may be unfinished. Without it no sentence is taken for unfinished: a prompt may well
            end without a full stop.

    Example:
    ```python
    >>> clean_rewrite("Sure! Here is the rewritten prompt:\n\n#Rewritten Prompt#: \"Name three rivers in Peru.\"")
    ('Name three rivers in Peru.', ('preamble', 'label', 'quotes'))
    >>> clean_rewrite("Name three rivers in Peru.")
    ('Name three rivers in Peru.', ())
    >>> clean_rewrite(
    ...     "Rewrite the prompt with the following method: Name three rivers. Name three rivers. Name",
    ...     prompt="Rewrite the prompt with the following method:\nAdd one constraint.",
    ...     truncated=True,
    ... )
    ('Name three rivers.', ('echoed_template_line', 'truncated', 'repeated_sentence'))

    ```
    """
    reasons: list[str] = []
    answer = text = text.strip()

    echoes = _sentences_of(prompt) - {""}
    keep = [_normalised(kept) for kept in keep]
    if echoes:
        kept_lines = _drop_sentences(text, lambda sentence: _is_echo(sentence, echoes, keep))
        if kept_lines != text:
            text = kept_lines.strip()
            reasons.append("echoed_template_line")
            if not text:
                return "", tuple(reasons)

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

    # Only when the answer still ends as the model stopped: a tail already cut took the unfinished part with it
    if truncated and text and answer.endswith(text.splitlines()[-1].strip()):
        finished = _finished_part(text)
        if finished is not None:
            text = finished
            reasons.append("truncated")

    seen: set[str] = set()

    def repeated(sentence: str) -> bool:
        key = " ".join(sentence.lower().split()).rstrip(".!?:; ")
        if len(key.split()) < 2:  # "1." in a numbered list, a lone word
            return False
        if key in seen:
            return True
        seen.add(key)
        return False

    deduplicated = _drop_sentences(text, repeated)
    if deduplicated != text:
        text = deduplicated.strip()
        reasons.append("repeated_sentence")
    return text, tuple(reasons)


def _normalised(text: str) -> str:
    """Lowercase words without quotes, Markdown marks and a closing end mark, for comparing sentences."""
    text = re.sub(r"[\"'\u201c\u201d`*#_]", "", text).lower()
    return " ".join(text.split()).rstrip(".:!?; ")


def _sentences_of(text: str) -> set[str]:
    """The normalised lines of `text`, and the sentences of its paragraphs (lines wrapped mid-sentence joined)."""
    units = {_normalised(line) for line in text.splitlines()}
    for paragraph in re.split(r"\n[ \t]*\n", text):
        units.update(_normalised(sentence) for sentence in _SENTENCE_BREAK.split(" ".join(paragraph.split())))
    return units


def _is_echo(sentence: str, echoes: set[str], keep: list[str]) -> bool:
    key = _normalised(sentence)
    return len(key.split()) >= MIN_ECHO_WORDS and key in echoes and not any(key in kept for kept in keep)


def _drop_sentences(text: str, drop) -> str:
    """`text` without the sentences for which `drop(sentence)` is true, line by line; `text` itself if none is."""
    lines, changed = [], False
    for line in text.split("\n"):
        sentences = _SENTENCE_BREAK.split(line.strip())
        kept = [sentence for sentence in sentences if not drop(sentence)]
        if len(kept) == len(sentences):
            lines.append(line)
            continue
        changed = True
        if kept:
            lines.append(" ".join(kept))
    if not changed:
        return text
    # A dropped line may leave two blank lines side by side
    return re.sub(r"\n[ \t]*\n(?:[ \t]*\n)+", "\n\n", "\n".join(lines))


def _finished_part(text: str) -> str | None:
    """`text` up to its last complete sentence or line, or `None` when it is all finished or nothing would remain."""
    ends = [
        match.end()
        for match in _SENTENCE_END.finditer(text)
        # "2." opening a numbered item ends no sentence
        if not _LIST_MARKER.fullmatch(text[text.rfind("\n", 0, match.start()) + 1 : match.start()])
    ]
    if not ends:
        return None
    cut = max(ends[-1], text.rfind("\n"))
    if not text[cut:].strip():
        return None
    return text[:cut].rstrip()
