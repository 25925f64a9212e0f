"""
`evaluate` says whether each benchmark is in- or out-of-distribution for the model's training data, and how the
answers were produced; two evaluations made differently say so side by side.
"""

import hashlib
import json
import logging
import shutil
from collections import Counter

import pytest
from huggingface_hub import ModelCard
from transformers import AutoTokenizer

from instrl_trl.cli.main import main as cli_main
from instrl_trl.constraints import TEST_CONSTRAINT_FAMILIES, family_of, iftrain, instruction_ids
from instrl_trl.constraints.ifbench import instruction_ids as ifbench_ids
from instrl_trl.constraints.split import OUT_OF_DISTRIBUTION, compare_constraint_ids
from instrl_trl.data.training_constraints import read_training_constraints
from instrl_trl.evaluation.evaluation_config import BenchmarkEvaluationConfig
from instrl_trl.evaluation.harness import HARNESS_PACKAGES, harness_settings
from instrl_trl.evaluation.results import RESULTS_FILE
from instrl_trl.generation import DatasetGenerationConfig, run_generate
from instrl_trl.metrics.benchmarks import BENCHMARKS, IFEVAL
from instrl_trl.sft import build_sft_card
from instrl_trl.stages.evaluate import run_evaluate


IFBENCH = BENCHMARKS["ifbench"]
BENCHMARK_ENTRIES = [f"ifbench:{IFBENCH.sample_path}", f"ifeval:{IFEVAL.sample_path}"]


@pytest.fixture(scope="module")
def generated_dataset(quickstart_seeds, tmp_path_factory) -> str:
    """A small `generate` run whose every episode adds constraints (the default `[ifeval]` family); its folder."""
    output_dir = tmp_path_factory.mktemp("generated") / "dataset"
    config = DatasetGenerationConfig(
        policy="sequence:add_constraints,add_constraints",
        output_dir=str(output_dir),
        keep_unverified=True,
        dedup_threshold=1.0,
        max_seeds=24,
    )
    run_generate(config)
    return str(output_dir)


def evaluate(models, output_dir, **kwargs) -> dict:
    kwargs = {"benchmark": BENCHMARK_ENTRIES, "max_samples": 6, "max_new_tokens": 8, "batch_size": 6, **kwargs}
    return run_evaluate(BenchmarkEvaluationConfig(models=models, output_dir=str(output_dir), **kwargs))


def test_the_generated_dataset_card_lists_its_constraint_ids(generated_dataset):
    card = ModelCard.load(f"{generated_dataset}/README.md")
    recorded = read_training_constraints(f"{generated_dataset}/data")
    ids = recorded["constraint_ids"]
    assert ids and {family_of(i) for i in ids} == {"ifeval"}
    assert card.data.to_dict()["instrl_trl"] == {"constraint_ids": ids}
    for instruction_id, count in ids.items():
        assert f"| `{instruction_id}` | ifeval | {count} |" in card.content


def test_ifbench_after_ifeval_training_data_is_out_of_distribution(generated_dataset, tiny_causal_lm, tmp_path):
    # the SFT card carries the dataset's ids on; `evaluate` reads them from the model's card
    model = shutil.copytree(tiny_causal_lm, tmp_path / "tiny-sft")
    training = read_training_constraints(f"{generated_dataset}/data")
    build_sft_card(model_name="tiny-sft", hyperparameters={}, training_constraints=training).save(model / "README.md")

    results = evaluate([str(model)], tmp_path / "eval")[str(model)]

    written = json.loads((tmp_path / "eval" / "tiny-sft" / RESULTS_FILE).read_text())
    assert written["training_constraints"] == {
        "source": "the model's card",
        "constraint_ids": training["constraint_ids"],
    }
    ifbench, ifeval = written["benchmarks"]["ifbench_sample"], written["benchmarks"]["ifeval_sample"]
    assert ifbench["distribution"] == {
        "relation": "out-of-distribution",
        "shared_ids": [],
        "summary": OUT_OF_DISTRIBUTION,
    }
    assert ifeval["distribution"]["relation"] == "in-distribution"
    assert "the TeaMs-RL paper's set-up" in ifeval["distribution"]["summary"]
    assert results["benchmarks"]["ifbench_sample"]["distribution"] == ifbench["distribution"]
    card = ModelCard.load(model / "README.md").text
    assert f"- ifbench_sample: {OUT_OF_DISTRIBUTION}" in card
    assert "- ifeval_sample: in-distribution:" in card and "[!WARNING]" not in card


def test_a_dataset_carrying_an_ifbench_id_is_reported_as_overlapping(tiny_causal_lm, tmp_path, capsys, caplog):
    # built here: a dataset whose rows carry one of the IFBench sample's test constraints, next to IFEval ones
    rows = [
        {"messages": [], "constraints": [{"instruction_id": "count:numbers", "kwargs": "{}"}]},
        {"messages": [], "constraints": [{"instruction_id": "punctuation:no_comma", "kwargs": "{}"}]},
    ]
    dataset = tmp_path / "contaminated.jsonl"
    dataset.write_text("".join(json.dumps(row) + "\n" for row in rows))
    model = shutil.copytree(tiny_causal_lm, tmp_path / "tiny-sft")

    with caplog.at_level(logging.WARNING, logger="instrl_trl"):
        results = evaluate([str(model)], tmp_path / "eval", train_dataset=str(dataset))[str(model)]

    distribution = results["benchmarks"]["ifbench_sample"]["distribution"]
    assert distribution["relation"] == "overlapping" and distribution["shared_ids"] == ["count:numbers"]
    assert "test constraint ids (count:numbers)" in distribution["summary"]
    assert results["training_constraints"]["source"] == "train_dataset"
    assert results["training_constraints"]["train_dataset"] == str(dataset)
    assert "BENCHMARK CONTAMINATION: ifbench_sample" in caplog.text
    out = capsys.readouterr().out
    assert "WARNING: BENCHMARK CONTAMINATION: ifbench_sample is not out-of-distribution for tiny-sft" in out
    card = ModelCard.load(model / "README.md").text
    assert "> [!WARNING]\n> BENCHMARK CONTAMINATION: ifbench_sample" in card
    assert str(tmp_path) not in card


def test_ifbench_after_ifeval_and_iftrain_training_data_is_out_of_distribution(tiny_causal_lm, tmp_path, caplog):
    # IF-RLVR's training set-up: every IFTrain id and every IFEval id in the training data
    training_ids = [*iftrain.CHECKERS, *instruction_ids()]
    rows = [{"messages": [], "constraints": [{"instruction_id": i, "kwargs": "{}"}]} for i in training_ids]
    dataset = tmp_path / "iftrain.jsonl"
    dataset.write_text("".join(json.dumps(row) + "\n" for row in rows))
    model = shutil.copytree(tiny_causal_lm, tmp_path / "tiny-sft")

    with caplog.at_level(logging.WARNING, logger="instrl_trl"):
        results = evaluate([str(model)], tmp_path / "eval", train_dataset=str(dataset))[str(model)]

    recorded = results["training_constraints"]["constraint_ids"]
    assert Counter(family_of(i) for i in recorded) == {"ifeval": len(instruction_ids()), "iftrain": 29}
    ifbench, ifeval = (results["benchmarks"][name]["distribution"] for name in ("ifbench_sample", "ifeval_sample"))
    assert ifbench == {"relation": "out-of-distribution", "shared_ids": [], "summary": OUT_OF_DISTRIBUTION}
    assert ifeval["relation"] == "in-distribution" and "the TeaMs-RL paper's set-up" in ifeval["summary"]
    assert "CONTAMINATION" not in caplog.text
    # on IFBench's full registry too: IFTrain's ids are training ids, none of them a test id
    assert compare_constraint_ids(ifbench_ids(), iftrain.CHECKERS)["summary"] == OUT_OF_DISTRIBUTION
    assert not {family_of(i) for i in iftrain.CHECKERS} & set(TEST_CONSTRAINT_FAMILIES)


def test_results_and_card_record_the_harness(tiny_causal_lm, tmp_path):
    model = shutil.copytree(tiny_causal_lm, tmp_path / "tiny-sft")
    evaluate([str(model)], tmp_path / "eval", benchmark=[BENCHMARK_ENTRIES[0]])

    results = json.loads((tmp_path / "eval" / "tiny-sft" / RESULTS_FILE).read_text())
    template = AutoTokenizer.from_pretrained(tiny_causal_lm).chat_template
    assert results["chat_template"] == "the model's tokenizer"
    assert results["chat_template_sha256"] == hashlib.sha256(template.encode()).hexdigest()
    assert results["system_prompt"] is None and results["reasoning_stripped"] is False
    assert (results["decoding"], results["max_new_tokens"], results["stop_strings"]) == ("greedy", 8, [])
    assert set(results["versions"]) == set(HARNESS_PACKAGES) and results["versions"]["trl"] != "not installed"
    # no card of an instrl-trl model: the comparison is unknown, and says how to make it
    assert results["benchmarks"]["ifbench_sample"]["distribution"]["relation"] == "unknown"
    card = ModelCard.load(model / "README.md").text
    assert f"- Chat template: the model's tokenizer (sha256 `{results['chat_template_sha256']}`)" in card
    assert "- max_new_tokens: 8" in card and "- Decoding: greedy, seed 42" in card
    assert "- Stop strings: none (end of sequence only)" in card and "- Reasoning stripped before scoring: no" in card
    assert f"trl {results['versions']['trl']}" in card
    assert "pass `train_dataset` to compare" in card


def test_harness_settings_of_sampling_stop_strings_and_an_endpoint(tmp_path):
    def settings(**kwargs):
        return harness_settings("org/model", BenchmarkEvaluationConfig(models=["org/model"], output_dir=str(tmp_path),
                                                                       **kwargs))  # fmt: skip

    endpoint = {"backend": "endpoint", "base_url": "http://127.0.0.1:9/v1"}
    served = settings(generator=endpoint, generation_kwargs={"stop": "###", "temperature": 0.7})
    assert served["chat_template"] == "applied by the endpoint server (not known here)"
    assert served["chat_template_sha256"] is None
    assert (served["stop_strings"], served["decoding"]) == (["###"], "sampling (temperature=0.7)")
    assert settings(generator=endpoint)["decoding"] == "greedy"  # the endpoint backend's temperature 0


def test_two_evaluations_with_different_max_new_tokens_print_the_difference(tiny_causal_lm, tmp_path, capsys):
    model = str(shutil.copytree(tiny_causal_lm, tmp_path / "tiny-sft"))
    benchmark = ["--benchmark", BENCHMARK_ENTRIES[0], "--max_samples", "4", "--batch_size", "4"]
    assert cli_main(["evaluate", "--models", model, "--output_dir", str(tmp_path / "short"), *benchmark,
                     "--max_new_tokens", "8"]) == 0  # fmt: skip
    capsys.readouterr()
    # side by side: the model evaluated again with another length limit, and the earlier run's results
    earlier = str(tmp_path / "short" / "tiny-sft" / RESULTS_FILE)
    assert cli_main(["evaluate", "--models", model, earlier, "--output_dir", str(tmp_path / "long"), *benchmark,
                     "--max_new_tokens", "16"]) == 0  # fmt: skip

    out = capsys.readouterr().out
    assert "| short/tiny-sft (earlier results) " in out  # the earlier results in the table, not evaluated again
    assert "These evaluations were not made alike; compare their scores with care:" in out
    assert "  max_new_tokens: tiny-sft=16, short/tiny-sft (earlier results)=8" in out
    assert "chat_template" not in out.split("not made alike")[1]  # only what differs is listed
    written = sorted(path.name for path in (tmp_path / "long").iterdir() if not path.name.startswith("_"))
    assert written == ["comparison.png", "tiny-sft"]  # beside the run folder's own `_run*` files


def test_alike_evaluations_print_no_difference(tiny_causal_lm, tmp_path, capsys):
    a = str(shutil.copytree(tiny_causal_lm, tmp_path / "a"))
    b = str(shutil.copytree(tiny_causal_lm, tmp_path / "b"))
    evaluate([a, b], tmp_path / "eval", benchmark=[BENCHMARK_ENTRIES[0]], max_samples=2)
    assert "not made alike" not in capsys.readouterr().out


def test_compare_constraint_ids_relations():
    assert compare_constraint_ids(["count:numbers"], None)["relation"] == "unknown"
    assert compare_constraint_ids(["count:numbers"], [])["summary"] == OUT_OF_DISTRIBUTION
    mixed = compare_constraint_ids(
        ["count:numbers", "punctuation:no_comma"], ["punctuation:no_comma", "count:numbers"]
    )
    assert mixed["relation"] == "overlapping" and mixed["shared_ids"] == ["count:numbers", "punctuation:no_comma"]
    ifeval = compare_constraint_ids(["punctuation:no_comma", "detectable_format:title"], ["punctuation:no_comma"])
    assert ifeval["summary"] == (
        "in-distribution: 1 of the benchmark's 2 constraint ids are training ids (IFEval constraints in training and "
        "in evaluation: the TeaMs-RL paper's set-up)"
    )
