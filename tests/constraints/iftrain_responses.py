"""
Constraints and responses for IFTrain's reference verdicts: for each of the 29 ids, seeded arguments and responses
built to follow, nearly follow and break it, plus edits of real answers.

Used once, by `make_iftrain_references.py`; the responses are stored with the verdicts, so the tests do not rebuild
them. The real answers are the responses of `ifbench_references.jsonl.gz` (IFBench's sample answers and edits of
them), cut to their first sentences.
"""

import gzip
import json
import random
import re
from pathlib import Path


IFBENCH_REFERENCES = Path(__file__).parent / "ifbench_references.jsonl.gz"
KEYWORDS = ["river", "light", "stone", "water", "market", "garden", "signal", "the", "and", "time", "data", "city"]
# keywords the reference matches as regular expressions: a dot, an optional letter, an anchor-free alternation
REGEX_KEYWORDS = ["riv.r", "colou?r", "cat|dog", "e"]
PHRASES = [
    "The quick brown fox jumps over the lazy dog",
    "Rivers carry cold water to the sea",
    "Every cloud has a silver lining",
    "Slow and steady wins the race",
    "Good things come to those who wait",
]
REQUESTS = [
    "Write a short poem about the sea.",
    "Explain how a bicycle gear works, in two sentences.",
    "List three facts about Mars",
    "What is the capital of France? Answer briefly.",
    "Describe your favourite meal without using adjectives.",
]
RELATIONS = ("less than", "at least")


def corpus(limit: int = 600) -> list[str]:
    """Distinct real answers from the IFBench references, each cut at a sentence end before `limit` characters."""
    with gzip.open(IFBENCH_REFERENCES, "rt", encoding="utf-8") as lines:
        next(lines)
        responses = sorted({json.loads(line)["response"] for line in lines})
    cut = []
    for text in responses:
        if len(text) > limit:
            end = max(text.rfind(mark, 0, limit) for mark in ".?!\n")
            text = text[: end + 1] if end > 40 else text[:limit]
        cut.append(text)
    return sorted(set(cut))


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.?!])\s+", text.strip()) if s]


def edits(text: str, rng: random.Random) -> list[str]:
    """Generic edits of a text that move it towards, or away from, the layouts IFTrain's checkers look for."""
    words = text.split()
    sentences = _sentences(text)
    half = len(sentences) // 2 or 1
    unique = list(dict.fromkeys(words))
    out = [
        text,
        text.lower(),
        text.upper(),
        text.replace(".", "").replace("!", ""),
        " ".join(f"[{word}]" for word in words),
        " ".join(f"<<{a} {b}>>" for a, b in zip(words[::2], words[1::2], strict=False)),
        "-".join(sentences),
        "- ".join(sentences),
        " ".join(sentences[:half]) + "\n***\n" + " ".join(sentences[half:]),
        " ".join(sentences[:half]) + "\n\n" + " ".join(sentences[half:]),
        " ".join(unique),
        " ".join(words[: rng.randint(1, 6)]),
        "Sure! Here it is:\n" + text,
        "  " + text + "\n",
    ]
    if words:
        out.append(words[0] + " " + text.rstrip(".!?") + " " + words[0])
    return out


def _with_keyword(base: str, keyword: str, times: int, rng: random.Random) -> str:
    words = base.split() or ["word"]
    for _ in range(times):
        words.insert(rng.randint(0, len(words)), keyword)
    return " ".join(words)


def draw_kwargs(instruction_id: str, rng: random.Random, real: list[str]) -> dict:
    """Seeded arguments of one IFTrain constraint, in and around the reference's own ranges."""
    keyword = rng.choice(KEYWORDS + REGEX_KEYWORDS[:2] if rng.random() < 0.8 else REGEX_KEYWORDS)
    if instruction_id == "copy:repeat_phrase":
        return {"phrase": rng.choice(PHRASES), "small_n": rng.randint(1, 4)}
    if instruction_id in ("copy:copy", "copy:copying_simple"):
        return {"prompt_to_repeat": rng.choice(REQUESTS + real[:20])}
    if instruction_id == "copy:copying_multiple":
        return {"prompt_to_repeat": rng.choice(REQUESTS), "N": rng.randint(1, 4)}
    if instruction_id == "new:copy_span_idx":
        prompt = rng.choice(REQUESTS + real[:20])
        start = rng.randint(1, max(1, len(prompt) - 3))
        return {"prompt_to_repeat": prompt, "n_start": start, "n_end": rng.randint(start, len(prompt) + 2)}
    if instruction_id in ("keywords:word_once", "keywords:exclude_word_harder"):
        return {"keyword": keyword}
    if instruction_id == "keywords:word_count_different_numbers":
        return {"keyword": keyword, "frequency": rng.randint(0, 4), "relation": rng.choice(RELATIONS)}
    if instruction_id == "count:count_increment_word":
        first, second = rng.sample(KEYWORDS, 2)
        return {"keyword1": first, "keyword2": second}
    if instruction_id in ("first_word:first_word_sent", "first_word:first_word_answer"):
        return {"first_word": rng.choice(["The", "it", "Rivers", "Yes", "we"])}
    if instruction_id in ("last_word:last_word_sent", "last_word:last_word_answer"):
        return {"last_word": rng.choice(["today", "it", "water", "end", "Yes"])}
    if instruction_id == "keywords:keyword_specific_position":
        return {"keyword": rng.choice(["river", "the", "The", ","]), "n": rng.randint(1, 3), "m": rng.randint(1, 6)}
    if instruction_id == "count:lowercase_counting":
        return {"N": rng.choice([1, 2, 3, 5, 10, 40, 100])}
    if instruction_id == "letters:letter_counting":
        return {"N": rng.choice([2, 3, 10, 50, 200, 500]), "relation": rng.choice(RELATIONS)}
    if instruction_id == "letters:letter_counting2":
        return {
            "letter": rng.choice("aeitzqAE"),
            "let_frequency": rng.randint(0, 12),
            "let_relation": rng.choice(RELATIONS),
        }
    if instruction_id == "count:counting_composition":
        return {"n_sent": rng.randint(1, 3), "n_words": rng.randint(2, 5)}
    return {}


def _composition(n_paragraphs: int, n_sent: int, n_words: int, divider: str = "\n***\n") -> str:
    # `n_words` Treebank tokens per sentence: `n_words - 1` words and the closing period
    sentence = " ".join(["Birds", "sing", "loudly", "near", "rivers", "today"][: n_words - 1]) + "."
    return divider.join(" ".join([sentence] * n_sent) for _ in range(n_paragraphs))


def targeted(instruction_id: str, kwargs: dict, base: str, rng: random.Random) -> list[str]:
    """Responses written for these arguments: following, nearly following and breaking the constraint."""
    if instruction_id == "copy:repeat_phrase":
        words, n = kwargs["phrase"].split(), kwargs["small_n"]

        def changed(index: int) -> str:
            copy = list(words)
            copy[index] = "CHANGED"
            return " ".join(copy)

        middle = range(1, len(words) - 1)
        lines = [changed(rng.choice(middle)) for _ in range(n)]
        return [
            "\n".join(lines),
            "\n".join(lines[:-1]),
            "\n".join([*lines, changed(1)]),
            " ".join(lines),
            "\n".join([kwargs["phrase"]] * n),
            "\n".join([changed(0)] * n),
            "\n".join(lines) + "\n" + base,
            "\n".join(line.replace(words[2], "A B") for line in lines),
        ]
    if instruction_id.startswith("copy:") or instruction_id == "new:copy_span_idx":
        prompt = kwargs["prompt_to_repeat"]
        if instruction_id == "new:copy_span_idx":
            start, end = kwargs["n_start"], kwargs["n_end"]
            span = prompt[start:end]
            return [span, span.upper(), " " + span + " ", prompt[start : end + 1], prompt[start - 1 : end], prompt]
        copies = kwargs.get("N", 1)
        return [
            "******".join([prompt] * copies),
            "\n******\n".join([prompt.upper()] * copies),
            "*******".join([prompt] * copies),
            "******".join([prompt] * (copies + 1)),
            prompt + " Sure, here is my answer.",
            "  " + prompt.lower() + "\n",
            prompt.rstrip(".?"),
        ]
    for key in ("keyword", "keyword1"):
        if key in kwargs and instruction_id != "keywords:keyword_specific_position":
            keyword = kwargs[key].replace("?", "").replace(".", "i").split("|")[0]
            out = [_with_keyword(base, keyword, times, rng) for times in range(4)]
            if "keyword2" in kwargs:
                once = _with_keyword(base, keyword, 1, rng)
                out += [_with_keyword(once, kwargs["keyword2"], times, rng) for times in (1, 2)]
            return [*out, f"{keyword} {base}", f"{base} {keyword}", f"{base} {keyword.upper()} end"]
    if "first_word" in kwargs:
        word = kwargs["first_word"]
        sentences = _sentences(base) or ["Nothing here."]
        return [
            " ".join(f"{word} {s[0].lower()}{s[1:]}" for s in sentences),
            " ".join(f"{word.upper()}, {s}" for s in sentences),
            f"{word} " + base,
            f"{word}\n" + " ".join(f"{word} {s}" for s in sentences[1:]),
        ]
    if "last_word" in kwargs:
        word = kwargs["last_word"]
        sentences = _sentences(base) or ["Nothing here."]
        return [
            " ".join(f"{s.rstrip('.?!')} {word}{s[-1] if s[-1] in '.?!' else '.'}" for s in sentences),
            base + " " + word,
            base + f" {word}!!",
            base + f" ({word})",
            base + f" {word}-like",
        ]
    if instruction_id == "keywords:keyword_specific_position":
        keyword, n, m = kwargs["keyword"], kwargs["n"], kwargs["m"]
        filler = ["Rain", "falls", "on", "old", "roofs", "and", "streets", "here"]
        sentence = " ".join([*filler[: m - 1], keyword, *filler[m - 1 :]]) + "."
        other = " ".join(filler) + "."
        return [
            " ".join([other] * (n - 1) + [sentence]),
            " ".join([other] * n + [sentence]),
            " ".join([other] * (n - 1) + [sentence.replace(keyword, keyword.upper())]),
            " ".join([other] * (n - 1) + ["Well, " + sentence]),
        ]
    if instruction_id == "count:counting_composition":
        n_sent, n_words = kwargs["n_sent"], kwargs["n_words"]
        return [
            _composition(3, n_sent, n_words),
            _composition(3, n_sent, n_words, " * * * "),
            _composition(2, n_sent, n_words),
            _composition(3, n_sent, n_words + 1),
            _composition(3, n_sent + 1, n_words),
            "***\n" + _composition(3, n_sent, n_words),
            _composition(3, n_sent, n_words) + "\n***",
        ]
    if instruction_id == "keywords:palindrome":
        return [base + " level", base + " Level", base + " racecar.", "a", "no palindromes here"]
    if instruction_id == "keywords:no_adjacent_consecutive":
        return ["apple banana", "apple cherry", "1 2", "( )", "Zebra apple Cat", "İstanbul is big"]
    return []
