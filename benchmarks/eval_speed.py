"""
Scoring throughput of the `instruction_following` metric against lm-eval's own IFEval scoring, on the same rows.

Rows are IFEval-like (1-3 constraints drawn by `instrl_trl.constraints.sample_constraint` from a seeded rng),
responses synthetic, 200-400 words, built to follow or break each constraint. The baseline is lm-eval's per-row
`lm_eval.tasks.ifeval.utils.process_results` plus its aggregation; both are warmed up first (langdetect loads its
profiles on the first call) and must agree on the four scores. Printed last: the ratio ours / lm-eval.

    python benchmarks/eval_speed.py [--num_rows 5000] [--seed 0]
"""

import argparse
import json
import random
import time

from instrl_trl.constraints import sample_constraint
from instrl_trl.metrics import load_instruction_following


SENTENCES = {
    "en": [
        "The river runs past the old mill, and the children follow it to the sea.",
        "Every morning the baker lights the oven before the town wakes up.",
        "Good maps show the roads, the rivers, and the small paths between the hills.",
        "A careful plan saves time, money, and a great deal of worry later on.",
        "The committee met on Tuesday to discuss the budget for next year.",
        "She wrote three letters, sealed them, and walked to the post office.",
    ],
    "es": [
        "El río pasa junto al viejo molino y los niños lo siguen hasta el mar.",
        "Cada mañana el panadero enciende el horno antes de que el pueblo despierte.",
    ],
    "fr": [
        "La rivière passe près du vieux moulin et les enfants la suivent jusqu'à la mer.",
        "Chaque matin le boulanger allume le four avant que la ville se réveille.",
    ],
    "de": [
        "Der Fluss fließt an der alten Mühle vorbei und die Kinder folgen ihm bis zum Meer.",
        "Jeden Morgen heizt der Bäcker den Ofen an, bevor die Stadt erwacht.",
    ],
    "it": [
        "Il fiume scorre accanto al vecchio mulino e i bambini lo seguono fino al mare.",
        "Ogni mattina il fornaio accende il forno prima che la città si svegli.",
    ],
    "pt": [
        "O rio passa pelo velho moinho e as crianças seguem-no até ao mar.",
        "Todas as manhãs o padeiro acende o forno antes de a cidade acordar.",
    ],
}


def make_rows(num_rows: int, rng: random.Random) -> list[dict]:
    rows = []
    for key in range(num_rows):
        constraints = []
        for _ in range(rng.randint(1, 3)):
            constraint = sample_constraint(constraints, rng)
            if constraint is not None:
                constraints.append(constraint)
        rows.append(
            {
                "key": key,
                "prompt": f"Write about topic {key}. " + " ".join(c.description() for c in constraints),
                "instruction_id_list": [c.instruction_id for c in constraints],
                "kwargs": [c.to_dict()["kwargs"] for c in constraints],
            }
        )
    return rows


def make_response(row: dict, rng: random.Random) -> str:
    """A response of about 200-400 words that follows each constraint with probability 0.7 (and may add a preamble)."""
    follow = {iid: rng.random() < 0.7 for iid in row["instruction_id_list"]}
    kwargs = dict(zip(row["instruction_id_list"], row["kwargs"], strict=True))
    language = kwargs.get("language:response_language", {}).get("language", "en")
    if not follow.get("language:response_language", True):
        language = "en"
    num_words = rng.randint(200, 400)
    if "length_constraints:number_words" in kwargs and follow["length_constraints:number_words"]:
        limit, relation = (
            kwargs["length_constraints:number_words"]["num_words"],
            kwargs["length_constraints:number_words"]["relation"],
        )
        # stay within 200-400 words where the limit allows it
        if relation == "at least":
            num_words = rng.randint(max(limit + 5, 200), max(limit + 20, 400))
        else:
            num_words = rng.randint(min(200, limit - 40), limit - 20)
    sentences, count = [], 0
    while count < num_words:
        sentences.append(rng.choice(SENTENCES[language]))
        count += len(sentences[-1].split())
    if "keywords:existence" in kwargs and follow["keywords:existence"]:
        sentences.append("We also mention " + " and ".join(kwargs["keywords:existence"]["keywords"]) + ".")
    if "keywords:frequency" in kwargs:
        times = kwargs["keywords:frequency"]["frequency"] + rng.choice((-1, 0, 1))
        sentences.extend([f"The {kwargs['keywords:frequency']['keyword']} matters."] * max(times, 0))
    if "keywords:forbidden_words" in kwargs and not follow["keywords:forbidden_words"]:
        sentences.append(f"Sadly {kwargs['keywords:forbidden_words']['forbidden_words'][0]} appears.")
    if "detectable_content:number_placeholders" in kwargs:
        n = kwargs["detectable_content:number_placeholders"]["num_placeholders"] - (
            not follow["detectable_content:number_placeholders"]
        )
        sentences.extend(["Send it to [address]."] * n)
    num_blocks = 1
    for iid in ("length_constraints:number_paragraphs", "detectable_format:multiple_sections"):
        if iid in kwargs:
            num_blocks = kwargs[iid].get("num_paragraphs") or kwargs[iid].get("num_sections")
            num_blocks += 0 if follow[iid] else 1
    size = max(1, len(sentences) // num_blocks)
    blocks = [
        " ".join(sentences[i * size : (i + 1) * size if i < num_blocks - 1 else None]) for i in range(num_blocks)
    ]
    if "detectable_format:multiple_sections" in kwargs:
        splitter = kwargs["detectable_format:multiple_sections"]["section_spliter"]
        blocks = [f"{splitter} {i + 1}\n{block}" for i, block in enumerate(blocks)]
    text = ("\n***\n" if "length_constraints:number_paragraphs" in kwargs else "\n\n").join(blocks)
    if "detectable_format:number_bullet_lists" in kwargs:
        n = kwargs["detectable_format:number_bullet_lists"]["num_bullets"] + (
            not follow["detectable_format:number_bullet_lists"]
        )
        text += "\n" + "\n".join(f"* point {i}" for i in range(n))
    if "detectable_format:number_highlighted_sections" in kwargs:
        n = kwargs["detectable_format:number_highlighted_sections"]["num_highlights"] - (
            not follow["detectable_format:number_highlighted_sections"]
        )
        text += " " + " ".join(f"*key idea {i}*" for i in range(n))
    if "detectable_format:title" in kwargs and follow["detectable_format:title"]:
        text = "<<A Short Report>>\n" + text
    if "detectable_content:postscript" in kwargs and follow["detectable_content:postscript"]:
        text += f"\n{kwargs['detectable_content:postscript']['postscript_marker']} Thanks for reading."
    if "punctuation:no_comma" in kwargs and follow["punctuation:no_comma"]:
        text = text.replace(",", "")
    if "keywords:letter_frequency" in kwargs and follow["keywords:letter_frequency"]:
        letter_kwargs = kwargs["keywords:letter_frequency"]
        if letter_kwargs["let_relation"] == "at least":
            text += " " + letter_kwargs["letter"] * letter_kwargs["let_frequency"]
        else:
            text = text.replace(letter_kwargs["letter"], "").replace(letter_kwargs["letter"].upper(), "")
    if "change_case:english_lowercase" in kwargs and follow["change_case:english_lowercase"]:
        text = text.lower()
    if "change_case:english_capital" in kwargs and follow["change_case:english_capital"]:
        text = text.upper()
    if "startend:end_checker" in kwargs and follow["startend:end_checker"]:
        text += "\n" + kwargs["startend:end_checker"]["end_phrase"]
    if "startend:quotation" in kwargs and follow["startend:quotation"]:
        text = f'"{text}"'
    if "detectable_format:json_format" in kwargs and follow["detectable_format:json_format"]:
        text = json.dumps({"answer": text})
    if rng.random() < 0.2:  # a chatty first line: breaks some strict verdicts, which the loose variants forgive
        text = "Sure, here is my answer:\n" + text
    return text


def lm_eval_scores(rows: list[dict], responses: list[str]) -> dict[str, float]:
    from lm_eval.tasks.ifeval.utils import agg_inst_level_acc, process_results

    results = [process_results(row, [response]) for row, response in zip(rows, responses, strict=True)]
    scores = {}
    for name in ("prompt_level_strict_acc", "prompt_level_loose_acc"):
        scores[name] = sum(r[name] for r in results) / len(results)
    for name in ("inst_level_strict_acc", "inst_level_loose_acc"):
        scores[name] = agg_inst_level_acc([r[name] for r in results])
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--num_rows", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    cli = parser.parse_args()

    rng = random.Random(cli.seed)
    rows = make_rows(cli.num_rows, rng)
    responses = [make_response(row, rng) for row in rows]
    references = [json.dumps(row) for row in rows]
    metric = load_instruction_following()
    metric.compute(predictions=responses[:20], references=references[:20])  # warm-up: langdetect profiles
    lm_eval_scores(rows[:20], responses[:20])

    start = time.perf_counter()
    ours = metric.compute(predictions=responses, references=references)
    ours_seconds = time.perf_counter() - start
    start = time.perf_counter()
    theirs = lm_eval_scores(rows, responses)
    theirs_seconds = time.perf_counter() - start
    if any(ours[name] != theirs[name] for name in theirs) or ours["num_skipped"]:
        raise RuntimeError(f"scores differ: ours {ours}, lm-eval {theirs}")

    words = [len(response.split()) for response in responses]
    ours_rate, theirs_rate = len(rows) / ours_seconds, len(rows) / theirs_seconds
    constraints = sum(len(row["instruction_id_list"]) for row in rows) / len(rows)
    words = sorted(words)
    low, median, high = words[len(words) // 20], words[len(words) // 2], words[-len(words) // 20]
    shape = f"words a response: median {median}, 5-95% {low}-{high}"
    print(f"{len(rows)} rows, {constraints:.2f} constraints a row, {shape}")  # noqa: T201
    print("scores (equal): " + ", ".join(f"{name}={value:.4f}" for name, value in theirs.items()))  # noqa: T201
    print(f"ours:    {ours_rate:8.0f} responses/s ({ours_seconds:.2f} s)")  # noqa: T201
    print(f"lm-eval: {theirs_rate:8.0f} responses/s ({theirs_seconds:.2f} s)")  # noqa: T201
    print(f"projected for 541 IFEval-size responses: ours {541 / ours_rate:.2f} s, lm-eval {541 / theirs_rate:.2f} s")  # noqa: T201
    print(f"ours / lm-eval: {ours_rate / theirs_rate:.1f}x")  # noqa: T201


if __name__ == "__main__":
    main()
