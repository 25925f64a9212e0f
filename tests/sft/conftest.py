import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.backends.tiny_causal_lm import build_tiny_causal_lm, training_corpus


POLICY_ID = "someone/quickstart-operation-policy"
CARD_CONSTRAINTS_YAML = "instrl_trl:\n  constraint_ids:\n    punctuation:no_comma: 12\n    count:numbers: 2\n"
MESSAGES_TYPE = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))


def write_messages_parquet(folder, rows: list, name: str = "rank-00000-shard-00000.parquet", **columns) -> str:
    """Writes `rows` (each a `messages` list) as one parquet shard in `folder`, like `instrl-trl generate`."""
    folder.mkdir(parents=True, exist_ok=True)
    table = pa.table({"messages": pa.array(rows, type=MESSAGES_TYPE), **columns})
    pq.write_table(table, folder / name)
    return str(folder)


@pytest.fixture(scope="session")
def tiny_causal_lm(tmp_path_factory) -> str:
    """The transformers-backend tests' tiny Llama chat model (`tests/backends`), built once for this folder."""
    return build_tiny_causal_lm(str(tmp_path_factory.mktemp("tiny-causal-lm")))


@pytest.fixture(scope="session")
def messages_dataset(tmp_path_factory) -> str:
    """32 rows in the generation stage's format, two parquet shards under `data/` and a card; returns `data/`."""
    seeds = training_corpus()
    rows = [
        [
            {"role": "user", "content": seeds[i]},
            {"role": "assistant", "content": seeds[(i + 1) % len(seeds)]},
        ]
        for i in range(32)
    ]
    folder = tmp_path_factory.mktemp("messages-dataset") / "data"
    write_messages_parquet(folder, rows[:16], "rank-00000-shard-00000.parquet", seed_index=list(range(16)))
    write_messages_parquet(folder, rows[16:], "rank-00000-shard-00001.parquet", seed_index=list(range(16, 32)))
    # The dataset card `instrl-trl generate` writes beside `data/`: the SFT card reads the policy from it
    # and its constraint ids (the rows here have no `constraints` column: the SFT card reads them from the card)
    (folder.parent / "README.md").write_text(
        f"---\n{CARD_CONSTRAINTS_YAML}---\n\n- Operation policy: [{POLICY_ID}](https://huggingface.co/{POLICY_ID})\n"
    )
    return str(folder)
