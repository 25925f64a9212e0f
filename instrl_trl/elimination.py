"""
Evol-Instruct's elimination rules ([WizardLM](https://huggingface.co/papers/2304.12244), section 3.3): a rewritten
instruction is discarded when the rewriter failed. The reviewer's "no information gain" verdict is the fifth rule
and lives with the reviewers. Two rules of our own: a rewrite that answers the instruction instead of rewriting it
(`"answered"`, a habit of small chat models), and an added verifiable constraint the rewrite dropped
(`"constraint_missing"`, found by the LLM rewriter itself when told to eliminate rather than append).
"""

import re


ELIMINATION_REASONS = ("empty", "refusal", "stopwords_only", "template_copy", "answered", "constraint_missing")

# Words the rewriter prompts use to mark their sections; an output that repeats them copied the prompt.
TEMPLATE_MARKERS = (
    "#given prompt#",
    "#rewritten prompt#",
    "#created prompt#",
    "given prompt",
    "rewritten prompt",
    "created prompt",
)
MAX_REFUSAL_WORDS = 80
# An answer, not a rewrite: this many times the original's words (and at least ANSWER_MIN_WORDS), keeping less than
# ANSWER_MIN_OVERLAP of the original's content words. A rewrite that keeps the request passes however long it is.
ANSWER_GROWTH = 3
ANSWER_MIN_WORDS = 60
ANSWER_MIN_OVERLAP = 0.5

# A compact English stop-word list (NLTK's corpus needs a download, which we avoid).
_STOP_WORDS_TEXT = """
    a about above after again against all also am an and any are aren't as at be because been before being below
    between both but by can can't cannot could couldn't did didn't do does doesn't doing don't down during each
    either else ever every few for from further had hadn't has hasn't have haven't having he he'd he'll he's her here
    here's hers herself him himself his how how's however i i'd i'll i'm i've if in into is isn't it it's its itself
    just let's may me might more most must mustn't my myself neither no nor not now of off on once one only or other
    ought our ours ourselves out over own rather same shall shan't she she'd she'll she's should shouldn't so some
    such than that that's the their theirs them themselves then there there's these they they'd they'll they're
    they've this those though through thus to too under until up upon us very was wasn't we we'd we'll we're we've
    were weren't what what's when when's where where's whether which while who who's whom whose why why's will with
    within without won't would wouldn't yet you you'd you'll you're you've your yours yourself yourselves
"""
STOP_WORDS = frozenset(_STOP_WORDS_TEXT.split())
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def content_words(text: str) -> set[str]:
    """Returns the lowercased alphanumeric words of `text` that are not stop words."""
    return {word for word in _WORD.findall(text.lower()) if word not in STOP_WORDS}


def elimination_reason(original: str, rewritten: str) -> str | None:
    r"""
    Returns why Evol-Instruct's elimination rules discard `rewritten`, or `None` when it passes.

    Args:
        original (`str`):
            The instruction before the rewrite.
        rewritten (`str`):
            The rewriter's output.

    Returns:
        `str` or `None`: one of [`ELIMINATION_REASONS`]: `"empty"` (no text), `"refusal"` (contains "sorry" and has
        fewer than 80 words), `"stopwords_only"` (only punctuation and stop words), `"template_copy"` (repeats the
        rewriter prompt's section markers such as "#Rewritten Prompt#"), `"answered"` (at least
        `ANSWER_GROWTH` times as many words as the original and `ANSWER_MIN_WORDS`, keeping less than half of the
        original's content words: an answer to the instruction, not a rewrite of it).

    Example:

    ```python
    >>> from instrl_trl.elimination import elimination_reason
    >>> elimination_reason("Name a fruit.", "Name a tropical fruit and its origin.") is None
    True
    >>> elimination_reason("Name a fruit.", "Sorry, I cannot do that.")
    'refusal'
    ```
    """
    text = rewritten.strip()
    if not text:
        return "empty"
    lowered = text.lower()
    if "sorry" in lowered and len(text.split()) < MAX_REFUSAL_WORDS:
        return "refusal"
    if not content_words(text):
        return "stopwords_only"
    if any(marker in lowered for marker in TEMPLATE_MARKERS):
        return "template_copy"
    if answers_instead(original, text):
        return "answered"
    return None


def answers_instead(original: str, rewritten: str) -> bool:
    """Whether `rewritten` looks like an answer to `original` rather than a rewrite of it (see `"answered"`)."""
    num_words = len(rewritten.split())
    if num_words < max(ANSWER_MIN_WORDS, ANSWER_GROWTH * len(original.split())):
        return False
    request = content_words(original)
    if not request:
        return False
    return len(request & content_words(rewritten)) / len(request) < ANSWER_MIN_OVERLAP
