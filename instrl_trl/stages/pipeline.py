"""
The `pipeline` stage: every stage from one recipe, train-policy -> generate -> sft -> evaluate, all under one
`output_dir`, each stage wired to the previous one's output.
"""

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field


STAGE_ORDER = ("train-policy", "generate", "sft", "evaluate")


@dataclass
class PipelineConfig:
    r"""
    Configuration of the `pipeline` stage. Each stage reads its own recipe, then the pipeline's wiring (where the
    previous stage wrote its output), then the overrides given here, so every stage keeps its own strict parser.

    Parameters:
        output_dir (`str`):
            Everything goes under it: `policy/`, `dataset/`, `sft/`, `eval/`.
        stages (`list[str]`, *optional*, defaults to all four):
            Stages to run, in the pipeline's order. Each stage resumes its own earlier work when rerun.
        policy_recipe (`str`, *optional*, defaults to `"recipes/quickstart/policy.yaml"`):
            Recipe of the `train-policy` stage.
        generate_recipe (`str`, *optional*, defaults to `"recipes/quickstart/generate.yaml"`):
            Recipe of the `generate` stage.
        sft_recipe (`str`, *optional*, defaults to `"recipes/quickstart/sft.yaml"`):
            Recipe of the `sft` stage.
        evaluate_recipe (`str`, *optional*, defaults to `"recipes/quickstart/evaluate.yaml"`):
            Recipe of the `evaluate` stage.
        base_model (`str`, *optional*):
            Model fine-tuned by the `sft` stage (Hub id, path, or one of instrl-trl's model names). When unset, the
            sft recipe's `model_name_or_path` (the quickstart's: `instrl-tiny-chat`, built offline on first use).
        policy_overrides (`dict`, *optional*), generate_overrides (`dict`, *optional*), sft_overrides (`dict`,
        *optional*), evaluate_overrides (`dict`, *optional*):
            Values that replace the recipe's, per stage (e.g. `{"max_steps": 40}`).
    """

    output_dir: str = field(
        default=None, metadata={"help": "Everything goes under it: policy/, dataset/, sft/, eval/."}
    )
    stages: list[str] = field(
        default_factory=lambda: list(STAGE_ORDER), metadata={"help": "Stages to run, in the pipeline's order."}
    )
    policy_recipe: str = field(
        default="recipes/quickstart/policy.yaml", metadata={"help": "Recipe of the train-policy stage."}
    )
    generate_recipe: str = field(
        default="recipes/quickstart/generate.yaml", metadata={"help": "Recipe of the generate stage."}
    )
    sft_recipe: str = field(default="recipes/quickstart/sft.yaml", metadata={"help": "Recipe of the sft stage."})
    evaluate_recipe: str = field(
        default="recipes/quickstart/evaluate.yaml", metadata={"help": "Recipe of the evaluate stage."}
    )
    base_model: str | None = field(
        default=None,
        metadata={"help": "Model fine-tuned by the sft stage. Unset: the sft recipe's `model_name_or_path`."},
    )
    policy_overrides: dict | str | None = field(default=None, metadata={"help": "Overrides of the policy recipe."})
    generate_overrides: dict | str | None = field(default=None, metadata={"help": "Overrides of the generate recipe."})
    sft_overrides: dict | str | None = field(default=None, metadata={"help": "Overrides of the sft recipe."})
    evaluate_overrides: dict | str | None = field(default=None, metadata={"help": "Overrides of the evaluate recipe."})

    def __post_init__(self):
        if not self.output_dir:
            raise ValueError("`output_dir` is required: set it in the recipe or with `--output_dir`.")
        unknown = [stage for stage in self.stages if stage not in STAGE_ORDER]
        if unknown:
            raise ValueError(f"`stages` has unknown stages {unknown}; valid stages: {', '.join(STAGE_ORDER)}.")
        for name in ("policy_overrides", "generate_overrides", "sft_overrides", "evaluate_overrides"):
            value = getattr(self, name)
            if isinstance(value, str):
                value = json.loads(value)
            if value is not None and not isinstance(value, dict):
                raise ValueError(f"`{name}` must be a mapping of field -> value, got {value!r}.")
            setattr(self, name, value or {})
        for stage, recipe in self.recipes().items():
            if stage in self.stages and not os.path.isfile(recipe):
                raise ValueError(
                    f"The {stage} recipe {recipe!r} does not exist (relative paths are read from {os.getcwd()}); "
                    "run from the repository root or give absolute recipe paths."
                )

    def recipes(self) -> dict[str, str]:
        return {
            "train-policy": self.policy_recipe,
            "generate": self.generate_recipe,
            "sft": self.sft_recipe,
            "evaluate": self.evaluate_recipe,
        }


def _as_arguments(values: dict) -> list[str]:
    """`{"max_steps": 4, "models": ["a", "b"]}` -> `["--max_steps", "4", "--models", "a", "b"]`."""
    arguments = []
    for key, value in values.items():
        arguments.append(f"--{key}")
        if isinstance(value, bool):
            arguments.append(str(value).lower())
        elif isinstance(value, list | tuple):
            arguments.extend(str(item) for item in value)
        elif isinstance(value, dict):
            arguments.append(json.dumps(value))
        else:
            arguments.append(str(value))
    return arguments


def stage_arguments(config: PipelineConfig) -> dict[str, list[str]]:
    """Each stage's command line: its recipe, where the previous stage wrote, then the pipeline's overrides."""
    root = config.output_dir
    base_model = {"model_name_or_path": config.base_model} if config.base_model else {}
    wiring = {
        "train-policy": {"output_dir": f"{root}/policy"},
        "generate": {"policy": f"{root}/policy", "output_dir": f"{root}/dataset"},
        "sft": {**base_model, "dataset_name": f"{root}/dataset/data", "output_dir": f"{root}/sft"},
        "evaluate": {"models": [f"{root}/sft"], "output_dir": f"{root}/eval"},
    }
    overrides = {
        "train-policy": config.policy_overrides,
        "generate": config.generate_overrides,
        "sft": config.sft_overrides,
        "evaluate": config.evaluate_overrides,
    }
    recipes = config.recipes()
    return {
        stage: ["--config", recipes[stage], *_as_arguments({**wiring[stage], **overrides[stage]})]
        for stage in STAGE_ORDER
    }


# `run_stage(stage, arguments)`: parses `arguments` with the stage's own parser and runs it, as `instrl-trl <stage>`
StageRunner = Callable[[str, list[str]], object]


def run_pipeline(config: PipelineConfig, run_stage: StageRunner) -> str:
    r"""
    Runs the `pipeline` stage: each stage of `config.stages`, in the pipeline's order, on the command line that
    [`stage_arguments`] wires from its recipe, the previous stage's output and the overrides.

    Each stage goes through `run_stage`, the path its own command takes (`instrl_trl.cli.main.run_stage`: its strict
    parser, then its runner), so each keeps its whole contract: its folder claimed with its recipe's fingerprint, its
    inputs checked before anything loads, its own resume. A rerun of the pipeline resumes each stage's earlier work.

    Args:
        config ([`PipelineConfig`]):
            The stage's configuration.
        run_stage (`Callable[[str, list[str]], object]`):
            Parses a stage's arguments and runs the stage.

    Returns:
        `str`: `config.output_dir`.
    """
    os.makedirs(config.output_dir, exist_ok=True)
    arguments = stage_arguments(config)
    for stage in STAGE_ORDER:
        if stage not in config.stages:
            continue
        print(f"\n=== instrl-trl {stage} {' '.join(arguments[stage])}", flush=True)  # noqa: T201
        run_stage(stage, arguments[stage])
    print(f"\nPipeline done: everything is under {os.path.abspath(config.output_dir)}")  # noqa: T201
    return config.output_dir
