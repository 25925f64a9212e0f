import dataclasses
import doctest
import json
import math
import shutil
import subprocess
import sys
import threading
import time

import pytest
from huggingface_hub import EvalResult, ModelCard

from instrl_trl.cli.main import main as cli_main
from instrl_trl.evaluation.benchmark_rows import check_benchmark_rows, load_benchmark
from instrl_trl.evaluation.card import merge_eval_results, to_eval_results, update_model_card
from instrl_trl.evaluation.comparison import COMPARISON_PLOT_FILE, format_comparison_table
from instrl_trl.evaluation.evaluation_config import BenchmarkEvaluationConfig, parse_lm_eval_task
from instrl_trl.evaluation.lm_eval_tasks import lm_eval_to_eval_results
from instrl_trl.evaluation.responses import build_benchmark_generator
from instrl_trl.evaluation.results import PREDICTIONS_FILE, RESULTS_FILE, write_results
from instrl_trl.metrics import load_instruction_following
from instrl_trl.metrics.benchmarks import BENCHMARKS, IFEVAL
from instrl_trl.runs.folder import RunFingerprintError
from instrl_trl.stages.evaluate import run_evaluate
from tests.backends.openai_server import OpenAIServer
from tests.config_docs import assert_config_documented


NUM_SAMPLES = 10
CARD = """---
license: apache-2.0
tags:
- instrl-trl
---

# tiny-sft

A tiny model fine-tuned for the tests.

## Evaluation

Not evaluated yet.

## Intended use and limitations

Tests only.
"""
VALID_ROW = {"prompt": "Describe a cat. Do not use any commas.", "instruction_id_list": ["punctuation:no_comma"]}


def copy_model(source: str, folder, card: str | None = CARD) -> str:
    shutil.copytree(source, folder)
    if card is not None:
        (folder / "README.md").write_text(card)
    return str(folder)


@pytest.fixture
def carded_model(tiny_causal_lm, tmp_path) -> str:
    """A copy of the tiny model with an SFT-like card (its own copy: the card gets updated)."""
    return copy_model(tiny_causal_lm, tmp_path / "tiny-sft")


def make_config(models, output_dir, **kwargs) -> BenchmarkEvaluationConfig:
    # 10 prompts and 16 new tokens keep a run to a few seconds on a CPU
    kwargs = {"benchmark": IFEVAL.sample_path, "max_samples": NUM_SAMPLES, "max_new_tokens": 16, **kwargs}
    return BenchmarkEvaluationConfig(models=models, output_dir=str(output_dir), batch_size=4, **kwargs)


def write_benchmark(path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(path)


def read_jsonl(path) -> list[dict]:
    return [json.loads(line) for line in open(path, encoding="utf-8")]


def test_packaged_sample_is_a_valid_ifeval_benchmark():
    benchmark = load_benchmark(IFEVAL, IFEVAL.sample_path)
    assert 35 <= benchmark.num_rows <= 50
    assert check_benchmark_rows(IFEVAL, benchmark, on_invalid="raise") == []
    assert {len(ids) for ids in benchmark["instruction_id_list"]} == {1, 2, 3}
    assert len(set(benchmark["key"])) == benchmark.num_rows


def test_evaluate_writes_scores_predictions_and_card(carded_model, tmp_path):
    config = make_config([carded_model], tmp_path / "eval")
    results = run_evaluate(config)[carded_model]

    folder = tmp_path / "eval" / "tiny-sft"
    assert json.loads((folder / RESULTS_FILE).read_text()) == json.loads(json.dumps(results))
    assert list(results["benchmarks"]) == ["ifeval_sample"]
    written = json.loads((folder / RESULTS_FILE).read_text())["benchmarks"]["ifeval_sample"]
    assert written["num_samples"] == written["num_scored"] == NUM_SAMPLES
    assert written["benchmark_split"] == f"train[:{NUM_SAMPLES}]"
    assert written["benchmark_type"] == "ifeval"

    predictions = read_jsonl(folder / PREDICTIONS_FILE)
    assert len(predictions) == NUM_SAMPLES
    assert all({"benchmark", "key", "prompt", "response", "instructions"} <= set(row) for row in predictions)
    assert all(len(row["instructions"]) == len(row["instruction_id_list"]) for row in predictions)
    # The written scores are the metric's on the written responses
    references = [
        json.dumps({k: row[k] for k in ("key", "prompt", "instruction_id_list", "kwargs")}) for row in predictions
    ]
    expected = load_instruction_following().compute(
        predictions=[row["response"] for row in predictions], references=references
    )
    assert {score: written[score] for score in IFEVAL.scores} == {score: expected[score] for score in IFEVAL.scores}
    assert written["by_instruction"] == json.loads(json.dumps(expected["by_instruction"]))
    # ... and each row's verdicts add up to the prompt-level strict accuracy
    strict = [all(v["strict"] for v in row["instructions"]) for row in predictions]
    assert sum(strict) / len(strict) == written["prompt_level_strict_acc"]

    card = ModelCard.load(f"{carded_model}/README.md")
    assert {result.metric_type: result.metric_value for result in card.data.eval_results} == {
        score: round(written[score], 4) for score in IFEVAL.scores
    }
    assert {result.dataset_type for result in card.data.eval_results} == {"ifeval_sample"}  # never a local path
    assert card.data.license == "apache-2.0"
    assert "A tiny model fine-tuned for the tests." in card.text
    assert "## Intended use and limitations\n\nTests only." in card.text
    assert "Not evaluated yet" not in card.text
    assert "| ifeval_sample (train[:10]) | Prompt-level strict accuracy |" in card.text


def test_a_second_evaluation_replaces_the_results(carded_model, tmp_path):
    results = [
        EvalResult("text-generation", "ifeval_sample", "ifeval_sample", "prompt_level_strict_acc", v)
        for v in (0.1, 0.2)
    ]
    other = EvalResult("text-generation", "allenai/ai2_arc", "arc_easy", "acc", 0.5)
    update_model_card(carded_model, [results[0], other])
    card = update_model_card(carded_model, [results[1]])
    assert [(r.dataset_type, r.metric_value) for r in card.data.eval_results] == [
        ("allenai/ai2_arc", 0.5),
        ("ifeval_sample", 0.2),
    ]
    reloaded = ModelCard.load(f"{carded_model}/README.md")
    assert reloaded.text.count("## Evaluation") == 1
    assert reloaded.data.eval_results == card.data.eval_results


def test_compare_two_models_from_the_cli(carded_model, tiny_causal_lm, tmp_path, capsys):
    bare = copy_model(tiny_causal_lm, tmp_path / "tiny-base", card=None)
    output_dir = tmp_path / "compare"
    args = ["evaluate", "--models", carded_model, bare, "--benchmark", IFEVAL.sample_path, "--output_dir"]
    args += [str(output_dir), "--max_samples", "4", "--max_new_tokens", "8", "--batch_size", "4"]
    assert cli_main(args) == 0

    assert (output_dir / COMPARISON_PLOT_FILE).read_bytes().startswith(b"\x89PNG")
    table = capsys.readouterr().out
    assert "| Model " in table
    assert "| tiny-sft " in table
    assert "| tiny-base " in table
    for name in ("tiny-sft", "tiny-base"):
        assert (output_dir / name / RESULTS_FILE).is_file()
        assert len(read_jsonl(output_dir / name / PREDICTIONS_FILE)) == 4
    # A model folder without a card gets a minimal one with the results
    card = ModelCard.load(f"{bare}/README.md")
    assert card.data.model_name == "tiny-base"
    assert len(card.data.eval_results) == len(IFEVAL.scores)


def test_format_comparison_table_has_a_row_per_model():
    scores = dict.fromkeys(IFEVAL.scores, 0.5) | {"num_scored": 3, "num_skipped": 0}
    table = format_comparison_table({"org/base": scores, "org/sft": scores}, IFEVAL.scores)
    lines = table.splitlines()
    assert len(lines) == 4
    assert lines[2].startswith("| org/base ") and lines[3].startswith("| org/sft ")
    assert len({len(line) for line in lines}) == 1  # aligned columns


def test_missing_column_fails_before_any_model_is_loaded(tmp_path):
    rows = [{"key": 1, "prompt": "Say hi.", "kwargs": [{}]}]
    benchmark = write_benchmark(tmp_path / "bench.jsonl", rows)
    config = make_config([str(tmp_path / "no-such-model")], tmp_path / "eval", benchmark=benchmark)
    with pytest.raises(ValueError, match="no column 'instruction_id_list'"):
        run_evaluate(config)


INVALID_ROWS = [
    {"key": 1, **VALID_ROW, "kwargs": [{}]},
    {"key": 2, "prompt": "Write a poem.", "instruction_id_list": ["detectable_format:made_up"], "kwargs": [{}]},
    {"key": 3, **VALID_ROW, "kwargs": [{}]},
]


def test_invalid_row_is_skipped_and_listed(tiny_causal_lm, tmp_path):
    benchmark = write_benchmark(tmp_path / "bench.jsonl", INVALID_ROWS)
    config = make_config([tiny_causal_lm], tmp_path / "eval", benchmark=benchmark, update_model_card=False)
    results = run_evaluate(config)[tiny_causal_lm]["benchmarks"]["bench"]
    assert results["num_scored"] == 2
    assert results["num_skipped"] == 1
    assert results["skipped"][0]["key"] == 2
    assert "made_up" in results["skipped"][0]["reason"]
    predictions = {row["key"]: row for row in read_jsonl(next((tmp_path / "eval").iterdir()) / PREDICTIONS_FILE)}
    assert "skipped" in predictions[2] and "instructions" not in predictions[2]
    assert "instructions" in predictions[1]


def test_invalid_row_raises_before_any_model_is_loaded(tmp_path):
    benchmark = write_benchmark(tmp_path / "bench.jsonl", INVALID_ROWS)
    config = make_config([str(tmp_path / "no-such-model")], tmp_path / "eval", benchmark=benchmark, on_invalid="raise")
    with pytest.raises(ValueError, match="key 2 .*made_up"):
        run_evaluate(config)


def test_push_updated_card_to_the_hub(hub, carded_model, tmp_path):
    config = make_config(
        [carded_model], tmp_path / "eval", max_samples=3, push_to_hub=True, hub_model_id="user/tiny-sft-evaluated"
    )
    run_evaluate(config)
    card = ModelCard.load("user/tiny-sft-evaluated")
    assert {result.metric_type for result in card.data.eval_results} == set(IFEVAL.scores)
    assert "A tiny model fine-tuned for the tests." in card.text
    from huggingface_hub import HfApi

    # Only the card (and images) are pushed: the weights stay where they are
    assert set(HfApi().list_repo_files("user/tiny-sft-evaluated")) == {".gitattributes", "README.md"}


def test_endpoint_generator(tmp_path):
    with OpenAIServer(responder=lambda messages: "a quiet answer without commas.") as server:
        generator = {"backend": "endpoint", "base_url": server.base_url, "max_retries": 0}
        config = make_config(["served-model"], tmp_path / "eval", generator=generator, max_samples=3)
        results = run_evaluate(config)["served-model"]
    assert results["backend"] == "endpoint"
    assert results["benchmarks"]["ifeval_sample"]["num_scored"] == 3
    assert results["benchmarks"]["ifeval_sample"]["num_failed_generations"] == 0
    assert (tmp_path / "eval" / "served-model" / RESULTS_FILE).is_file()
    assert all(request.body["max_tokens"] == 16 for request in server.state.requests)


def test_endpoint_answers_do_not_wait_for_the_slowest_of_a_batch(tmp_path):
    """
    Through an endpoint every prompt is in flight (up to `max_concurrency`): while the first answer is held back,
    the prompts after it, beyond a batch, are sent and answered on the other slot (in batches of 4 they would wait).
    """
    lock, arrivals, released, held = threading.Lock(), [], threading.Event(), []

    def responder(messages):
        with lock:
            arrivals.append(messages)
            count = len(arrivals)
        if count >= 7:
            released.set()
        if count == 1:
            held.append(released.wait(timeout=10))
        return "a quiet answer without commas."

    with OpenAIServer(responder=responder) as server:
        generator = {"backend": "endpoint", "base_url": server.base_url, "max_retries": 0, "max_concurrency": 2}
        config = BenchmarkEvaluationConfig(
            models=["served-model"], output_dir=str(tmp_path / "eval"), benchmark=IFEVAL.sample_path, max_samples=8,
            max_new_tokens=16, batch_size=1, generator=generator,
        )  # fmt: skip
        results = run_evaluate(config)["served-model"]
    assert held == [True]  # six later prompts were answered while the first was held
    assert server.max_in_flight == 2
    assert results["benchmarks"]["ifeval_sample"]["num_failed_generations"] == 0


def test_build_benchmark_generator_passes_the_endpoint_mapping(tmp_path):
    generator = {"backend": "endpoint", "base_url": "http://127.0.0.1:9/v1", "generation_kwargs": {"max_tokens": 8}}
    config = make_config(["org/model"], tmp_path, generator=generator, generation_kwargs={"temperature": 0.0})
    built = build_benchmark_generator("org/model", config)
    assert built.model_name == "org/model"
    assert built.generation_kwargs["max_tokens"] == 8  # the mapping's own settings win
    assert built.base_url == "http://127.0.0.1:9/v1"


def test_lm_eval_task_without_reachable_data_fails_fast_naming_it(hub, tmp_path):
    # The test Hub has no `allenai/ai2_arc`: lm-eval's data loading fails, before any model is loaded
    config = make_config([str(tmp_path / "no-such-model")], tmp_path / "eval", lm_eval_tasks=["arc_easy"])
    start = time.perf_counter()
    with pytest.raises(RuntimeError, match=r"lm-eval task 'arc_easy'.*must be reachable") as error:
        run_evaluate(config)
    assert "DatasetNotFoundError" in str(error.value)
    assert time.perf_counter() - start < 60  # lm-eval's task index takes most of it; no retry loop on a 404


LM_EVAL_TASK = """task: tiny_choice
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{question}}}}"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: label
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
"""


def test_lm_eval_task_scores_join_the_card(carded_model, tmp_path):
    # A local lm-eval task (YAML + JSONL): the lm-eval path runs offline, as the paper's tasks do online
    data = write_benchmark(
        tmp_path / "choice.jsonl",
        [{"question": f"what is {w}", "choices": ["a city", "a river"], "label": i % 2} for i, w in enumerate("abcd")],
    )
    (tmp_path / "tiny_choice.yaml").write_text(LM_EVAL_TASK.format(data=data))
    task = f"{tmp_path / 'tiny_choice.yaml'}:0"
    config = make_config([carded_model], tmp_path / "eval", max_samples=2, lm_eval_tasks=[task], dtype="float32")
    results = run_evaluate(config)[carded_model]
    assert results["lm_eval"]["tiny_choice"]["num_fewshot"] == 0
    accuracy = results["lm_eval"]["tiny_choice"]["metrics"]["acc"]
    assert accuracy in (0.0, 0.5, 1.0)  # two questions
    card = ModelCard.load(f"{carded_model}/README.md")
    assert {(r.dataset_name, r.metric_type) for r in card.data.eval_results} == {
        ("ifeval_sample", score) for score in IFEVAL.scores
    } | {("tiny_choice", "acc")}
    assert str(tmp_path) not in card.content  # the local data path stays out of the card


def test_lm_eval_results_become_card_results():
    lm_eval_results = {
        "arc_challenge": {
            "dataset": "allenai/ai2_arc",
            "dataset_config": "ARC-Challenge",
            "split": "test",
            "num_fewshot": 25,
            "metrics": {"acc": 0.41234, "acc_norm": 0.45},
        }
    }
    results = lm_eval_to_eval_results(lm_eval_results)
    assert [(r.dataset_name, r.metric_type, r.metric_value) for r in results] == [
        ("arc_challenge", "acc", 0.4123),
        ("arc_challenge", "acc_norm", 0.45),
    ]
    assert results[0].dataset_args == {"num_few_shot": 25}
    assert merge_eval_results(results, results[:1]) == [results[1], results[0]]


def test_config_is_documented():
    assert_config_documented(BenchmarkEvaluationConfig)


def test_config_accepts_a_single_model(tmp_path):
    config = BenchmarkEvaluationConfig(models="org/model", output_dir=str(tmp_path))
    assert config.models == ["org/model"]
    assert config.benchmark == ["google/IFEval"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"models": []}, "`models` is required"),
        ({"models": ["a", "a"]}, "twice"),
        ({"output_dir": None}, "`output_dir` is required"),
        ({"batch_size": 0}, "`batch_size`"),
        ({"max_new_tokens": 0}, "`max_new_tokens`"),
        ({"max_samples": 0}, "`max_samples`"),
        ({"on_invalid": "ignore"}, "`on_invalid`"),
        ({"benchmark_type": "made_up"}, "`benchmark_type`"),
        ({"benchmark": []}, "`benchmark` is empty"),
        ({"benchmark": ["ifbench:"]}, "names no dataset"),
        ({"benchmark": ["ifbench", "allenai/IFBench_test"]}, "twice"),
        ({"push_to_hub": True}, "`hub_model_id`"),
        ({"lm_eval_tasks": ["arc_challenge:many"]}, "arc_challenge:many"),
        ({"generator": {"backend": "rules"}}, "`generator.backend`"),
        ({"generator": {"backend": "endpoint", "model": "b"}}, "`generator.model`"),
    ],
)
def test_config_checks(kwargs, match, tmp_path):
    kwargs = {"models": ["a"], "output_dir": str(tmp_path), **kwargs}
    with pytest.raises(ValueError, match=match):
        BenchmarkEvaluationConfig(**kwargs)


def test_parse_lm_eval_task():
    assert parse_lm_eval_task("mmlu:5") == ("mmlu", 5)
    assert parse_lm_eval_task("truthfulqa_mc2") == ("truthfulqa_mc2", None)
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner()
    for test in finder.find(parse_lm_eval_task, globs={"parse_lm_eval_task": parse_lm_eval_task}):
        runner.run(test)
    assert runner.summarize(verbose=False).failed == 0


def test_nan_scores_are_not_reported(tmp_path):
    # The metric gives NaN when every row was skipped: the card then gets no result rather than a NaN
    results = dict.fromkeys(IFEVAL.scores, math.nan) | {"num_scored": 0, "num_samples": 3}
    results |= {"benchmark": "google/IFEval", "benchmark_config": None, "benchmark_split": "train"}
    assert to_eval_results(results, IFEVAL) == []


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_cli_help_exits_0():
    completed = subprocess.run(
        [sys.executable, "-m", "instrl_trl.cli", "evaluate", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert "--lm_eval_tasks" in completed.stdout
    assert completed.stdout.startswith("usage: instrl-trl evaluate")


def test_each_row_is_checked_once_and_a_finished_model_is_resumed(tiny_causal_lm, tmp_path, monkeypatch):
    checked = []

    def counting_check(row, response):
        checked.append(row["key"])
        return IFEVAL.check(row, response)

    monkeypatch.setitem(BENCHMARKS, "ifeval", dataclasses.replace(IFEVAL, check=counting_check))
    config = make_config([tiny_causal_lm], tmp_path / "eval", max_samples=3, update_model_card=False, resume=True)
    first = run_evaluate(config)[tiny_causal_lm]
    keys = load_benchmark(IFEVAL, IFEVAL.sample_path, max_samples=3)["key"]
    assert checked == keys  # scores and predictions come from one check per row

    def no_generation(*args, **kwargs):
        raise AssertionError("a finished model was evaluated again")

    monkeypatch.setattr("instrl_trl.stages.evaluate.generate_responses", no_generation)
    assert run_evaluate(config)[tiny_causal_lm] == json.loads(json.dumps(first))
    assert checked == keys
    # Another recipe into the same folder is refused, naming the field, as by every stage (issue 22) ...
    monkeypatch.undo()
    changed = make_config([tiny_causal_lm], tmp_path / "eval", max_samples=2, update_model_card=False, resume=True)
    with pytest.raises(RunFingerprintError, match=r"`max_samples`: 3 before, 2 now"):
        run_evaluate(changed)
    # ... and evaluated afresh with `overwrite_output_dir`
    changed.overwrite_output_dir = True
    again = run_evaluate(changed)
    assert again[tiny_causal_lm]["benchmarks"]["ifeval_sample"]["num_samples"] == 2


def test_a_benchmark_whose_rows_would_all_be_skipped_fails_before_any_model(tmp_path):
    benchmark = write_benchmark(tmp_path / "bench.jsonl", [INVALID_ROWS[1]])
    config = make_config([str(tmp_path / "no-such-model")], tmp_path / "eval", benchmark=benchmark)
    with pytest.raises(ValueError, match="Every one of the 1 rows of the benchmark 'bench' would be skipped"):
        run_evaluate(config)


def test_an_empty_benchmark_file_is_a_clear_error(tmp_path):
    (tmp_path / "bench.jsonl").write_text("")
    config = make_config(["unused"], tmp_path / "eval", benchmark=str(tmp_path / "bench.jsonl"))
    with pytest.raises(ValueError, match="bench.jsonl' is an empty file"):
        run_evaluate(config)


def test_a_missing_second_model_fails_before_the_first_is_evaluated(tiny_causal_lm, tmp_path):
    missing = str(tmp_path / "no-such-model")
    config = make_config([tiny_causal_lm, missing], tmp_path / "eval", update_model_card=False)
    with pytest.raises(ValueError, match=r"`models\[1\]` \(.*no-such-model'\) cannot be loaded"):
        run_evaluate(config)
    assert not (tmp_path / "eval").exists()


def test_results_with_nan_scores_are_valid_json_with_null(tmp_path):
    def refuse(constant):
        raise ValueError(f"bare {constant} in eval_results.json")

    path = write_results(str(tmp_path), {"model": "m", "benchmarks": {"b": {"prompt_level_strict_acc": math.nan}}})
    with open(path) as file:
        results = json.load(file, parse_constant=refuse)
    assert results["benchmarks"]["b"]["prompt_level_strict_acc"] is None


def test_a_model_whose_every_answer_failed_writes_no_scores(tmp_path):
    with OpenAIServer(faults=["500"] * 100) as server:
        generator = {"backend": "endpoint", "base_url": server.base_url, "max_retries": 0}
        config = make_config(["served-model"], tmp_path / "eval", generator=generator, max_samples=3)
        with pytest.raises(RuntimeError, match=r"Every one of the 3 queries to served-model .* status 500"):
            run_evaluate(config)
    assert not (tmp_path / "eval" / "served-model" / RESULTS_FILE).exists()
