"""The dataset's row: its columns (name, type, meaning) written once, for the shards, the card and the docs."""

import json

import pyarrow as pa

from .responses import AnsweredCandidate


# name -> (parquet type, what the dataset card says about it)
ROW_COLUMNS: dict[str, tuple[pa.DataType, str]] = {
    "instruction": (pa.string(), "the evolved instruction"),
    "response": (pa.string(), "the expert's answer"),
    "messages": (
        pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())])),
        "the pair in chat format (`user`, `assistant`), for TRL's `SFTTrainer`",
    ),
    "seed": (pa.string(), "the seed instruction it was evolved from"),
    "seed_index": (pa.int64(), "the seed's row in the seed dataset"),
    "operations": (pa.list_(pa.string()), "the operations tried on the seed, in order (including rejected ones)"),
    "depth": (pa.int64(), "the number of operations tried on the seed to reach it, accepted or not"),
    "evolutions": (pa.int64(), "the number of accepted evolutions that made it (1 for the first accepted rewrite)"),
    "reward": (pa.float64(), "the weighted reward of the episode up to this instruction"),
    "constraints": (
        pa.list_(pa.struct([("instruction_id", pa.string()), ("kwargs", pa.string())])),
        "its verifiable constraints: IFEval (lm-eval) or IFTrain `instruction_id` and JSON `kwargs`",
    ),
    "verified": (pa.bool_(), "whether the response passes every constraint (null when there are none)"),
    "attempts": (pa.int64(), "how many answers the expert was asked for"),
    "review_probability": (
        pa.float64(),
        "the reviewer's P(information gain) for the step that made the instruction (null for the rules reviewer)",
    ),
}
ROW_SCHEMA = pa.schema([(name, data_type) for name, (data_type, _) in ROW_COLUMNS.items()])
COLUMN_DESCRIPTIONS = {name: description for name, (_, description) in ROW_COLUMNS.items()}


def to_row(answered: AnsweredCandidate) -> dict:
    """One dataset row, with the columns of [`ROW_COLUMNS`] in their order."""
    candidate = answered.candidate
    return {
        "instruction": candidate.instruction,
        "response": answered.response,
        "messages": [
            {"role": "user", "content": candidate.instruction},
            {"role": "assistant", "content": answered.response},
        ],
        "seed": candidate.seed,
        "seed_index": candidate.seed_index,
        "operations": list(candidate.operations),
        "depth": candidate.depth,
        "evolutions": candidate.evolutions,
        "reward": candidate.reward,
        "constraints": [
            {"instruction_id": c.instruction_id, "kwargs": json.dumps(c.kwargs, sort_keys=True)}
            for c in candidate.constraints
        ],
        "verified": answered.verified,
        "attempts": answered.attempts,
        "review_probability": candidate.review_probability,
    }
