"""Instruction following: IFEval's (lm-eval's scoring) or IFBench's verifiable-instruction scores, with breakdowns."""

import datasets
import evaluate

from instrl_trl.constraints import InvalidReferenceError
from instrl_trl.metrics.benchmarks import BENCHMARKS, get_benchmark
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

Configurations: `ifeval` (the default, also reached as `default`) as above, and `ifbench`
(`evaluate.load(path, "ifbench")`): IFBench's (Pyatkin et al., 2025) 58 out-of-distribution constraints, scored as
IFBench's own `evaluation_lib` scores them (commit db69a6f), with the same four scores and breakdowns. IFBench rows
have a string `key`, and kwargs dicts that carry every argument name (unused ones null) with floats for counts; they
are taken as they are. A row whose checker needs data that cannot be had offline (`words:start_verb`, NLTK's
perceptron tagger) is skipped and listed under `skipped` with the reason, whatever `on_invalid` says; it is never
scored at random and nothing is downloaded.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `str`): the responses, one per reference.
    references (`list` of `str`): IFEval-schema rows as JSON strings, each with `key`, `prompt`,
        `instruction_id_list` and `kwargs` (a list with one dict of `build_description` arguments per instruction;
        empty values such as `None` are dropped, as lm-eval drops them, so `google/IFEval` rows can be given as they
        are).
    benchmark (`str`, *optional*): the benchmark adapter the references follow (see
        `instrl_trl.metrics.benchmarks.BENCHMARKS`); defaults to the configuration's (`ifeval` or `ifbench`).
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
@article{pyatkin2025generalizing,
    title={Generalizing Verifiable Instruction Following},
    author={Pyatkin, Valentina and Malik, Saumya and Graf, Victoria and Ivison, Hamish and Huang, Shengyi and
        Dasigi, Pradeep and Lambert, Nathan and Hajishirzi, Hannaneh},
    journal={arXiv preprint arXiv:2507.02833},
    year={2025}
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
        self.benchmark = "ifeval" if self.config_name == "default" else self.config_name
        if self.benchmark not in BENCHMARKS:
            raise ValueError(
                f"Unknown configuration {self.config_name!r} of `instruction_following`; valid ones: "
                f"{', '.join(BENCHMARKS)} (the default is 'ifeval')."
            )
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
                "https://huggingface.co/papers/2507.02833",
                "https://github.com/allenai/IFBench",
                "https://huggingface.co/papers/2403.08694",
            ],
        )

    def _compute(self, predictions, references, on_invalid="skip", benchmark=None):
        if on_invalid not in ON_INVALID_CHOICES:
            raise ValueError(f"`on_invalid` must be one of {ON_INVALID_CHOICES}, got {on_invalid!r}.")
        adapter = get_benchmark(benchmark or self.benchmark)
        results = []
        for index, (response, reference) in enumerate(zip(predictions, references, strict=True)):
            try:
                row = adapter.parse_reference(reference)
            except InvalidReferenceError as error:
                results.append(skip_row(index, None, error, on_invalid))
                continue
            results.append(check_one_row(adapter, index, row, response, on_invalid))
        return aggregate(results)
