"""
IFEval's rule-based sentence splitter, which IFTrain's sentence checkers use (not NLTK's Punkt).

Maintenance note: the rules are those of `split_into_sentences` in allenai/open-instruct
`open_instruct/IFEvalG/instructions_util.py` (commit ebca9f7d4, the same rules as google-research's IFEval and
lm-eval's copy): protect the periods of titles, web domains, decimals, ellipses, initials and acronyms with a
placeholder, mark each `.`, `?` and `!` as a sentence end, split there. Written here as an ordered table of
substitutions; the order matters (a later rule sees the placeholders of the earlier ones) and is kept.
"""

import re


_LETTER = "([A-Za-z])"
_TITLES = "(Mr|St|Mrs|Ms|Dr)[.]"
_COMPANY_SUFFIXES = "(Inc|Ltd|Jr|Sr|Co)"
_SENTENCE_STARTERS = (
    r"(Mr|Mrs|Ms|Dr|Prof|Capt|Cpt|Lt|He\s|She\s|It\s|They\s|Their\s|Our\s|We\s|But\s|However\s|That\s|This\s|Wherever)"
)
_ACRONYM = "([A-Z][.][A-Z][.](?:[A-Z][.])?)"
_DOMAIN = "[.](com|net|org|io|gov|edu|me)"
_DIGIT = "([0-9])"
_DOT = "<prd>"
_END = "<stop>"


def _ellipsis(match: re.Match) -> str:
    # every dot of "..." is protected, and the ellipsis ends a sentence
    return _DOT * len(match.group(0)) + _END


# (pattern, replacement) in the reference's order
_RULES: tuple[tuple[str, object], ...] = (
    (_TITLES, rf"\1{_DOT}"),
    (_DOMAIN, rf"{_DOT}\1"),
    (_DIGIT + "[.]" + _DIGIT, rf"\1{_DOT}\2"),
    (r"\.{2,}", _ellipsis),
)
_RULES_AFTER_PHD: tuple[tuple[str, str], ...] = (
    (r"\s" + _LETTER + "[.] ", rf" \1{_DOT} "),
    (_ACRONYM + " " + _SENTENCE_STARTERS, rf"\1{_END} \2"),
    (_LETTER + "[.]" + _LETTER + "[.]" + _LETTER + "[.]", rf"\1{_DOT}\2{_DOT}\3{_DOT}"),
    (_LETTER + "[.]" + _LETTER + "[.]", rf"\1{_DOT}\2{_DOT}"),
    (" " + _COMPANY_SUFFIXES + "[.] " + _SENTENCE_STARTERS, rf" \1{_END} \2"),
    (" " + _COMPANY_SUFFIXES + "[.]", rf" \1{_DOT}"),
    (" " + _LETTER + "[.]", rf" \1{_DOT}"),
)
# a closing quote after the end mark moves before it, so the quote stays in its sentence
_QUOTE_SWAPS = ((".”", "”."), ('."', '".'), ('!"', '"!'), ('?"', '"?'))


def split_into_sentences(text: str) -> list[str]:
    """
    Splits `text` into sentences as IFEval's `split_into_sentences` does: stripped sentences, in order, without a
    trailing empty one (inner empty ones are kept, as the reference keeps them).
    """
    text = (" " + text + "  ").replace("\n", " ")
    for pattern, replacement in _RULES:
        text = re.sub(pattern, replacement, text)
    text = text.replace("Ph.D.", f"Ph{_DOT}D{_DOT}")
    for pattern, replacement in _RULES_AFTER_PHD:
        text = re.sub(pattern, replacement, text)
    for before, after in _QUOTE_SWAPS:
        text = text.replace(before, after)
    for mark in ".?!":
        text = text.replace(mark, mark + _END)
    sentences = [sentence.strip() for sentence in text.replace(_DOT, ".").split(_END)]
    if sentences and not sentences[-1]:
        sentences.pop()
    return sentences
