"""IFBench's `format:*` checkers: brackets, quotes, lists, layout, emoji and casing."""

import re
import string
from itertools import pairwise
from typing import ClassVar

from .base import PUNCTUATION_AND_SPACE, Checker, sentences, strip_punctuation, treebank_words


_CLOSER_OF = {"(": ")", "[": "]", "{": "}"}


class NestedBrackets(Checker):
    """
    `format:parentheses`: brackets of any kind nested five deep, and a correct closing after reaching that depth.

    As in IFBench, a closing bracket that does not match (or has nothing to close) forgets everything seen so far.
    """

    def check(self, response: str) -> bool:
        open_stack: list[str] = []
        deepest = 0
        for char in response:
            if char in _CLOSER_OF:
                open_stack.append(char)
                deepest = max(deepest, len(open_stack))
            elif char in ")]}":
                if open_stack and _CLOSER_OF[open_stack[-1]] == char:
                    open_stack.pop()
                    if deepest >= 5:
                        return True
                else:
                    open_stack, deepest = [], 0
        return False


class NestedQuotes(Checker):
    """
    `format:quotes`: quotes nested three deep, read as IFBench reads them.

    A quote character equal to the innermost open one closes it; any other `"` or `'` opens a level. It passes once
    a closing leaves the depth three or more below the deepest level reached so far.
    """

    def check(self, response: str) -> bool:
        open_stack: list[str] = []
        deepest = 0
        for char in response:
            if open_stack and char == open_stack[-1]:
                open_stack.pop()
                if deepest - len(open_stack) >= 3:
                    return True
            elif char in "\"'":
                open_stack.append(char)
                deepest = max(deepest, len(open_stack))
        return False


_LETTER_OPTIONS = re.compile(r"\W*[aA]\W*[bB]\W*[cC]\W*")


class Options(Checker):
    """
    `format:options`: the response is one of the `options`.

    `options` is split on "/" if present, else on the substring "or", else on ","; lettered options ("a), b), c)")
    must match exactly, text options after trimming edge punctuation and case.
    """

    params: ClassVar[dict[str, str]] = {"options": "text"}

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.exact = _LETTER_OPTIONS.match(self.options) is not None
        separator = "/" if "/" in self.options else "or" if "or" in self.options else ","
        self.choices = [choice.strip() for choice in self.options.split(separator)]

    def check(self, response: str) -> bool:
        if self.exact:
            return response in self.choices
        answer = response.strip(PUNCTUATION_AND_SPACE).lower()
        return any(choice.strip(PUNCTUATION_AND_SPACE).lower() == answer for choice in self.choices)


class WordPerLine(Checker):
    """`format:newline`: as many non-empty lines as words, punctuation deleted (a line of spaces still counts)."""

    def check(self, response: str) -> bool:
        text = strip_punctuation(response).strip()
        return len([line for line in text.split("\n") if line != ""]) == len(text.split())


def _is_emoji(char: str) -> bool:
    import emoji

    return emoji.is_emoji(char)


class EmojiPerSentence(Checker):
    """
    `format:emoji`: every Punkt sentence ends with an emoji (in its last two non-punctuation characters), or, if
    Punkt put the emoji at the start of the next sentence, that sentence starts with one.
    """

    def check(self, response: str) -> bool:
        found = [strip_punctuation(sentence).strip() for sentence in sentences(response)]
        for i, sentence in enumerate(found):
            if not sentence:
                return False
            if _is_emoji(sentence[-1]) or _is_emoji(sentence[-2] if len(sentence) > 1 else sentence[-1]):
                continue
            if i == len(found) - 1 or not found[i + 1] or not _is_emoji(found[i + 1][0]):
                return False
        return True


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _drop_blank_lines_as_ifbench(lines: list[str]) -> list[str]:
    """
    IFBench removes blank lines from the list it is iterating over, so a blank line right after another one
    survives; reproduced here (on a copy) because that changes which neighbours are compared.
    """
    kept = list(lines)
    index = 0
    while index < len(kept):
        if not kept[index].strip():
            del kept[kept.index(kept[index])]
        index += 1
    return kept


class IndentStairs(Checker):
    """`format:line_indent`: each line is indented by more spaces than the line before it."""

    def check(self, response: str) -> bool:
        lines = _drop_blank_lines_as_ifbench(response.split("\n"))
        return all(_indent(b) > _indent(a) for a, b in pairwise(lines))


class QuoteThenExplanation(Checker):
    """
    `format:quote_unquote`: with whitespace removed, no two double quotes touch, and the text does not end in a
    quote (trailing digits and other punctuation ignored). Mentions of the character itself (`'"'`) are ignored.
    """

    _TRAILING = string.digits + string.punctuation.replace('"', "")

    def check(self, response: str) -> bool:
        compact = "".join(response.replace("'\"'", "").split())
        if '""' in compact:
            return False
        tail = compact.strip(self._TRAILING)
        return not (tail and tail[-1] == '"')


class CustomBullets(Checker):
    """`format:list`: the marker `sep` occurs at least twice anywhere (IFBench does not require it to start lines)."""

    params: ClassVar[dict[str, str]] = {"sep": "text"}

    def check(self, response: str) -> bool:
        return response.count(self.sep) >= 2


class ItalicThesis(Checker):
    """
    `format:thesis`: a non-empty `<i>...</i>` (else `<em>...</em>`) span followed by some text.

    IFBench slices the `<em>` variant with the offsets of `<i>` (3 and 4 characters); kept for agreement.
    """

    def check(self, response: str) -> bool:
        start = response.find("<i>")
        if start == -1:
            start = response.find("<em>")
            if start == -1:
                return False
        rest = response[start:]
        end = rest.find("</i>")
        if end == -1:
            end = rest.find("</em>")
            if end == -1:
                return False
        return rest[3:end].strip() != "" and rest[end + 4 :].strip() != ""


class SubBullets(Checker):
    """`format:sub-bullets`: every piece of text after a `*` holds a `-` before the next `*` (no `*` passes)."""

    def check(self, response: str) -> bool:
        return all("-" in piece for piece in response.split("*")[1:])


class SentencesThenBullets(Checker):
    """
    `format:no_bullets_bullets`: lines of prose holding at least two Punkt sentences, then only `*` lines, at least
    two of them; a prose line after the bullets fails.

    IFBench's flag "still in the prose" becomes the list of sentences of the last prose line, so a blank line (no
    sentences) also ends the prose: any later line that is not a bullet fails. Kept, for agreement.
    """

    def check(self, response: str) -> bool:
        in_prose = True
        prose_sentences = 0
        bullets = 0
        for line in response.split("\n"):
            if line.strip().startswith("*"):
                in_prose = False
                if prose_sentences < 2:
                    return False
                bullets += 1
            elif in_prose:
                found = sentences(line.strip())
                prose_sentences += len(found)
                in_prose = bool(found)
            else:
                return False
        return bullets >= 2


class TitleCase(Checker):
    """
    `format:title_case`: no Treebank word that starts with a letter is all lower case (one letter or longer), and
    none is lower-initial with an all-upper tail; mixed forms such as "iPhone" or "McDonald" pass, as in IFBench.
    """

    def check(self, response: str) -> bool:
        for word in treebank_words(response):
            if not word or not word[0].isalpha():
                continue
            if len(word) == 1:
                if word.islower():
                    return False
                continue
            if word[0].islower() and (word[1:].isupper() or word[1:].islower()):
                return False
        return True


class OutputTemplate(Checker):
    """`format:output_template`: the three labels "My Answer:", "My Conclusion:" and "Future Outlook:" all occur."""

    def check(self, response: str) -> bool:
        return all(label in response for label in ("My Answer:", "My Conclusion:", "Future Outlook:"))


class NoWhitespace(Checker):
    """`format:no_whitespace`: no whitespace character at all."""

    def check(self, response: str) -> bool:
        return not any(char.isspace() for char in response)
