"""Instruction following: IFEval's verifiable-instruction scores (lm-eval's scoring), by instruction and by count."""

import json
from collections import defaultdict

import datasets
import evaluate

from instrl_trl.evaluation.constraints import InvalidReferenceError, check_row


_DESCRIPTION = """
Verifiable instruction following, as IFEval (Zhou et al., 2023) scores it: each reference is an IFEval-schema row
(`key`, `prompt`, `instruction_id_list`, `kwargs`) and each instruction is checked by lm-eval's IFEval registry
(`lm_eval.tasks.ifeval.instructions_registry`), strictly (the response as it is) and loosely (the response, or the
response without its first line, its last line, both, or its asterisks). The four scores are lm-eval's, under its
names, and equal what lm-eval's `process_results` + `agg_inst_level_acc` give on the same responses:
`prompt_level_strict_acc`, `inst_level_strict_acc`, `prompt_level_loose_acc`, `inst_level_loose_acc`. Two breakdowns
follow: by instruction id, and by number of constraints per prompt (how accuracy falls as constraints stack, as in
FollowBench).

The scores are deterministic, where lm-eval's are not in two places:
- `keywords:letter_frequency` with a letter outside a-z (IFEval asks for '#' and '!'): lm-eval replaces it by a
  random ASCII letter; this metric counts the character as given. Those rows may differ from lm-eval's random draw.
- `language:response_language`: langdetect is seeded (`DetectorFactory.seed = 0`); lm-eval leaves it unseeded.
A reference that cannot be scored reproducibly (unknown instruction id, kwargs that lm-eval rejects, or a missing or
out-of-range argument that lm-eval would draw at random) is never scored: it is skipped and listed with its `key`
(`on_invalid="skip"`, the default), or it raises (`on_invalid="raise"`).
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `str`): the responses, one per reference.
    references (`list` of `str`): IFEval-schema rows as JSON strings, each with `key`, `prompt`,
        `instruction_id_list` and `kwargs` (a list with one dict of `build_description` arguments per instruction;
        `None` values are ignored, so the rows of `google/IFEval` can be given as they are).
    on_invalid (`str`, defaults to `"skip"`): what to do with a reference that cannot be scored: `"skip"` leaves it
        out of every score and lists it under `skipped`; `"raise"` raises a `ValueError` naming its `key`.
Returns:
    prompt_level_strict_acc (`float`): fraction of prompts whose every instruction is followed (strict).
    inst_level_strict_acc (`float`): fraction of instructions followed, over all prompts (strict).
    prompt_level_loose_acc (`float`): as `prompt_level_strict_acc`, loose.
    inst_level_loose_acc (`float`): as `inst_level_strict_acc`, loose.
    num_scored (`int`): number of prompts scored.
    by_instruction (`dict`): instruction id -> `{"inst_level_strict_acc", "inst_level_loose_acc", "count"}`.
    by_num_constraints (`dict`): number of instructions k -> `{"prompt_level_strict_acc", "prompt_level_loose_acc",
        "count"}` over the prompts with k instructions.
    num_skipped (`int`): number of references skipped.
    skipped (`list` of `dict`): `{"index", "key", "reason"}` for each reference skipped.
    The four scores are `nan` when no reference could be scored.
Examples:
    >>> import json
    >>> from instrl_trl.metrics import load_instruction_following
    >>> metric = load_instruction_following()
    >>> row = {"key": 1, "prompt": "Describe a cat. Do not use any commas.", "instruction_id_list":
    ...        ["punctuation:no_comma"], "kwargs": [{}]}
    >>> results = metric.compute(predictions=["A cat purrs.", "A cat, a dog."], references=[json.dumps(row)] * 2)
    >>> results["prompt_level_strict_acc"], results["by_num_constraints"][1]["count"]
    (0.5, 2)
"""

_CITATION = """
@article{zhou2023instruction,
    title={Instruction-Following Evaluation for Large Language Models},
    author={Zhou, Jeffrey and Lu, Tianjian and Mishra, Swaroop and Brahma, Siddhartha and Basu, Sujoy and Luan, Yi
        and Zhou, Denny and Hou, Le},
    journal={arXiv preprint arXiv:2311.07911},
    year={2023}
}
@article{gu2024teamsrl,
    title={TeaMs-RL: Teaching LLMs to Generate Better Instruction Datasets via Reinforcement Learning},
    author={Gu, Shangding and Knoll, Alois and Jin, Ming},
    journal={arXiv preprint arXiv:2403.08694},
    year={2024}
}
"""

_ON_INVALID = ("skip", "raise")


def _parse_reference(reference: str) -> dict:
    try:
        row = json.loads(reference)
    except (TypeError, json.JSONDecodeError) as error:
        raise InvalidReferenceError(f"the reference is not a JSON string: {error}") from error
    if not isinstance(row, dict):
        raise InvalidReferenceError(f"the reference is not a JSON object: {reference[:80]!r}")
    missing = [column for column in ("instruction_id_list", "kwargs") if column not in row]
    if missing:
        raise InvalidReferenceError(f"the reference has no {missing} (IFEval columns: key, prompt, ...)")
    return row


def _mean(values: list[bool]) -> float:
    # lm-eval's `mean` and `agg_inst_level_acc`: an exact integer sum over a count, so the floats are equal.
    return sum(values) / len(values) if values else float("nan")


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class InstructionFollowing(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("string", id="sequence"), "references": datasets.Value("string")}
            ),
            reference_urls=[
                "https://huggingface.co/papers/2311.07911",
                "https://github.com/EleutherAI/lm-evaluation-harness/tree/main/lm_eval/tasks/ifeval",
                "https://huggingface.co/papers/2403.08694",
            ],
        )

    def _compute(self, predictions, references, on_invalid="skip"):
        if on_invalid not in _ON_INVALID:
            raise ValueError(f"`on_invalid` must be one of {_ON_INVALID}, got {on_invalid!r}.")
        prompt_strict, prompt_loose, inst_strict, inst_loose = [], [], [], []
        by_instruction = defaultdict(lambda: ([], []))
        by_num_constraints = defaultdict(lambda: ([], []))
        skipped = []
        for index, (response, reference) in enumerate(zip(predictions, references, strict=True)):
            key = None
            try:
                row = _parse_reference(reference)
                key = row.get("key")
                verdict = check_row(response, row["instruction_id_list"], row["kwargs"], prompt=row.get("prompt", ""))
            except InvalidReferenceError as error:
                if on_invalid == "raise":
                    raise ValueError(
                        f"Reference {index} (key {key!r}) cannot be scored: {error}. Fix the row, or pass "
                        '`on_invalid="skip"` to leave it out and list it under `skipped`.'
                    ) from error
                skipped.append({"index": index, "key": key, "reason": str(error)})
                continue
            prompt_strict.append(verdict.prompt_level_strict)
            prompt_loose.append(verdict.prompt_level_loose)
            inst_strict.extend(verdict.strict)
            inst_loose.extend(verdict.loose)
            for instruction_id, strict, loose in zip(
                row["instruction_id_list"], verdict.strict, verdict.loose, strict=True
            ):
                by_instruction[instruction_id][0].append(strict)
                by_instruction[instruction_id][1].append(loose)
            by_num_constraints[len(verdict.strict)][0].append(verdict.prompt_level_strict)
            by_num_constraints[len(verdict.strict)][1].append(verdict.prompt_level_loose)
        return {
            "prompt_level_strict_acc": _mean(prompt_strict),
            "inst_level_strict_acc": _mean(inst_strict),
            "prompt_level_loose_acc": _mean(prompt_loose),
            "inst_level_loose_acc": _mean(inst_loose),
            "num_scored": len(prompt_strict),
            "by_instruction": {
                instruction_id: {
                    "inst_level_strict_acc": _mean(strict),
                    "inst_level_loose_acc": _mean(loose),
                    "count": len(strict),
                }
                for instruction_id, (strict, loose) in sorted(by_instruction.items())
            },
            "by_num_constraints": {
                k: {
                    "prompt_level_strict_acc": _mean(strict),
                    "prompt_level_loose_acc": _mean(loose),
                    "count": len(strict),
                }
                for k, (strict, loose) in sorted(by_num_constraints.items())
            },
            "num_skipped": len(skipped),
            "skipped": skipped,
        }
