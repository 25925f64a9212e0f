from dataclasses import dataclass, field

from ..metrics.benchmarks import BENCHMARKS
from ..metrics.scoring import ON_INVALID_CHOICES
from ..runs.folder import RunFolderArguments
from .benchmark_rows import BenchmarkSpec, parse_benchmarks


@dataclass
class BenchmarkEvaluationConfig(RunFolderArguments):
    r"""
    Configuration of the `evaluate` stage: each model answers one or more benchmarks in IFEval's schema (IFEval,
    IFBench, or any registered one), the answers are scored as the `instruction_following` metric scores them, and
    the results go to `output_dir` and into each local model's card (see [`run_evaluate`]).

    Parameters:
        > Parameters that control the models

        models (`list[str]`):
            Models to evaluate on the same benchmark: Hub ids or local folders (a single string is accepted). With
            several, a comparison table and chart are written, and the settings in which their evaluations differ are
            printed. An entry may also be an earlier run's `eval_results.json`: it is shown side by side, not evaluated
            again. `models[0]` is the one whose card is pushed.
        dtype (`str`, *optional*, defaults to `"auto"`):
            Dtype to load the models in (`"auto"` keeps each checkpoint's dtype; `"bfloat16"`, `"float32"`, ...).
        generator (`dict` or `str`, *optional*):
            Backend mapping, as for the roles of the `generate` stage (`backend`, `base_url`, `token_env`,
            `generation_kwargs`, ...), to answer through an endpoint instead of loading the models locally. Each entry
            of `models` is sent as the mapping's `model`. The local transformers backend when unset.

        > Parameters that control the benchmark

        benchmark (`list[str]`, *optional*, defaults to `["google/IFEval"]`):
            The benchmarks, each scored and recorded on its own (a single string is accepted). An entry is a
            registered benchmark's name (`ifeval`, `ifbench`: its Hub dataset, `google/IFEval` or
            `allenai/IFBench_test`), `NAME:sample` (its packaged offline sample, e.g. `ifbench:sample`),
            `NAME:DATASET` (a Hub id, local `.jsonl`/`.json`/`.parquet`/`.csv` file or `save_to_disk` folder in that
            benchmark's schema), or a dataset alone (of type `benchmark_type`). Every benchmark has IFEval's columns
            `key`, `prompt`, `instruction_id_list` and `kwargs`.
        benchmark_type (`str`, *optional*, defaults to `"ifeval"`):
            The type of a `benchmark` entry that names none: the adapter (columns, checks, score names) of
            `instrl_trl.metrics.benchmarks.BENCHMARKS` that reads and scores it.
        benchmark_config (`str`, *optional*):
            Configuration name of the Hub dataset.
        benchmark_split (`str`, *optional*, defaults to `"train"`):
            Split of every benchmark (IFEval and IFBench have only `train`).
        max_samples (`int`, *optional*):
            Evaluate only the first `max_samples` prompts of each benchmark (the cards then name the split as
            `train[:max_samples]`).
        train_dataset (`str`, *optional*):
            The dataset the models were trained on (Hub id or local path, e.g. a `generate` output folder): its
            constraint ids are compared with each benchmark's, to say whether the benchmark is in-distribution,
            out-of-distribution or overlapping. When unset, each model's card is read (the SFT card records them).

        > Parameters that control generation

        batch_size (`int`, *optional*, defaults to `16`):
            Prompts per `generate` call (and lm-eval's batch size).
        max_new_tokens (`int`, *optional*, defaults to `1280`):
            Most tokens generated per answer (lm-eval's IFEval setting).
        generation_kwargs (`dict`, *optional*):
            Extra keyword arguments for `generate` (`temperature`, `top_p`, `do_sample`, ...). Decoding is greedy
            unless they say otherwise, as in lm-eval's IFEval task.
        seed (`int`, *optional*, defaults to `42`):
            Seed set before generating, so that sampled answers are reproducible.

        > Parameters that control scoring

        on_invalid (`str`, *optional*, defaults to `"skip"`):
            A benchmark row that cannot be scored reproducibly (unknown instruction id, kwargs lm-eval rejects):
            `"skip"` leaves it out of the scores and lists its `key`; `"raise"` fails before any model is loaded.
        lm_eval_tasks (`list[str]`, *optional*, defaults to `[]`):
            lm-eval tasks run on each model after the benchmark, e.g. the paper's `arc_challenge:25`,
            `hellaswag:10`, `mmlu:5`, `truthfulqa_mc2:0` (`name` or `name:num_fewshot`); their scores join the card.
            Their datasets come from the Hub: they must be reachable, or already in the `datasets` cache.

        > Parameters that control the output

        output_dir (`str`):
            Where each model's `eval_results.json` and `predictions.jsonl` (in a folder named after the model) and the
            comparison chart are written.
        resume (`bool`, *optional*, defaults to `False`):
            Do not evaluate again a model whose `eval_results.json` and `predictions.jsonl` are already in
            `output_dir` with the same settings, chat template and package versions (an interrupted run over several
            models goes on with the next one).
        overwrite_output_dir (`bool`, *optional*, defaults to `False`):
            `output_dir` is claimed with the recipe's fingerprint (models, benchmarks, generation and scoring
            settings), as by every stage: a rerun with another recipe is refused, naming the fields that differ,
            unless this is set, which removes the earlier results, predictions and chart first.
        update_model_card (`bool`, *optional*, defaults to `True`):
            Write the scores into the `model-index` and the "Evaluation" section of each local model's `README.md`
            (a minimal card is created when there is none); the rest of the card is kept.
        push_to_hub (`bool`, *optional*, defaults to `False`):
            Push the updated card (and its images) of `models[0]`, a local folder, to `hub_model_id`.
        hub_model_id (`str`, *optional*):
            Hub repository of `models[0]`; required with `push_to_hub`.
    """

    # Parameters that control the models
    models: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Models to evaluate: Hub ids or local folders (or an earlier eval_results.json, shown side by "
            "side); the first one's card is pushed."
        },
    )
    dtype: str | None = field(
        default="auto", metadata={"help": "Dtype to load the models in ('auto' keeps the checkpoint's)."}
    )
    generator: dict | str | None = field(
        default=None,
        metadata={"help": "Endpoint backend mapping (as the roles'); each of `models` is sent as its `model`."},
    )

    # Parameters that control the benchmark
    benchmark: list[str] = field(
        default_factory=lambda: ["google/IFEval"],
        metadata={
            "help": "Benchmarks: `ifeval`, `ifbench`, `NAME:sample` (offline sample), `NAME:DATASET`, or a dataset "
            "(Hub id, local file or saved folder) of type `benchmark_type`."
        },
    )
    benchmark_type: str = field(
        default="ifeval",
        metadata={"help": "The type of a `benchmark` entry that names none.", "choices": tuple(BENCHMARKS)},
    )
    benchmark_config: str | None = field(default=None, metadata={"help": "Configuration name of the Hub dataset."})
    benchmark_split: str = field(default="train", metadata={"help": "Split of the benchmark."})
    max_samples: int | None = field(
        default=None, metadata={"help": "Evaluate only the first `max_samples` prompts of each benchmark."}
    )
    train_dataset: str | None = field(
        default=None,
        metadata={
            "help": "Dataset the models were trained on: its constraint ids are compared with each benchmark's "
            "(in-distribution, out-of-distribution or overlapping). Unset: read from each model's card."
        },
    )

    # Parameters that control generation
    batch_size: int = field(default=16, metadata={"help": "Prompts per `generate` call (and lm-eval's batch size)."})
    max_new_tokens: int = field(default=1280, metadata={"help": "Most tokens generated per answer (lm-eval's 1280)."})
    generation_kwargs: dict | None = field(
        default=None, metadata={"help": "Extra keyword arguments for `generate`; greedy decoding by default."}
    )
    seed: int = field(default=42, metadata={"help": "Seed set before generating."})

    # Parameters that control scoring
    on_invalid: str = field(
        default="skip",
        metadata={
            "help": "Rows that cannot be scored: 'skip' (listed by key) or 'raise'.",
            "choices": ON_INVALID_CHOICES,
        },
    )
    lm_eval_tasks: list[str] = field(
        default_factory=list,
        metadata={"help": "lm-eval tasks (`name` or `name:num_fewshot`) whose scores join the card; need Hub data."},
    )

    # Parameters that control the output
    output_dir: str = field(default=None, metadata={"help": "Where results, predictions and the chart are written."})
    resume: bool = field(
        default=False, metadata={"help": "Skip models whose results are in `output_dir` with the same settings."}
    )
    update_model_card: bool = field(
        default=True, metadata={"help": "Write the scores into each local model's card (model-index)."}
    )
    push_to_hub: bool = field(default=False, metadata={"help": "Push the updated card of `models[0]`."})
    hub_model_id: str | None = field(default=None, metadata={"help": "Hub repository of `models[0]`."})

    def __post_init__(self):
        from ..backends.roles import parse_role_spec

        if isinstance(self.models, str):
            self.models = [self.models]
        self.models = list(self.models or [])
        if self.generator is not None:
            self.generator = parse_role_spec("generator", self.generator)
            if self.generator["backend"] == "rules":
                raise ValueError(
                    "`generator.backend` is 'rules', which answers no benchmark: use 'endpoint' (or 'transformers', "
                    "the default when `generator` is unset)."
                )
            named = self.generator.pop("model", None)
            if named is not None and not self.models:
                self.models = [named]
            elif named is not None and self.models != [named]:
                raise ValueError(
                    f"`generator.model` ({named!r}) and `models` ({self.models}) disagree: list the models to "
                    "evaluate in `models` only."
                )
        if not self.models:
            raise ValueError("`models` is required: set it in the recipe or with `--models ID_OR_PATH [...]`.")
        if len(set(self.models)) != len(self.models):
            raise ValueError(f"`models` lists a model twice: {self.models}.")
        if not self.output_dir:
            raise ValueError("`output_dir` is required: set it in the recipe or with `--output_dir`.")
        checks = [
            ("batch_size", self.batch_size >= 1, "at least 1"),
            ("max_new_tokens", self.max_new_tokens >= 1, "at least 1"),
            ("max_samples", self.max_samples is None or self.max_samples >= 1, "at least 1 (or unset)"),
            ("on_invalid", self.on_invalid in ON_INVALID_CHOICES, f"one of {ON_INVALID_CHOICES}"),
            ("benchmark_type", self.benchmark_type in BENCHMARKS, f"one of {tuple(BENCHMARKS)}"),
        ]
        for name, ok, expected in checks:
            if not ok:
                raise ValueError(f"`{name}` must be {expected}, got {getattr(self, name)!r}.")
        self.benchmark = [self.benchmark] if isinstance(self.benchmark, str) else list(self.benchmark or [])
        if not self.benchmark:
            raise ValueError("`benchmark` is empty: name at least one, e.g. `ifeval` or `ifbench:sample`.")
        parse_benchmarks(self.benchmark, self.benchmark_type)  # a bad entry fails here, before anything is loaded
        if self.push_to_hub and not self.hub_model_id:
            raise ValueError(
                "`push_to_hub` needs `hub_model_id` (e.g. `your-name/my-model`), the repo of `models[0]`."
            )
        self.lm_eval_tasks = list(self.lm_eval_tasks or [])
        for spec in self.lm_eval_tasks:
            parse_lm_eval_task(spec)

    @property
    def benchmark_specs(self) -> list[BenchmarkSpec]:
        """The benchmarks of `benchmark`, resolved ([`~instrl_trl.evaluation.benchmark_rows.parse_benchmark`])."""
        return parse_benchmarks(self.benchmark, self.benchmark_type)


def parse_lm_eval_task(spec: str) -> tuple[str, int | None]:
    r"""
    Splits an `lm_eval_tasks` entry into the task name and its number of few-shot examples.

    Args:
        spec (`str`):
            `"name"` (the task's own few-shot setting) or `"name:num_fewshot"`.

    Returns:
        `tuple[str, int | None]`: the task name, and the number of few-shot examples or `None`.

    Example:

    ```python
    >>> parse_lm_eval_task("arc_challenge:25"), parse_lm_eval_task("arc_easy")
    (('arc_challenge', 25), ('arc_easy', None))

    ```
    """
    name, colon, shots = spec.rpartition(":")
    if not colon:
        name, shots = spec, None
    elif not shots.isdigit():
        raise ValueError(
            f"`lm_eval_tasks` entry {spec!r}: write `name` or `name:num_fewshot` with a non-negative integer, e.g. "
            "`arc_challenge:25`."
        )
    if not name.strip():
        raise ValueError(f"`lm_eval_tasks` entry {spec!r} has no task name.")
    return name, None if shots is None else int(shots)
