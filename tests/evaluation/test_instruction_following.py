import doctest
import json
import math
import random

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
    rows, responses = varied_rows(12, seed=1)
    rows.append(
        row(99, ["keywords:letter_frequency"], [{"letter": "#", "let_frequency": 2, "let_relation": "at least"}])
    )
    responses.append("## A heading")
    rows.append(row(100, ["language:response_language"], [{"language": "it"}]))
    responses.append("Ciao, come stai? Bene grazie.")
    assert compute(metric, rows, responses) == compute(metric, rows, responses)


def test_docstring_example():
    from instrl_trl.metrics.instruction_following.instruction_following import _KWARGS_DESCRIPTION

    test = doctest.DocTestParser().get_doctest(_KWARGS_DESCRIPTION, {}, "instruction_following", None, 0)
    runner = doctest.DocTestRunner()
    runner.run(test)
    assert runner.summarize(verbose=False).failed == 0
