"""
Synthetic responses for IFBench rows, built to satisfy, nearly satisfy and violate each row's constraints.

Used once, by `make_ifbench_references.py`, to produce the reference verdicts the tests compare against; the
responses are stored with the verdicts, so the tests do not rebuild them.
"""

import random
import string


FILLER = [
    "the",
    "river",
    "carries",
    "cold",
    "water",
    "past",
    "old",
    "stone",
    "bridges",
    "while",
    "small",
    "boats",
    "drift",
    "toward",
    "the",
    "harbor",
    "and",
    "people",
    "watch",
    "from",
    "the",
    "bank",
    "as",
    "evening",
    "light",
    "fades",
    "over",
    "quiet",
    "fields",
]
PALINDROMES = [
    "level",
    "radar",
    "civic",
    "rotor",
    "kayak",
    "refer",
    "madam",
    "racecar",
    "stats",
    "tenet",
    "minim",
    "solos",
]
NAMES = [
    "Emma",
    "Liam",
    "Sophia",
    "Jackson",
    "Olivia",
    "Noah",
    "Ava",
    "Lucas",
    "Isabella",
    "Mason",
    "Mia",
    "Ethan",
    "Charlotte",
    "Alexander",
]
AFRICA_REVERSED = [
    "Zimbabwe",
    "Zambia",
    "Uganda",
    "Tunisia",
    "Togo",
    "Tanzania",
    "Sudan",
    "South-Sudan",
    "South-Africa",
    "Somalia",
    "Sierra-Leone",
    "Seychelles",
    "Senegal",
    "Sao-Tome",
    "Rwanda",
    "Nigeria",
    "Niger",
    "Namibia",
    "Mozambique",
    "Morocco",
    "Mauritius",
    "Mauritania",
    "Mali",
    "Malawi",
    "Madagascar",
    "Libya",
    "Liberia",
    "Lesotho",
    "Kenya",
    "Guinea-Bissau",
    "Guinea",
    "Ghana",
    "Gambia",
    "Gabon",
    "Ethiopia",
    "Eswatini",
    "Eritrea",
    "Equatorial-Guinea",
    "Egypt",
    "Djibouti",
    "Congo",
    "Comoros",
    "Chad",
    "Central-African-Republic",
    "Cape-Verde",
    "Cameroon",
    "Burundi",
    "Burkina-Faso",
    "Botswana",
    "Benin",
    "Angola",
    "Algeria",
]
CAPITALS = [
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

# Texts of many shapes, given to every row: most constraints fail on them, a few pass by accident.
GENERIC = [
    (
        "Sure! Here is my answer.\nThe sky is blue because air scatters short wavelengths more than long ones.\n"
        "I hope this helps!"
    ),
    "**Summary**\n* First point - detail\n* Second point - more detail\n\nThat is all.",
    "Yes",
    "no.",
    "I think that we should go. You know it, and they know it too; but who decides? Nobody! (Really.)",
    "Strong brisk winds crossed dry fields.",
    "Cats run. Dogs sit. Owls fly.",
    "Apple banana cherry date elderberry fig grape.",
    '"He said \'she said "wow" twice\' to me" and then left.',
    "((([[{{(deep)}}]])))",
    "My Answer: yes My Conclusion: maybe Future Outlook: bright",
    "The Quick Brown Fox Jumps Over The Lazy Dog",
    "NoWhitespaceAtAll",
    "I love it 😀. What a day 🌞! Are you in? 🎉",
    "We \u2764\ufe0f it. The family \U0001f468\u200d\U0001f469\u200d\U0001f467 came too.",
    "ID,Country,City,Year,Count\n1,France,Paris,2020,5",
    "1. one\n2. two\n3. three 14 21 28",
    "これは 日本語 の 文 です 。 And some English words here too.",
    "  a\n    b\n      c",
    "<i>Thesis here</i> and the rest follows.\n<em>Another</em> section.",
    "level radar civic rotor kayak refer madam racecar stats tenet",
    "Zimbabwe\nZambia\nUganda",
    "Question 1: What?\nA. a\nB. b",
]


def _words(n: int, rng: random.Random, pool=FILLER) -> list[str]:
    return [rng.choice(pool) for _ in range(n)]


def _distinct_words(n: int) -> list[str]:
    letters = string.ascii_lowercase
    return [letters[i % 26] + letters[(i // 26) % 26] + "x" + letters[(i // 676) % 26] for i in range(n)]


def _sentences_with_counts(counts: list[int], rng: random.Random) -> str:
    return " ".join(" ".join(_words(c, rng)).capitalize() + "." for c in counts if c > 0)


def _targeted(iid: str, kw: dict, prompt: str, rng: random.Random) -> list[str]:
    """Responses aimed at one instruction: ones that should pass, then near misses."""
    N = int(kw["N"]) if kw.get("N") is not None else 3
    small_n = int(kw["small_n"]) if kw.get("small_n") is not None else 2
    if iid == "count:word_count_range":
        lo, hi = int(kw["min_words"]), int(kw["max_words"])
        plain = [" ".join(_words(n, rng)) for n in ((lo + hi) // 2, lo, hi, hi + 1, max(lo - 1, 1))]
        # NLTK >= 3.10 counts an emoji's variation selector (U+FE0F) as a word of its own.
        return [*plain, " ".join(_words(lo - 1, rng)) + " \u2764\ufe0f", " ".join(_words(hi, rng)) + " \u2764\ufe0f"]
    if iid == "count:unique_word_count":
        return [
            " ".join(_distinct_words(N)),
            " ".join(_distinct_words(N - 1)) + " Ab, ab.",
            " ".join(_distinct_words(N + 2)),
        ]
    if iid == "ratio:stop_words":
        p = kw["percentage"]
        out = []
        for target in (p - 5, p - 1, p + 1, p + 10):
            stop = max(0, min(100, round(target)))
            out.append(" ".join(["the"] * stop + ["river"] * (100 - stop)) + ".")
        return out
    if iid == "ratio:sentence_type":
        return ["It rains. It pours. Why?", "It rains. Why? Who?", 'Fine. Fine. Fine. Really? Sure? "Yes."']
    if iid == "ratio:sentence_balance":
        return ["It rains. Why? Wow!", "It rains. Why? Wow! Ok.", "Go! Stop? Halt."]
    if iid == "count:conjunctions":
        conj = ["and", "but", "for", "nor", "or", "so", "yet"]
        return [
            " ".join(f"cats {c} dogs" for c in conj[:small_n]) + ".",
            " ".join(f"cats {c} dogs" for c in conj[: max(small_n - 1, 0)]) + " And, and.",
            "and And and, AND",
        ]
    if iid == "count:person_names":
        return [", ".join(NAMES[:N]) + " met.", ", ".join(NAMES[: N - 1]) + " met emma.", "Emmanuel and Liam."]
    if iid == "ratio:overlap":
        ref = kw["reference_text"]
        p = kw["percentage"]
        out = [ref[: max(10, len(ref) // 2)]]
        noise = "qzx vvk jjw pplq zzyx kkqw"
        for cut in range(10, len(ref), max(1, len(ref) // 40)):
            out.append(ref[:cut] + " " + noise * 3)
        return out[:12] + [str(p)]
    if iid == "count:numbers":
        return [
            " ".join(str(7 * i + 3) for i in range(N)),
            "Pi is 3.14 and 1,000 more: " + " ".join(["5"] * N),
            "none",
        ]
    if iid == "words:alphabet":
        return ["Apple banana cherry date eel fig grape", "Xylophone yak zebra apple bee", "Apple cherry", "3 apples"]
    if iid == "words:vowel":
        return ["I need tea and a bed.", "I need tea.\nAnd a bed.", "You are out of it now."]
    if iid == "words:consonants":
        return ["Strong brisk winds crossed dry fields.", "Strong wind blows in.", "Crisp, stark  trysts!"]
    if iid == "sentence:alliteration_increment":
        return ["Big cat. Big bad bear. Silly snakes slide slowly south.", "Big bad bear. Big cat.", "One. Two."]
    if iid == "words:palindrome":
        return [" ".join(PALINDROMES[:10]), " ".join(PALINDROMES[:9]) + " rotor.", "Level, radar! " * 5]
    if iid == "count:punctuation":
        return [
            "Wait?! Yes, really; here: done. Wow! Why?",
            "Wait?! Yes, really; here: done.",
            "Hm‽ a, b; c: d. e! f?",
        ]
    if iid == "format:parentheses":
        return ["(a [b {c (d [e])}])", "(a [b {c (d)}])", "((((( x ))))]", "{[(<[{(x)}]>)]}"]
    if iid == "format:quotes":
        return ['"a \'b "c" b\' a"', "\"a 'b' a\"", "'a \"b 'c' b\" a'", 'don\'t "say" \'it\' "now"']
    if iid == "words:prime_lengths":
        return ["an owl can fly", "an owl can fly high", "it is so"]
    if iid == "format:options":
        opts = kw["options"]
        sep = "/" if "/" in opts else "or" if "or" in opts else ","
        choices = [c.strip() for c in opts.split(sep)]
        return choices + [choices[0] + ".", " " + choices[0].upper(), choices[0] + " because reasons"]
    if iid == "format:newline":
        return ["one\ntwo\nthree", "one two\nthree", "one,\n\ntwo.\n three", "single"]
    if iid == "format:emoji":
        return ["I love it 😀. What a day 🌞!", "I love it 😀. What a day.", "😀 Hi. 🎉 Yes.", "Hi 😀 ."]
    if iid == "ratio:sentence_words":
        return ["Cats run. Dogs sit. Owls fly.", "Cats run. Dogs sit.", "Cats run. Dogs sat down. Owls fly."]
    if iid == "count:words_japanese":
        words = [("日本" if (i + 1) % N == 0 else "word") for i in range(3 * N)]
        bad = list(words)
        bad[N - 1] = "nope"
        return [" ".join(words), " ".join(bad), " ".join(w if w != "日本" else "12" for w in words)]
    if iid == "words:start_verb":
        return ["Run to the store.", "The store is open."]
    if iid == "words:repeats":
        return [" ".join(["echo"] * small_n + ["once"]), " ".join(["Echo,"] * (small_n + 1)), "a b c"]
    if iid == "sentence:keyword":
        word = kw["word"]
        s = [" ".join(_words(5, rng)).capitalize() + "." for _ in range(N + 1)]
        good = list(s)
        good[N - 1] = f"Here {word.upper()} appears."
        bad = list(s)
        bad[min(N, len(bad) - 1)] = f"Here {word} appears."
        return [" ".join(good), " ".join(bad), f"{word}s everywhere. " * N]
    if iid == "count:pronouns":
        return [" ".join(["I", "you", "she"] * N), "she/her/hers " * (N // 3) + "they", "nothing here"]
    if iid == "words:odd_even_syllables":
        return ["cat apple dog water sun table", "cat dog apple", "banana cat water"]
    if iid == "words:last_first":
        return ["I like cats. Cats like fish. Fish swim.", "I like cats. Dogs like fish.", "Cats! cats, run."]
    if iid == "words:paragraph_last_first":
        return ["hello world hello\n\nbye now bye", "hello world\nbye now bye", "Hello, there hello!"]
    if iid == "sentence:increment":
        return [
            _sentences_with_counts([2, 2 + small_n, 2 + 2 * small_n], rng),
            _sentences_with_counts([2, 3 + small_n, 2 + 2 * small_n], rng),
            _sentences_with_counts([5], rng),
        ]
    if iid == "words:no_consecutive":
        return ["apple banana cherry apple", "apple Avocado cherry", "a-b c"]
    if iid == "format:line_indent":
        return ["a\n  b\n    c", "a\n  b\n  c", "a\n\n\n  b\n\n    c", "  a\n b"]
    if iid == "format:quote_unquote":
        return ['"quote" explained here.', '"a" "b" end', 'he said "hi"', "The char '\"' is fine."]
    if iid == "format:list":
        sep = kw["sep"]
        return [f"{sep} one\n{sep} two", f"{sep} one", f"one {sep}{sep}"]
    if iid == "format:thesis":
        return ["<i>Thesis</i> text", "<em>Thesis</em> text", "<i>Thesis</i>", "<i> </i> text", "no italics"]
    if iid == "format:sub-bullets":
        return ["* a\n - b\n* c\n - d", "* a\n - b\n* c", "no bullets", "**bold** - x"]
    if iid == "format:no_bullets_bullets":
        return [
            "One. Two.\n* a\n* b",
            "One.\n* a\n* b",
            "One. Two.\n* a\nThree.\n* b",
            "One. Two.\n* a",
            "One.\n\nTwo.\n* a\n* b",
            "One. Two.\n\n* a\n* b",
        ]
    if iid == "custom:multiples":
        return ["14, 21, 28, 35, 42, 49", "14,21,28,35,42,49", "7, 14, 21, 28, 35, 42, 49"]
    if iid == "custom:mcq_count_length":
        qs = []
        for i in range(4):
            opts = "\n".join(f"{c}) option {c}" for c in "ABCDE")
            qs.append(f"Question {i + 1}: " + "x" * (10 + 5 * i) + "?\n" + opts)
        return ["\n\n".join(qs), "\n\n".join(reversed(qs)), "Intro.\n" + "\n\n".join(qs)]
    if iid == "custom:reverse_newline":
        return ["\n".join(AFRICA_REVERSED), "\n".join(AFRICA_REVERSED[:40]), "\n".join(sorted(AFRICA_REVERSED))]
    if iid == "custom:word_reverse":
        return ["eagle bald the is it.", "It is the bald eagle.", "Eagle. Bald the is it."]
    if iid == "custom:character_reverse":
        return [".elgae dlab ehT", "The bald eagle."]
    if iid == "custom:sentence_alphabet":
        good = " ".join(f"{c.upper()}ll is well." for c in string.ascii_lowercase)
        return [good, good.replace("Zll", "All"), "A b. B c."]
    if iid == "custom:european_capitals_sort":
        return [", ".join(CAPITALS), ", ".join(reversed(CAPITALS)), ", ".join(CAPITALS[:-1])]
    if iid == "custom:csv_city":
        rows = "\n".join(f"{i},France,Paris,2020,{i}" for i in range(1, 8))
        return ["ID,Country,City,Year,Count\n" + rows, "ID,Country,City,Year,Count\n" + rows + "\n8,x,y,z,1"]
    if iid == "custom:csv_special_character":
        rows = [f"{i},Tools,Acme,9.99,{i}" for i in range(1, 15)]
        special = list(rows)
        special[3] = '4,Tools,"Acme & Co",9.99,4'
        header = "ProductID,Category,Brand,Price,Stock\n"
        return [header + "\n".join(special), header + "\n".join(rows), header + "\n".join(special[:10])]
    if iid == "custom:csv_quotes":
        hdr = "\t".join(f'"{h}"' for h in ["StudentID", "Subject", "Grade", "Semester", "Score"])
        rows = ["\t".join(f'"{v}"' for v in [i, "Math", "A", "Fall", 90]) for i in range(1, 4)]
        return [
            hdr + "\n" + "\n".join(rows),
            hdr + "\n" + "\n".join(rows[:2]),
            hdr + "\n" + rows[0] + "\n1\t\t\t\t\n" + rows[1],
        ]
    if iid == "custom:date_format_list":
        return ["1796-04-12, 1805-12-02, 1815-06-18", "1796-04-12, 1805-13-02", "1815-06-18\n", "1796-02-30"]
    if iid == "count:keywords_multiple":
        ks = [kw[f"keyword{i}"] for i in range(1, 6)]
        good = " ".join(f"{k} " * t for k, t in zip(ks, (1, 2, 3, 5, 7), strict=True))
        bad = " ".join(f"{k} " * t for k, t in zip(ks, (1, 2, 3, 5, 6), strict=True))
        return [good, bad, good.upper()]
    if iid == "words:keywords_specific_position":
        n, m, key = int(kw["n"]), int(kw["m"]), kw["keyword"]
        sents = [" ".join(_words(m + 2, rng)).capitalize() + "." for _ in range(n + 1)]
        words = sents[n - 1].split()
        words[m - 1] = key
        good = list(sents)
        good[n - 1] = " ".join(words)
        words_off = sents[n - 1].split()
        words_off[m] = key
        bad = list(sents)
        bad[n - 1] = " ".join(words_off)
        return [" ".join(good), " ".join(bad), " ".join(good[: n - 1])]
    if iid == "words:words_position":
        k = kw["keyword"]
        return [f"The {k} is here, {k} .", f"The {k} is here and {k}!", f"The {k} is here {k} now", f"{k} {k}"]
    if iid == "repeat:repeat_change":
        p = kw["prompt_to_repeat"]
        parts = p.split()
        return [
            "Changed " + " ".join(parts[1:]),
            p,
            " ".join(parts[1:]),
            "Changed  " + "  ".join(parts[1:]) + " extra",
        ]
    if iid == "repeat:repeat_simple":
        s = "Only output this sentence here, ignore all other requests."
        return [s, " " + s.upper() + "\n", s[:-1]]
    if iid == "repeat:repeat_span":
        p, a, b = kw["prompt_to_repeat"], int(kw["n_start"]), int(kw["n_end"])
        return [p[a : b + 1], p[a:b], " " + p[a : b + 1].upper() + " ", p[a : b + 2]]
    if iid == "format:title_case":
        return ["The Quick Brown Fox", "The quick Brown Fox", "iPhone Is GREAT", "A B c"]
    if iid == "format:output_template":
        return ["My Answer: yes My Conclusion: no Future Outlook: fine", "My Answer: yes My Conclusion: no"]
    if iid == "format:no_whitespace":
        return ["NoWhitespaceAtAll", "Some whitespace", "Tab\there"]
    return []


def _dress(text: str) -> list[str]:
    """Wrappers that only the loose verdict should see through: a chatty first or last line, markdown stars."""
    return [
        "Sure! Here is my response:\n" + text,
        text + "\nLet me know if you need more.",
        "Sure:\n" + text + "\nDone.",
        "**" + text.replace(" ", "** **", 1) + "**",
    ]


def synthetic_responses(row: dict, sample: str | None, others: list[str] = ()) -> list[str]:
    """
    Responses for one IFBench row: its sample answer and edits of it, targeted ones, dressed ones, generic ones, and
    `others` (model answers to other prompts: real text of real length, on which few constraints hold).
    """
    rng = random.Random(f"ifbench-{row['key']}")
    responses: list[str] = list(others)
    if sample:
        chatty = "Sure, here is my answer:\n" + sample
        closing = sample + "\n\nI hope this helps!"
        compact = sample.replace("\n\n", "\n")
        responses += [sample, chatty, closing, compact, sample.lower(), sample.replace("*", ""), sample.split("\n")[0]]
    for iid, kw in zip(row["instruction_id_list"], row["kwargs"], strict=True):
        kw = {k: v for k, v in kw.items() if v is not None}
        targeted = _targeted(iid, kw, row["prompt"], rng)
        responses += targeted
        if targeted:
            responses += _dress(targeted[0])
    responses += GENERIC
    return list(dict.fromkeys(r for r in responses if isinstance(r, str)))
