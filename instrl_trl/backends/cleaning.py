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
from difflib import SequenceMatcher


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
# How close (difflib's ratio over words) a sentence must be to one of the prompt's to be a copy of it. SmolLM2 copies
# with small slips: "Rewrite the given prompt with the following method", "a word to use, or avoid using a style"
ECHO_SIMILARITY = 0.85
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

    - `"echoed_template_line"`: lines, or sentences of a line, that copy a line or a sentence of `prompt` of at
      least `MIN_ECHO_WORDS` words, such as "Rewrite the prompt with the following method:". Only the words count
      (not case, punctuation or Markdown), and a copy with a slip is still one (at least `ECHO_SIMILARITY` alike).
      When `truncated`, a last sentence that copies the start of one is cut too. The `keep` texts are no part of
      the prompt here, and their sentences are never cut. An answer made only of such copies holds no rewrite and
      becomes empty.
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

    without_echoes = _without_echoes(text, prompt, keep, truncated)
    if without_echoes != text:
        text = without_echoes.strip()
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

    deduplicated = _without_repeats(text)
    if deduplicated != text:
        text = deduplicated.strip()
        reasons.append("repeated_sentence")
    return text, tuple(reasons)


def _without_echoes(text: str, prompt: str, keep: Iterable[str], truncated: bool) -> str:
    """`text` without the sentences that copy one of `prompt` (the `keep` texts aside); `text` itself if none does."""
    keep = [kept for kept in keep if kept.strip()]
    for kept in keep:
        prompt = prompt.replace(kept, "\n")
    echoes = {words for words in _sentences_of(prompt) if len(words) >= MIN_ECHO_WORDS}
    if not echoes:
        return text
    kept_words = [" ".join(_words(kept)) for kept in keep]
    text = _drop_sentences(text, lambda sentence: _is_echo(sentence, echoes, kept_words))
    if truncated:  # a copy cut off by the length limit: the start of a prompt sentence
        starts = {echo[:n] for echo in echoes for n in range(MIN_ECHO_WORDS, len(echo))}
        text = _drop_last_sentence_if(text, lambda sentence: _is_echo(sentence, starts, kept_words))
    return text


def _without_repeats(text: str) -> str:
    """`text` with each sentence once, at its first place (case, spacing and end mark aside)."""
    seen: set[str] = set()

    def repeated(sentence: str) -> bool:
        key = " ".join(sentence.lower().split()).rstrip(".!?:; ")
        if len(key.split()) < 2:  # "1." in a numbered list, a lone word
            return False
        if key in seen:
            return True
        seen.add(key)
        return False

    return _drop_sentences(text, repeated)


def _words(text: str) -> tuple[str, ...]:
    return tuple(re.findall(r"[a-z0-9]+", text.lower()))


def _sentences_of(text: str) -> set[tuple[str, ...]]:
    """The words of each line of `text`, and of each sentence of its paragraphs (lines wrapped mid-sentence joined)."""
    units = {_words(line) for line in text.splitlines()}
    for paragraph in re.split(r"\n[ \t]*\n", text):
        units.update(_words(sentence) for sentence in _SENTENCE_BREAK.split(" ".join(paragraph.split())))
    return units


def _is_echo(sentence: str, echoes: set[tuple[str, ...]], keep: list[str]) -> bool:
    words = _words(sentence)
    if len(words) < MIN_ECHO_WORDS or any(" ".join(words) in kept for kept in keep):
        return False
    return words in echoes or any(SequenceMatcher(None, words, echo).ratio() >= ECHO_SIMILARITY for echo in echoes)


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


def _drop_last_sentence_if(text: str, drop) -> str:
    """`text` without its last sentence when `drop(sentence)` is true for it; `text` itself otherwise."""
    head, _, last_line = text.rstrip().rpartition("\n")
    sentences = _SENTENCE_BREAK.split(last_line.strip())
    if not drop(sentences[-1]):
        return text
    return f"{head}\n{' '.join(sentences[:-1])}".strip()


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
