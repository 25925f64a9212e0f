"""The `evaluate` stage over several benchmarks, each looked up by name; a new benchmark is an adapter only."""

import dataclasses
import doctest
import json
import shutil
from pathlib import Path

import pytest
from huggingface_hub import ModelCard

from instrl_trl.cli.main import main as cli_main
from instrl_trl.constraints import InvalidReferenceError, RowVerdict
from instrl_trl.evaluation import benchmark_rows
from instrl_trl.evaluation.benchmark_rows import BenchmarkSpec, check_benchmark_rows, load_benchmark, parse_benchmark
from instrl_trl.evaluation.results import PREDICTIONS_FILE, RESULTS_FILE
from instrl_trl.metrics import BENCHMARKS, IFBENCH, IFEVAL, load_instruction_following
from instrl_trl.metrics.benchmarks import BenchmarkAdapter


def read_jsonl(path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]


def evaluate_cli(model: str, output_dir, *benchmarks: str, max_samples: int = 4) -> int:
    args = ["evaluate", "--models", model, "--benchmark", *benchmarks, "--output_dir", str(output_dir)]
    args += ["--max_samples", str(max_samples), "--max_new_tokens", "8", "--batch_size", "4"]
    return cli_main(args)


@pytest.fixture
def bare_model(tiny_causal_lm, tmp_path) -> str:
    shutil.copytree(tiny_causal_lm, tmp_path / "tiny")
    return str(tmp_path / "tiny")


def ifbench_rows_with_a_skipped_one(path) -> str:
    """Three IFBench sample rows and its `words:start_verb` row (no tagger offline: skipped), as IFBench ships them."""
    sample = read_jsonl(IFBENCH.sample_path)
    start_verb = next(row for row in sample if "words:start_verb" in row["instruction_id_list"])
    rows = [row for row in sample if row is not start_verb][:3] + [start_verb]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(path)


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("ifeval", ("google/IFEval", "ifeval", "google/IFEval")),
        ("ifbench", ("allenai/IFBench_test", "ifbench", "allenai/IFBench_test")),
        ("allenai/IFBench_test", ("allenai/IFBench_test", "ifbench", "allenai/IFBench_test")),
        ("ifbench:sample", ("ifbench_sample", "ifbench", IFBENCH.sample_path)),
        ("ifeval:org/copy", ("org/copy", "ifeval", "org/copy")),
        ("org/some-ifeval-set", ("org/some-ifeval-set", "ifeval", "org/some-ifeval-set")),
    ],
)
def test_parse_benchmark(entry, expected):
    assert parse_benchmark(entry) == BenchmarkSpec(*expected)


def test_parse_benchmark_doctest():
    finder, runner = doctest.DocTestFinder(), doctest.DocTestRunner()
    for test in finder.find(parse_benchmark, globs=vars(benchmark_rows)):
        runner.run(test)
    assert runner.summarize(verbose=False).failed == 0


def test_packaged_ifbench_sample_is_a_valid_ifbench_benchmark():
    benchmark = load_benchmark(IFBENCH, IFBENCH.sample_path)
    assert benchmark.num_rows == 40 and len(set(benchmark["key"])) == 40
    assert isinstance(benchmark["key"][0], str)
    # every row builds; the one whose checker needs data no package ships is listed with the reason, even on "raise"
    skipped = check_benchmark_rows(IFBENCH, benchmark, on_invalid="raise")
    assert [row["key"] for row in skipped] == [
        row["key"] for row in benchmark if "words:start_verb" in row["instruction_id_list"]
    ]
    assert "averaged_perceptron_tagger" in skipped[0]["reason"]


def test_both_benchmarks_go_into_eval_results_and_the_card(bare_model, tmp_path):
    ifbench_file = ifbench_rows_with_a_skipped_one(tmp_path / "ifbench_rows.jsonl")
    assert evaluate_cli(bare_model, tmp_path / "eval", "ifeval:sample", f"ifbench:{ifbench_file}") == 0

    folder = tmp_path / "eval" / "tiny"
    written = json.loads((folder / RESULTS_FILE).read_text())
    assert list(written["benchmarks"]) == ["ifeval_sample", "ifbench_rows"]
    ifeval, ifbench = written["benchmarks"]["ifeval_sample"], written["benchmarks"]["ifbench_rows"]
    assert (ifeval["benchmark_type"], ifbench["benchmark_type"]) == ("ifeval", "ifbench")
    assert (ifeval["num_scored"], ifeval["num_skipped"]) == (4, 0)
    assert (ifbench["num_scored"], ifbench["num_skipped"]) == (3, 1)
    assert "words:start_verb" in ifbench["skipped"][0]["reason"]

    # each benchmark's scores are the metric's (its configuration) on the written responses
    predictions = read_jsonl(folder / PREDICTIONS_FILE)
    assert [row["benchmark"] for row in predictions] == ["ifeval_sample"] * 4 + ["ifbench_rows"] * 4
    for name, config in (("ifeval_sample", "ifeval"), ("ifbench_rows", "ifbench")):
        rows = [row for row in predictions if row["benchmark"] == name]
        references = [json.dumps({k: row[k] for k in ("key", "instruction_id_list", "kwargs")}) for row in rows]
        expected = load_instruction_following(config).compute(
            predictions=[row["response"] for row in rows], references=references
        )
        assert {k: written["benchmarks"][name][k] for k in IFEVAL.scores} == {k: expected[k] for k in IFEVAL.scores}
        assert written["benchmarks"][name]["skipped"] == expected["skipped"]

    card = ModelCard.load(f"{bare_model}/README.md")
    recorded = {(r.dataset_type, r.metric_type): r for r in card.data.eval_results}
    assert set(recorded) == {(name, score) for name in ("ifeval_sample", "ifbench_rows") for score in IFEVAL.scores}
    assert recorded["ifbench_rows", "prompt_level_loose_acc"].metric_value == round(
        ifbench["prompt_level_loose_acc"], 4
    )
    # a score over a subset says so, in the model-index and in the card's table
    assert recorded["ifbench_rows", "prompt_level_loose_acc"].metric_args == {"num_scored": 3, "num_samples": 4}
    assert recorded["ifeval_sample", "prompt_level_loose_acc"].metric_args is None
    assert "ifbench_rows (train[:4]): scores over 3 of 4 prompts (1 skipped;" in card.text
    assert "(on 3 of 4 prompts)" in card.text
    assert card.text.count("(on 3 of 4 prompts)") == len(IFBENCH.scores)


def test_ifbench_alone_by_name(bare_model, tmp_path, capsys):
    assert evaluate_cli(bare_model, tmp_path / "eval", "ifbench:sample", max_samples=3) == 0
    written = json.loads((tmp_path / "eval" / "tiny" / RESULTS_FILE).read_text())
    assert list(written["benchmarks"]) == ["ifbench_sample"]
    assert written["benchmarks"]["ifbench_sample"]["num_samples"] == 3
    assert "ifbench_sample (ifbench)" in capsys.readouterr().out


SHOUTING_RULES = {"shout:caps": lambda text: text == text.upper(), "shout:bang": lambda text: text.endswith("!")}


def _check_shouting(row, response) -> RowVerdict:
    """A third benchmark: `shout:caps` asks for capitals only, `shout:bang` for a final '!'; no loose variant."""
    unknown = [iid for iid in row["instruction_id_list"] if iid not in SHOUTING_RULES]
    if unknown:
        raise InvalidReferenceError(f"unknown shouting rules {unknown}")
    strict = [SHOUTING_RULES[iid](response) for iid in row["instruction_id_list"]]
    return RowVerdict(strict=strict, loose=strict)


SHOUTING = BenchmarkAdapter(
    name="shouting",
    columns=("key", "prompt", "instruction_id_list", "kwargs"),
    scores={"prompt_level_strict_acc": "Shouted prompts", "inst_level_strict_acc": "Shouted rules"},
    sample_file="does-not-exist.jsonl",
    validate=lambda row: _check_shouting(row, ""),
    check=_check_shouting,
    hub_dataset="org/shouting",
    dataset_names={"org/shouting": "Shouting"},
)


def test_a_third_benchmark_is_an_adapter_only(bare_model, tmp_path, monkeypatch):
    monkeypatch.setitem(BENCHMARKS, SHOUTING.name, SHOUTING)
    rows = [
        {"key": i, "prompt": prompt, "instruction_id_list": ids, "kwargs": [{}] * len(ids)}
        for i, (prompt, ids) in enumerate(
            [("Say hi.", ["shout:caps"]), ("Greet.", ["shout:caps", "shout:bang"]), ("Yell.", ["shout:whisper"])]
        )
    ]
    bench = tmp_path / "shout.jsonl"
    bench.write_text("".join(json.dumps(row) + "\n" for row in rows))
    assert evaluate_cli(bare_model, tmp_path / "eval", f"shouting:{bench}", "ifeval:sample", max_samples=3) == 0

    written = json.loads((tmp_path / "eval" / "tiny" / RESULTS_FILE).read_text())["benchmarks"]
    assert set(written) == {"shout", "ifeval_sample"}
    shout = written["shout"]
    assert (shout["benchmark_type"], shout["num_scored"], shout["num_skipped"]) == ("shouting", 2, 1)
    predictions = [
        row for row in read_jsonl(tmp_path / "eval" / "tiny" / PREDICTIONS_FILE) if row["benchmark"] == "shout"
    ]
    first, second = (row["response"] for row in predictions[:2])
    followed = [first == first.upper(), second == second.upper() and second.endswith("!")]
    assert shout["prompt_level_strict_acc"] == sum(followed) / 2
    assert "unknown shouting rules ['shout:whisper']" in predictions[2]["skipped"]
    card = ModelCard.load(f"{bare_model}/README.md")
    # the adapter's score names, and only its scores, reach the card
    assert {(r.dataset_type, r.metric_name) for r in card.data.eval_results if r.dataset_type == "shout"} == {
        ("shout", "Shouted prompts"),
        ("shout", "Shouted rules"),
    }
    # ... and the metric scores it by name too
    references = [json.dumps(row) for row in rows[:2]]
    scores = load_instruction_following().compute(
        predictions=["HI", "HEY!"], references=references, benchmark="shouting"
    )
    assert (scores["prompt_level_strict_acc"], scores["inst_level_strict_acc"]) == (1.0, 1.0)
    scores = load_instruction_following().compute(
        predictions=["HI", "HEY"], references=references, benchmark="shouting"
    )
    assert (scores["prompt_level_strict_acc"], scores["inst_level_strict_acc"]) == (0.5, 2 / 3)


def test_the_stage_names_no_benchmark():
    # adding a benchmark must not touch the stage: its modules name no adapter
    parts = Path(benchmark_rows.__file__).parent
    modules = [parts / name for name in ("results.py", "card.py", "comparison.py", "responses.py")]
    for module in [parts.parent / "stages" / "evaluate.py", *modules]:
        text = module.read_text(encoding="utf-8")
        assert "IFEVAL" not in text and "IFBENCH" not in text, module


def test_replaced_adapter_is_used(monkeypatch):
    # the registry is read when an entry is parsed, so a re-registered adapter wins
    monkeypatch.setitem(BENCHMARKS, "ifbench", dataclasses.replace(IFBENCH, hub_dataset="org/ifbench-mirror"))
    assert parse_benchmark("ifbench").dataset == "org/ifbench-mirror"
