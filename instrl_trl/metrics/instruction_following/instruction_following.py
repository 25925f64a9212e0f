"""Instruction following: IFEval's verifiable-instruction scores (lm-eval's scoring), by instruction and by count."""

import datasets
import evaluate

from instrl_trl.constraints import InvalidReferenceError
from instrl_trl.metrics.benchmarks import get_benchmark
from instrl_trl.metrics.scoring import ON_INVALID_CHOICES, aggregate, check_one_row, skip_row


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
out-of-range argument that lm-eval would draw at random) is never scored. "Would draw" is observed, not guessed:
building the row's checkers would consume Python's global `random` generator (whose state is restored, so `compute`
never moves the caller's random stream, and the same rows are skipped in every process). Such a reference is
skipped and listed with its `key` (`on_invalid="skip"`, the default), or it raises (`on_invalid="raise"`).
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `str`): the responses, one per reference.
    references (`list` of `str`): IFEval-schema rows as JSON strings, each with `key`, `prompt`,
        `instruction_id_list` and `kwargs` (a list with one dict of `build_description` arguments per instruction;
        empty values such as `None` are dropped, as lm-eval drops them, so `google/IFEval` rows can be given as they
        are).
    benchmark (`str`, defaults to `"ifeval"`): the benchmark adapter the references follow (see
        `instrl_trl.metrics.benchmarks.BENCHMARKS`).
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

    def _compute(self, predictions, references, on_invalid="skip", benchmark="ifeval"):
        if on_invalid not in ON_INVALID_CHOICES:
            raise ValueError(f"`on_invalid` must be one of {ON_INVALID_CHOICES}, got {on_invalid!r}.")
        adapter = get_benchmark(benchmark)
        results = []
        for index, (response, reference) in enumerate(zip(predictions, references, strict=True)):
            try:
                row = adapter.parse_reference(reference)
            except InvalidReferenceError as error:
                results.append(skip_row(index, None, error, on_invalid))
                continue
            results.append(check_one_row(adapter, index, row, response, on_invalid))
        return aggregate(results)
