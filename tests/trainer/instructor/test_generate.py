"""The trained instructor as the generation stage's policy: `generate --policy <instructor folder>`."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from datasets import load_dataset

from instrl_trl.generation.shards import list_shards
from instrl_trl.operations import build_operation_library


REPO_ROOT = Path(__file__).resolve().parents[3]


def _run(command: list[str], instructor_cache: str) -> subprocess.CompletedProcess:
    # The session's built instructor is reused; one thread each, as on the shared machine
    env = {**os.environ, "INSTRL_TRL_MODELS_CACHE": instructor_cache, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, check=False, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=480)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.mark.slow
@pytest.mark.timeout(1000)
def test_generate_with_a_trained_instructor(tiny_instructor, instructor_cache, tmp_path):
    instructor = tmp_path / "instructor"
    _run([sys.executable, "-m", "instrl_trl.cli", "train-instructor", "--config", "recipes/quickstart/instructor.yaml",
          "--max_steps", "2", "--output_dir", str(instructor)], instructor_cache)  # fmt: skip
    library = build_operation_library()
    assert json.loads((instructor / "instructor.json").read_text())["operations"] == library.names

    dataset = tmp_path / "dataset"
    # Sampled: the tiny instructor, warm-started on random calls, may stop at once when decoding greedily
    _run([sys.executable, "-m", "instrl_trl.cli", "generate", "--config", "recipes/quickstart/generate.yaml",
          "--policy", str(instructor), "--max_seeds", "8", "--greedy", "false", "--output_dir", str(dataset)],
         instructor_cache)  # fmt: skip
    rows = load_dataset("parquet", data_files=[str(p) for p in list_shards(dataset)], split="train").to_list()
    assert rows
    assert {name for row in rows for name in row["operations"]} <= set(library.names)
    assert all(row["depth"] == len(row["operations"]) >= 1 for row in rows)
    assert all(1 <= row["evolutions"] <= row["depth"] for row in rows)
    assert {row["seed_index"] for row in rows} <= set(range(8))

    # The instructor's tool calls went through the generation's rewriter and reviewer, and were counted there: at
    # least one rewrite per operation leading to each seed's deepest row, and one review per row
    queries = json.loads((dataset / "queries-rank00000.json").read_text())["per_role"]
    deepest = {}
    for row in rows:
        deepest[row["seed_index"]] = max(deepest.get(row["seed_index"], 0), row["depth"])
    assert queries["rewriter"]["queries"] >= sum(deepest.values())
    assert queries["reviewer"]["queries"] >= len(rows)


def test_a_malformed_tool_call_does_not_break_the_next_turn(tiny_instructor, monkeypatch):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from instrl_trl.backends.rules import RulesReviewer, RulesRewriter
    from instrl_trl.policies import instructor as episodes
    from instrl_trl.policies.instructor import choose_operations_with_instructor
    from instrl_trl.rewards import information_gain_reward
    from instrl_trl.tool_environment import InstructionEnvironmentFactory

    # Injected fault: the first answer parses to a call without `arguments`, which the chat template renders next turn
    answers = iter([{"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "deepening"}}]}])
    parse = episodes._parse
    monkeypatch.setattr(episodes, "_parse", lambda tokenizer, text: next(answers, None) or parse(tokenizer, text))
    factory = InstructionEnvironmentFactory(
        build_operation_library(), RulesRewriter(), RulesReviewer(), [information_gain_reward]
    )
    model = AutoModelForCausalLM.from_pretrained(tiny_instructor)
    (episode,) = choose_operations_with_instructor(
        model, AutoTokenizer.from_pretrained(tiny_instructor), ["Name three rivers."], factory, max_tool_calls=2
    )
    assert episode.operations[0] == "deepening"
    assert episode.messages[1]["tool_calls"][0]["function"] == {"name": "deepening", "arguments": {}}
    assert len(episode.messages) > 3  # the second turn was generated
