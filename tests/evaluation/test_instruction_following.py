import doctest
import json
import math
import random
import subprocess
import sys

import pytest

from instrl_trl.constraints import sample_constraint
from instrl_trl.metrics import INSTRUCTION_FOLLOWING_PATH, load_instruction_following


SENTENCES = {
    "en": "The committee met on Tuesday, and it agreed on a careful plan for the budget of the town.",
    "fr": "La rivière passe près du vieux moulin, et les enfants la suivent jusqu'à la mer.",
    "de": "Der Fluss fließt an der alten Mühle vorbei, und die Kinder folgen ihm bis zum Meer.",
    "es": "El río pasa junto al viejo molino, y los niños lo siguen hasta el mar.",
    "it": "Il fiume scorre accanto al vecchio mulino, e i bambini lo seguono fino al mare.",
    "pt": "O rio passa pelo velho moinho, e as crianças seguem-no até ao mar.",
}


def row(key, instruction_id_list, kwargs, prompt="Write something."):
    return {"key": key, "prompt": prompt, "instruction_id_list": instruction_id_list, "kwargs": kwargs}


def build_response(ids: list[str], kwargs: list[dict], rng: random.Random) -> str:
    """A response that follows each instruction with probability 0.6, sometimes with a chatty first line."""
    follow = {iid: rng.random() < 0.6 for iid in ids}
    given = dict(zip(ids, kwargs, strict=True))
    language = given.get("language:response_language", {}).get("language", "en") if all(follow.values()) else "en"
    body = [SENTENCES[language]] * rng.randint(2, 30)
    if follow.get("keywords:existence"):
        body.append(" ".join(given["keywords:existence"]["keywords"]) + ".")
    if "keywords:frequency" in given:
        body += [given["keywords:frequency"]["keyword"] + "."] * (
            given["keywords:frequency"]["frequency"] - 1 + follow["keywords:frequency"]
        )
    if "detectable_content:number_placeholders" in given:
        body += ["[name]"] * (
            given["detectable_content:number_placeholders"]["num_placeholders"]
            - 1
            + follow["detectable_content:number_placeholders"]
        )
    blocks = [" ".join(body)] * rng.randint(1, 4)
    if "detectable_format:multiple_sections" in given:
        blocks = [
            f"{given['detectable_format:multiple_sections']['section_spliter']} {i}\n{b}" for i, b in enumerate(blocks)
        ]
    text = ("\n***\n" if follow.get("length_constraints:number_paragraphs") else "\n\n").join(blocks)
    if "detectable_format:number_bullet_lists" in given:
        text += "".join(
            "\n* item"
            for _ in range(given["detectable_format:number_bullet_lists"]["num_bullets"] + rng.randint(-1, 1))
        )
    if "detectable_format:number_highlighted_sections" in given:
        text += " *key*" * (
            given["detectable_format:number_highlighted_sections"]["num_highlights"] + rng.randint(-1, 0)
        )
    if follow.get("detectable_format:title"):
        text = "<<The Plan>>\n" + text
    if follow.get("detectable_content:postscript"):
        text += f"\n{given['detectable_content:postscript']['postscript_marker']} See you."
    if follow.get("punctuation:no_comma"):
        text = text.replace(",", "")
    if follow.get("change_case:english_lowercase"):
        text = text.lower()
    if follow.get("change_case:english_capital"):
        text = text.upper()
    if follow.get("startend:end_checker"):
        text += " " + given["startend:end_checker"]["end_phrase"] + rng.choice(("", "**"))
    if follow.get("startend:quotation"):
        text = f'"{text}"'
    if follow.get("detectable_format:json_format"):
        text = json.dumps({"answer": text})
    if rng.random() < 0.3:
        text = "Sure, Here Is My Answer:\n" + text
    return text


def varied_rows(num_rows: int, seed: int = 0) -> tuple[list[dict], list[str]]:
    rng = random.Random(seed)
    rows, responses = [], []
    for key in range(num_rows):
        constraints = []
        for _ in range(1 + key % 3):
            constraint = sample_constraint(constraints, rng)
            if constraint is not None:
                constraints.append(constraint)
        ids, kwargs = [c.instruction_id for c in constraints], [c.to_dict()["kwargs"] for c in constraints]
        rows.append(row(key, ids, kwargs, prompt=f"Prompt {key}. " + " ".join(c.description() for c in constraints)))
        responses.append(build_response(ids, kwargs, rng))
    return rows, responses


def lm_eval_scores(rows: list[dict], responses: list[str]) -> dict[str, float]:
    from lm_eval.api.metrics import mean
    from lm_eval.tasks.ifeval.utils import agg_inst_level_acc, process_results

    results = [process_results(doc, [response]) for doc, response in zip(rows, responses, strict=True)]
    return {
        "prompt_level_strict_acc": mean([r["prompt_level_strict_acc"] for r in results]),
        "inst_level_strict_acc": agg_inst_level_acc([r["inst_level_strict_acc"] for r in results]),
        "prompt_level_loose_acc": mean([r["prompt_level_loose_acc"] for r in results]),
        "inst_level_loose_acc": agg_inst_level_acc([r["inst_level_loose_acc"] for r in results]),
    }


@pytest.fixture(scope="module")
def metric():
    return load_instruction_following()


def compute(metric, rows, responses, **kwargs):
    return metric.compute(predictions=responses, references=[json.dumps(r) for r in rows], **kwargs)


def test_load_from_folder_offline(monkeypatch):
    import evaluate

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    metric = evaluate.load(INSTRUCTION_FOLLOWING_PATH)
    assert type(metric).__name__ == "InstructionFollowing"
    assert "Zhou" in metric.citation and "2311.07911" in metric.citation
    assert set(metric.features) == {"predictions", "references"}


def test_equals_lm_eval_on_varied_rows(metric):
    rows, responses = varied_rows(42)
    results = compute(metric, rows, responses)
    expected = lm_eval_scores(rows, responses)
    assert {name: results[name] for name in expected} == expected  # exact float equality
    assert results["num_scored"] == 42 and results["num_skipped"] == 0
    # the rows are varied enough to test something: both verdicts occur, and loose forgives some strict failures
    assert 0 < results["prompt_level_strict_acc"] < results["prompt_level_loose_acc"] < 1
    assert sorted(results["by_num_constraints"]) == [1, 2, 3]
    assert len(results["by_instruction"]) >= 15


def test_breakdowns_on_hand_made_rows(metric):
    rows = [
        row(0, ["punctuation:no_comma"], [{}]),
        row(1, ["punctuation:no_comma"], [{}]),
        row(2, ["punctuation:no_comma", "detectable_format:title"], [{}, {}]),
        row(3, ["punctuation:no_comma", "detectable_format:title"], [{}, {}]),
        row(4, ["punctuation:no_comma", "detectable_format:title", "startend:quotation"], [{}, {}, {}]),
    ]
    responses = [
        "No commas.",  # follows
        "A comma, here.",  # fails
        "Sure, here:\n<<Title>>\nNo commas.",  # strict: comma fails; loose: follows both
        "<<Title>>\nNo commas.",  # follows both
        '<<Title>>\n"No commas but the quotes do not wrap everything."\nBye',  # quotes: strict fails, loose follows
    ]
    results = compute(metric, rows, responses)
    assert results["by_num_constraints"] == {
        1: {"prompt_level_strict_acc": 0.5, "prompt_level_loose_acc": 0.5, "count": 2},
        2: {"prompt_level_strict_acc": 0.5, "prompt_level_loose_acc": 1.0, "count": 2},
        3: {"prompt_level_strict_acc": 0.0, "prompt_level_loose_acc": 1.0, "count": 1},
    }
    assert results["by_instruction"] == {
        "detectable_format:title": {"inst_level_strict_acc": 1.0, "inst_level_loose_acc": 1.0, "count": 3},
        "punctuation:no_comma": {"inst_level_strict_acc": 0.6, "inst_level_loose_acc": 0.8, "count": 5},
        "startend:quotation": {"inst_level_strict_acc": 0.0, "inst_level_loose_acc": 1.0, "count": 1},
    }
    assert results["prompt_level_strict_acc"] == 2 / 5 and results["inst_level_loose_acc"] == 8 / 9
    assert {name: results[name] for name in lm_eval_scores(rows, responses)} == lm_eval_scores(rows, responses)


def test_invalid_references_are_skipped_and_listed(metric):
    rows, responses = varied_rows(6)
    good = compute(metric, rows, responses)
    bad_rows = [
        row("unknown-id", ["keywords:nonexistent"], [{}]),
        row("bad-kwargs", ["length_constraints:number_words"], [{"num_words": 100, "relation": "about"}]),
    ]
    results = compute(metric, rows + bad_rows, responses + ["Some answer.", "Another answer."])
    assert results["num_skipped"] == 2
    assert [(s["index"], s["key"]) for s in results["skipped"]] == [(6, "unknown-id"), (7, "bad-kwargs")]
    assert "keywords:nonexistent" in results["skipped"][0]["reason"]
    assert {k: v for k, v in results.items() if k != "skipped" and k != "num_skipped"} == {
        k: v for k, v in good.items() if k != "skipped" and k != "num_skipped"
    }
    not_json = metric.compute(predictions=["x"], references=["{not json"])
    assert not_json["num_skipped"] == 1 and math.isnan(not_json["prompt_level_strict_acc"])


def test_invalid_reference_raises_with_its_key(metric):
    bad = row("row-17", ["detectable_format:title"], [{"num_bullets": 3}])
    with pytest.raises(ValueError, match="row-17"):
        compute(metric, [bad], ["<<Title>>"], on_invalid="raise")
    with pytest.raises(ValueError, match="on_invalid"):
        compute(metric, [bad], ["<<Title>>"], on_invalid="ignore")


def test_deterministic(metric):
    # Unseeded, langdetect calls "Te amo" Swahili about half the time; 20 rows of it would not all agree. The
    # out-of-a-z letter would be redrawn by lm-eval. Under two prior random states, the results are the same.
    rows = [row(i, ["language:response_language"], [{"language": "sw"}]) for i in range(20)]
    rows.append(
        row(99, ["keywords:letter_frequency"], [{"letter": "#", "let_frequency": 2, "let_relation": "at least"}])
    )
    responses = ["Te amo"] * 20 + ["## A heading"]
    random.seed(0)
    first = compute(metric, rows, responses)
    random.seed(1)
    assert compute(metric, rows, responses) == first
    assert first["by_instruction"]["language:response_language"]["inst_level_strict_acc"] == 1.0
    assert first["by_instruction"]["keywords:letter_frequency"]["inst_level_strict_acc"] == 1.0


def test_docstring_example():
    from instrl_trl.metrics.instruction_following.instruction_following import _KWARGS_DESCRIPTION

    test = doctest.DocTestParser().get_doctest(_KWARGS_DESCRIPTION, {}, "instruction_following", None, 0)
    runner = doctest.DocTestRunner()
    runner.run(test)
    assert runner.summarize(verbose=False).failed == 0


def lm_eval_generated_rows(num_rows: int, seed: int) -> tuple[list[dict], list[str]]:
    """
    Rows as lm-eval's own generator writes them (`build_description()` with no argument, then
    `get_instruction_args()`), including `nth_paragraph = num_paragraphs + 1`, which lm-eval draws itself and then
    redraws when scoring; responses of a few paragraphs that start with the row's words, so verdicts vary.
    """
    from instrl_trl.constraints import instruction_ids
    from instrl_trl.constraints.registry import ifeval_registry

    checkers = ifeval_registry().checkers
    ids = [iid for iid in instruction_ids() if iid != "combination:repeat_prompt"]  # needs the prompt to build
    state = random.getstate()
    random.seed(seed)  # lm-eval draws from the global generator
    rng = random.Random(seed)
    rows, responses = [], []
    for key in range(num_rows):
        chosen = rng.sample(ids, rng.randint(1, 2))
        if key % 10 == 0:
            chosen = ["length_constraints:nth_paragraph_first_word"]
        kwargs = []
        for iid in chosen:
            checker = checkers[iid](iid)
            checker.build_description()
            args = {k: v for k, v in (checker.get_instruction_args() or {}).items() if v is not None}
            if key % 10 == 0:
                args["nth_paragraph"] = args["num_paragraphs"] + 1
            kwargs.append(args)
        words = [v for args in kwargs for v in args.values() if isinstance(v, str)] or ["plain"]
        paragraphs = [f"{rng.choice(words).capitalize()} {SENTENCES['en']}" for _ in range(rng.randint(1, 4))]
        rows.append(row(key, chosen, kwargs))
        responses.append("\n\n".join(paragraphs))
    random.setstate(state)
    return rows, responses


def redrawn_keys(rows: list[dict]) -> list[int]:
    """The rows lm-eval rescores at random, by lm-eval's own range rule for `nth_paragraph` (`instructions.py`)."""
    return [
        r["key"]
        for r in rows
        for iid, kwargs in zip(r["instruction_id_list"], r["kwargs"], strict=True)
        if iid == "length_constraints:nth_paragraph_first_word"
        and not 1 <= kwargs["nth_paragraph"] <= kwargs["num_paragraphs"]
    ]


def test_rows_lm_eval_would_redraw_are_skipped_under_any_random_state(metric):
    from lm_eval.tasks.ifeval.utils import process_results

    from instrl_trl.constraints import check_row

    rows, responses = lm_eval_generated_rows(60, seed=3)
    expected_skipped = redrawn_keys(rows)
    assert len(expected_skipped) >= 6  # the 6 forced ones, and any lm-eval drew itself
    for prior in (0, 1, 2, 3, 4):
        random.seed(prior)
        state = random.getstate()
        results = compute(metric, rows, responses)
        assert random.getstate() == state  # `compute` leaves the caller's random stream where it was
        assert [s["key"] for s in results["skipped"]] == expected_skipped
        assert all("at random" in s["reason"] for s in results["skipped"])
    scored = [(r, response) for r, response in zip(rows, responses, strict=True) if r["key"] not in expected_skipped]
    assert results["num_scored"] == len(scored)
    assert compute(metric, *map(list, zip(*scored, strict=True))) | {"skipped": [], "num_skipped": 0} == (
        results | {"skipped": [], "num_skipped": 0}
    )
    # exact equality with lm-eval, row by row and in the four scores
    for r, response in scored:
        lm_eval = process_results(r, [response])
        verdict = check_row(response, r["instruction_id_list"], r["kwargs"], prompt=r["prompt"])
        assert (verdict.strict, verdict.loose) == (lm_eval["inst_level_strict_acc"], lm_eval["inst_level_loose_acc"])
    expected = lm_eval_scores([r for r, _ in scored], [response for _, response in scored])
    assert {name: results[name] for name in expected} == expected
    assert 0 < sum(process_results(r, [s])["prompt_level_loose_acc"] for r, s in scored) < len(scored)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_rows_lm_eval_would_redraw_are_skipped_in_every_process(tmp_path):
    # Fresh processes, each with its own prior random state (one seeded from the OS), skip the same rows.
    rows, responses = lm_eval_generated_rows(60, seed=3)
    data = tmp_path / "rows.json"
    data.write_text(json.dumps({"rows": rows, "responses": responses}))
    code = (
        "import json, random, sys\n"
        "from instrl_trl.metrics import load_instruction_following\n"
        "if sys.argv[2] != 'os':\n"
        "    random.seed(int(sys.argv[2]))\n"
        "data = json.load(open(sys.argv[1]))\n"
        "state = random.getstate()\n"
        "results = load_instruction_following().compute(\n"
        "    predictions=data['responses'], references=[json.dumps(r) for r in data['rows']])\n"
        "assert random.getstate() == state\n"
        "print(json.dumps([s['key'] for s in results['skipped']]))\n"
    )
    skipped = []
    for prior in ("11", "os"):
        result = subprocess.run(
            [sys.executable, "-c", code, str(data), prior], capture_output=True, text=True, timeout=240, check=False
        )
        assert result.returncode == 0, result.stderr
        skipped.append(json.loads(result.stdout.strip().splitlines()[-1]))
    assert skipped == [redrawn_keys(rows)] * 2
