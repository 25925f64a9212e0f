import re

import pytest
from huggingface_hub import DatasetCard

from instrl_trl.backends.accounting import read_queries_file, write_queries_file
from instrl_trl.constraints import Constraint
from instrl_trl.generation.card import PLOT_FILE, dataset_statistics, write_dataset_card
from instrl_trl.generation.evolve import Candidate
from instrl_trl.generation.responses import AnsweredCandidate
from instrl_trl.generation.rows import COLUMN_DESCRIPTIONS, ROW_SCHEMA, to_row
from instrl_trl.generation.shards import ShardWriter


NO_COMMA = Constraint("punctuation:no_comma", {})
ROLES = {"rewriter": "rules", "reviewer": "rules", "expert": "endpoint (Qwen/Qwen2.5-7B-Instruct)"}
# (seed_index, operations, evolutions, verified): 10 operations (deepening 5, add_constraints 3, concretizing 2) in 4
# distinct sequences, depths 1, 2, 2, 3, 2, evolutions 1, 2, 1, 2, 1, 3 rows with constraints of which 2 verified
ROWS = [
    (0, ("add_constraints",), 1, True),
    (1, ("add_constraints", "deepening"), 2, True),
    (2, ("concretizing", "deepening"), 1, False),
    (2, ("deepening", "deepening", "concretizing"), 2, None),
    (3, ("add_constraints", "deepening"), 1, None),
]


def write_rows(output_dir):
    """Writes `ROWS` as shards of two ranks, and each rank's query totals."""
    writers = [ShardWriter(str(output_dir), rank=rank, shard_size=1, schema=ROW_SCHEMA) for rank in (0, 1)]
    for position, (seed_index, operations, evolutions, verified) in enumerate(ROWS):
        candidate = Candidate(
            f"Instruction {position}.",
            f"Seed {seed_index}.",
            seed_index,
            operations,
            evolutions,
            0.5,
            (NO_COMMA,) if verified is not None else (),
        )
        row = to_row(AnsweredCandidate(candidate, f"Answer {position}.", verified, 1))
        writers[position % 2].add([row], [seed_index])
    for rank, queries in ((0, {"rewriter": 6, "reviewer": 5, "expert": 2}), (1, {"rewriter": 4, "expert": 3})):
        totals = {role: {"queries": count} for role, count in queries.items()}
        write_queries_file(str(output_dir / f"queries-rank{rank:05d}.json"), totals)


def jinja_left_over(text):
    outside_bibtex = re.sub(r"```bibtex\n.*?```", "", text, flags=re.DOTALL)
    return [marker for marker in ("{{", "}}", "{%", "%}", "{#") if marker in outside_bibtex]


@pytest.fixture
def output_dir(tmp_path):
    folder = tmp_path / "teams-rl-run"
    write_rows(folder)
    return folder


def test_dataset_statistics_reads_every_shard(output_dir):
    statistics = dataset_statistics(str(output_dir))
    assert statistics["num_rows"] == 5
    assert statistics["num_seeds_with_rows"] == 4
    assert statistics["num_operation_sequences"] == 4  # two rows share ("add_constraints", "deepening")
    assert statistics["operation_frequency"] == [
        {"name": "deepening", "share": 0.5},
        {"name": "add_constraints", "share": 0.3},
        {"name": "concretizing", "share": 0.2},
    ]
    assert statistics["depth_histogram"] == [
        {"depth": 1, "count": 1},
        {"depth": 2, "count": 3},
        {"depth": 3, "count": 1},
    ]
    # accepted evolutions, not operations tried: the same sequence made one row in 2 evolutions, another in 1
    assert statistics["evolutions_histogram"] == [
        {"evolutions": 1, "count": 3},
        {"evolutions": 2, "count": 2},
    ]
    assert statistics["verification"]["with_constraints"] == 3
    assert statistics["verification"]["rate"] == pytest.approx(2 / 3)
    assert statistics["constraint_ids"] == {"punctuation:no_comma": 3}
    assert statistics["constraint_families"] == {"ifeval": 3}


def test_write_dataset_card(output_dir, tmp_path):
    card = write_dataset_card(
        str(output_dir),
        num_seeds=5,
        roles=ROLES,
        seeds_source="the instrl-trl quickstart seeds",
        seeds_license="apache-2.0",
        policy="someone/teams-rl-policy",
        dataset_id="someone/teams-rl-instructions",
    )
    readme = output_dir / "README.md"
    assert readme.is_file()
    text = readme.read_text()
    assert text == str(card)

    loaded = DatasetCard.load(readme)
    assert loaded.data.license == "apache-2.0"
    assert loaded.data.pretty_name == "teams-rl-instructions"
    assert loaded.data.size_categories == ["n<1K"]
    assert loaded.data.task_categories == ["text-generation"]
    assert "instrl-trl" in loaded.data.tags

    # statistics
    assert "- Rows: 5\n" in text
    assert "- Seeds used: 5\n" in text
    assert "- Distinct operation sequences: 4\n" in text
    assert "Rows with verifiable constraints: 3, of which 66.7% have an answer that passes" in text
    assert "- LLM queries: rewriter 10, reviewer 5, expert 5\n" in text
    assert "| `deepening` | 50.0% |" in text
    assert "| `add_constraints` | 30.0% |" in text
    assert "| `concretizing` | 20.0% |" in text
    assert text.index("`deepening`") < text.index("`add_constraints`")  # most frequent first
    assert "| Evolutions | Rows |\n|---|---|\n| 1 | 3 |\n| 2 | 2 |\n" in text
    assert "| Depth | Rows |\n|---|---|\n| 1 | 1 |\n| 2 | 3 |\n| 3 | 1 |\n" in text
    # the constraint ids the rows carry, with their family, in the text and in the metadata `evaluate` reads
    assert "Rows per constraint family: `ifeval` 3." in text
    assert "| Constraint id | Family | Rows |\n|---|---|---|\n| `punctuation:no_comma` | ifeval | 3 |\n" in text
    assert loaded.data.to_dict()["instrl_trl"] == {"constraint_ids": {"punctuation:no_comma": 3}}
    # sources and usage
    assert "- Seed instructions: the instrl-trl quickstart seeds (licence: `apache-2.0`)" in text
    assert "[someone/teams-rl-policy](https://huggingface.co/someone/teams-rl-policy)" in text
    assert "- Expert: endpoint (Qwen/Qwen2.5-7B-Instruct)" in text
    assert 'load_dataset("someone/teams-rl-instructions", split="train")' in text
    # the columns, in the order of the shards
    lines = [f"- `{name}`: {description}" for name, description in COLUMN_DESCRIPTIONS.items()]
    assert list(COLUMN_DESCRIPTIONS) == ROW_SCHEMA.names
    assert "\n".join(lines) in text

    # the plot, linked relatively
    plot = output_dir / PLOT_FILE
    assert plot.is_file()
    assert plot.read_bytes().startswith(b"\x89PNG")
    assert f"![Operation mix]({PLOT_FILE})" in text

    assert jinja_left_over(text) == []
    assert "@article{gu2024teamsrl" in text
    assert str(tmp_path) not in text


def test_card_of_a_local_run_carries_no_local_path(output_dir, tmp_path):
    policy = tmp_path / "policy"
    policy.mkdir()
    write_dataset_card(
        str(output_dir),
        num_seeds=4,
        roles=ROLES,
        seeds_source=None,
        seeds_license=None,
        policy=str(policy),
    )
    text = (output_dir / "README.md").read_text()
    assert str(tmp_path) not in text
    assert "- Operation policy: a local policy" in text
    assert "- Seed instructions: not recorded\n" in text
    assert 'load_dataset("path/to/this/dataset", split="train")' in text
    assert DatasetCard.load(output_dir / "README.md").data.pretty_name == "teams-rl-run"
    assert jinja_left_over(text) == []


def test_card_without_rows_has_no_plot(tmp_path):
    output_dir = tmp_path / "empty"
    ShardWriter(str(output_dir)).flush()
    write_dataset_card(
        str(output_dir), num_seeds=3, roles=ROLES, seeds_source=None, seeds_license="other", policy=None
    )
    text = (output_dir / "README.md").read_text()
    assert "- Rows: 0\n" in text
    assert "- Distinct operation sequences: 0\n" in text
    assert "Rows with verifiable constraints" not in text
    assert "No row carries a verifiable constraint." in text
    assert "LLM queries" not in text
    assert "![Operation mix]" not in text
    assert not (output_dir / PLOT_FILE).exists()
    assert DatasetCard.load(output_dir / "README.md").data.license == "other"
    assert jinja_left_over(text) == []


def test_a_resumed_run_adds_its_queries_to_the_rank_total(tmp_path):
    path = str(tmp_path / "queries-rank00000.json")
    write_queries_file(path, {"rewriter": {"queries": 4, "cache_hits": 1}}, add_to_existing=True)
    content = write_queries_file(path, {"rewriter": {"queries": 3}, "expert": {"queries": 2}}, add_to_existing=True)
    assert content["per_role"]["rewriter"] == {
        "queries": 7, "cache_hits": 1, "failures": 0, "prompt_tokens": 0, "completion_tokens": 0, "seconds": 0.0,
        "paid_queries": 6,
    }  # fmt: skip
    assert (content["total"], content["paid_queries"]) == (9, 8)
    assert read_queries_file(path)["expert"].queries == 2
