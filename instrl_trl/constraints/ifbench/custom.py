"""
IFBench's `custom:*` checkers: one-off tasks whose instruction is the whole prompt (a list, a CSV table, a story).

They check the form IFBench checks and nothing more: e.g. `custom:reverse_newline` checks the order of the lines
from "Zimbabwe" on, not that they are the countries of Africa.
"""

import csv
import io
import re
import string
import unicodedata
from itertools import pairwise

from .base import PUNCTUATION_AND_SPACE, Checker, sentences, strip_punctuation


def _ascii_fold(text: str) -> str:
    """Accents off ("São Tomé" -> "Sao Tome"): NFKD, then every non-ASCII character dropped."""
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


class MultiplesOfSeven(Checker):
    """`custom:multiples`: the digit runs of the response are exactly 14, 21, 28, 35, 42, 49, in order."""

    _EXPECTED = tuple(str(n) for n in range(14, 51, 7))

    def check(self, response: str) -> bool:
        return tuple(re.findall(r"\d+", response.replace(",", ", "))) == self._EXPECTED


_OPTION_LINE = re.compile(r"^[A-Ea-e][\.|\)]\s*\w+")
_QUESTION_LABEL = re.compile(r"\n*(?:Question \d+[\.|\):;]?\s*)")


def _question_text_and_options(block: str) -> tuple[str, int]:
    text = ""
    options = 0
    for line in block.split("\n"):
        if _OPTION_LINE.match(line.strip()):
            options += 1
        elif options == 0:
            text += " " + line.strip()
    return text.strip(), options


class MultipleChoiceQuestions(Checker):
    """
    `custom:mcq_count_length`: starts with "Question", holds four "Question N" blocks of five lettered options each,
    and each question's text (before its first option) is longer in characters than the one before.
    """

    def check(self, response: str) -> bool:
        if not response.startswith("Question"):
            return False
        blocks = _QUESTION_LABEL.split(response)
        if blocks[0] == "":
            blocks = blocks[1:]
        blocks = [block.strip() for block in blocks if block.strip()]
        if len(blocks) != 4:
            return False
        lengths = []
        for block in blocks:
            text, options = _question_text_and_options(block)
            if options != 5:
                return False
            lengths.append(len(text))
        return all(a < b for a, b in pairwise(lengths))


class ReverseAlphabeticalLines(Checker):
    """
    `custom:reverse_newline`: from the first line naming "Zimbabwe", at least 52 non-empty lines (edge punctuation
    trimmed) in reverse alphabetical order once accents are folded.
    """

    def check(self, response: str) -> bool:
        lines = [line.strip(PUNCTUATION_AND_SPACE) for line in response.split("\n")]
        lines = [line for line in lines if line]
        start = next((i for i, line in enumerate(lines) if "Zimbabwe" in line), None)
        if start is None or len(lines) - start < 52:
            return False
        folded = [_ascii_fold(line) for line in lines[start:]]
        return folded == sorted(folded, reverse=True)


class WordReverse(Checker):
    """
    `custom:word_reverse`: read backwards word by word (lower-cased, punctuation deleted), the answer names the bald
    eagle and Punkt reads it as one sentence.
    """

    def check(self, response: str) -> bool:
        words = strip_punctuation(response.lower().strip()).split()
        forward = " ".join(reversed(words))
        return "bald eagle" in forward and forward in sentences(forward)


class CharacterReverse(Checker):
    """`custom:character_reverse`: "bald eagle" spelled backwards ("elgae dlab") occurs, in any case."""

    def check(self, response: str) -> bool:
        return "elgae dlab" in response.lower()


class SentenceAlphabet(Checker):
    """`custom:sentence_alphabet`: 26 Punkt sentences whose first words start with a, b, ..., z in turn (any case)."""

    def check(self, response: str) -> bool:
        found = sentences(response)
        if len(found) != 26:
            return False
        for letter, sentence in zip(string.ascii_lowercase, found, strict=True):
            words = sentence.lstrip().split()
            if not words or words[0].lower()[0] != letter:
                return False
        return True


EUROPEAN_CAPITALS_NORTH_TO_SOUTH = [
    "Reykjavik",
    "Helsinki",
    "Oslo",
    "Tallinn",
    "Stockholm",
    "Riga",
    "Moscow",
    "Copenhagen",
    "Vilnius",
    "Minsk",
    "Dublin",
    "Berlin",
    "Amsterdam",
    "Warsaw",
    "London",
    "Brussels",
    "Prague",
    "Luxembourg",
    "Paris",
    "Vienna",
    "Bratislava",
    "Budapest",
    "Vaduz",
    "Chisinau",
    "Bern",
    "Ljubljana",
    "Zagreb",
]


class EuropeanCapitals(Checker):
    """`custom:european_capitals_sort`: exactly IFBench's 27 capitals above 45 degrees N, comma-separated, in order."""

    def check(self, response: str) -> bool:
        names = [name.strip() for name in _ascii_fold(response).split(",") if name.strip()]
        return names == EUROPEAN_CAPITALS_NORTH_TO_SOUTH


def _csv_rows(text: str, delimiter: str = ",") -> list[list[str]] | None:
    """The rows as Python's `csv` reads them, or `None` where it refuses the text (IFBench crashes there)."""
    try:
        return list(csv.reader(io.StringIO(text), delimiter=delimiter))
    except csv.Error:
        return None


class CityCsv(Checker):
    """`custom:csv_city`: a CSV header `ID,Country,City,Year,Count` and seven rows of five fields."""

    def check(self, response: str) -> bool:
        rows = _csv_rows(response)
        return (
            rows is not None
            and len(rows) == 8
            and rows[0] == ["ID", "Country", "City", "Year", "Count"]
            and all(len(row) == 5 for row in rows[1:])
        )


_PRODUCT_HEADER = re.compile(
    r'^(ProductID|"ProductID"),[ \t]*(Category|"Category"),[ \t]*(Brand|"Brand"),[ \t]*(Price|"Price"),'
    r'[ \t]*(Stock|"Stock")$'
)
_QUOTED_SPECIAL = re.compile(r'".*[^\d\w\s].*"')


class SpecialCharacterCsv(Checker):
    """
    `custom:csv_special_character`: the product header, 14 rows, and a quoted field holding a special character.

    IFBench triples every double quote before parsing, so quotes survive into the fields it then inspects; and it
    returns as soon as a row before any malformed one holds such a field.
    """

    def check(self, response: str) -> bool:
        if not _PRODUCT_HEADER.match(response.split("\n")[0].strip()):
            return False
        rows = _csv_rows(response.replace('"', '"""'))
        if rows is None or len(rows) != 15:
            return False
        for row in rows[1:]:
            if len(row) != 5:
                return False
            if any(_QUOTED_SPECIAL.match(field) for field in row):
                return True
        return False


_STUDENT_HEADER = re.compile(
    r'^(StudentID|"StudentID")\t *(Subject|"Subject")\t *(Grade|"Grade")\t *(Semester|"Semester")\t *(Score|"Score")$'
)


def _quoted(field: str) -> bool:
    field = field.strip()
    return field[:1] == '"' and field[-1:] == '"'


class QuotedTsv(Checker):
    """`custom:csv_quotes`: the student header, three rows, tab-separated, every field in double quotes."""

    def check(self, response: str) -> bool:
        if not _STUDENT_HEADER.match(response.split("\n")[0].strip()):
            return False
        rows = _csv_rows(response.replace('"', '"""'), delimiter="\t")
        if rows is None or len(rows) != 4:
            return False
        return all(len(row) == 5 and all(_quoted(field) for field in row) for row in rows)


_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DAYS_IN_MONTH = {1: 31, 2: 29, 3: 31, 4: 30, 5: 31, 6: 30, 7: 31, 8: 31, 9: 30, 10: 31, 11: 30, 12: 31}


def _plausible_napoleonic_date(text: str) -> bool:
    if not _ISO_DATE.match(text):
        return False
    year, month, day = (int(part) for part in text.split("-"))
    # As in IFBench: month 0 and day 0 pass; only too-large days are refused.
    return 1769 <= year <= 1821 and month <= 12 and day <= _DAYS_IN_MONTH.get(month, day)


class NapoleonDates(Checker):
    """`custom:date_format_list`: comma-separated YYYY-MM-DD dates in Napoleon's lifetime (1769-1821)."""

    def check(self, response: str) -> bool:
        return all(_plausible_napoleonic_date(date.strip()) for date in response.strip().split(","))
