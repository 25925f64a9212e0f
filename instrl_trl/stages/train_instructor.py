"""
The `train-instructor` stage: seeds -> environment -> instructor model -> GRPO -> saved model, card, push. It keeps the
rules of every stage: `max_steps` checked and seeds checked before anything loads, the output folder claimed (a lock
and the recipe's fingerprint), resume only from a complete checkpoint, a failure budget on the rewriter and the
reviewer.
"""

from dataclasses import dataclass

from accelerate import PartialState
from accelerate.logging import get_logger
from datasets import Dataset
from transformers import AutoTokenizer, PreTrainedTokenizerBase
from trl.chat_template_utils import qwen2_5_chat_template

from ..backends.roles import build_role
from ..data.seeds import load_seeds, prepare_seed_dataset
from ..operations import build_operation_library
from ..rewards import get_reward_funcs
from ..runs.checkpoints import check_max_steps, find_resume_checkpoint
from ..runs.fingerprint import TRAINING_OUTPUTS, training_fingerprint
from ..runs.folder import RunFolderArguments, claim_run_folder, fingerprint_folder, fingerprint_texts
from ..tool_environment import InstructionEnvironmentFactory
from ..trainer.failures import FailureBudgetCallback, check_run_answered
from ..trainer.instructor.instructor_config import InstructorConfig
from ..trainer.instructor.instructor_trainer import InstructorTrainer
from ..trainer.instructor.warm_start import default_instructor


logger = get_logger(__name__)


@dataclass
class InstructorScriptArguments(RunFolderArguments):
    r"""
    Script arguments of the `train-instructor` stage: what to do with an earlier run in `output_dir` (see
    [`~instrl_trl.runs.folder.RunFolderArguments`]).
    """


def load_instructor_seeds(config: InstructorConfig) -> Dataset:
    """
    The seed instructions as GRPO rows: a conversational `prompt` (the task, to which the environment appends the
    seed) and the seed in `config.instruction_column`. Loaded and checked by the one seed loader of every stage (empty
    rows dropped, benchmark test prompts refused): bad input raises here, before any query.
    """
    seeds = load_seeds(config.dataset_name, config.dataset_config, config.dataset_split, config.instruction_column)
    column = config.instruction_column
    seeds = prepare_seed_dataset(seeds, column)
    prompt = [{"role": "user", "content": config.task_prompt}]
    return Dataset.from_dict({"prompt": [prompt] * len(seeds), column: seeds[column]})


def build_environment_factory(config: InstructorConfig) -> InstructionEnvironmentFactory:
    """The environments of the run, from the config's operations, roles and rewards (checked before any query)."""
    operations = build_operation_library(config.operations, config.operations_file)
    cache_path = config.response_cache_path(config.output_dir)
    return InstructionEnvironmentFactory(
        operations,
        build_role("rewriter", config.rewriter, cache_path),
        build_role("reviewer", config.reviewer, cache_path),
        get_reward_funcs(config.reward_funcs, embedding_model=config.embedding_model),
        reward_weights=config.operation_reward_weights,
        max_operations=config.max_operations,
        stop_reward=config.stop_reward,
        seed=config.seed,
        instruction_column=config.instruction_column,
    )


def load_processing_class(config: InstructorConfig, model: str) -> PreTrainedTokenizerBase | None:
    """The model's tokenizer with `config.chat_template_path` as its template, or `None` (TRL then loads it)."""
    if config.chat_template_path is None:
        return None
    tokenizer = AutoTokenizer.from_pretrained(model)
    if config.chat_template_path == "qwen2.5":
        # TRL recognizes this exact template and sets the matching response template itself
        tokenizer.chat_template = qwen2_5_chat_template
    else:
        with open(config.chat_template_path) as f:
            tokenizer.chat_template = f.read()
    return tokenizer


def run_train_instructor(config: InstructorConfig, script_args: InstructorScriptArguments | None = None) -> str:
    r"""
    Trains the instructor with GRPO, saves it (a causal LM with its tokenizer, `queries.json` and the card) to
    `config.output_dir`, and pushes it when `config.push_to_hub` is set. Resumes from the newest complete checkpoint
    in `output_dir` (or `resume_from_checkpoint`).

    `output_dir` is claimed first (see [`~instrl_trl.runs.folder.claim_run_folder`]): a second run on it fails at
    once, and a rerun whose seeds, model or training settings differ is refused unless `overwrite_output_dir`.

    Args:
        config ([`InstructorConfig`]):
            The stage's configuration.
        script_args ([`InstructorScriptArguments`], *optional*):
            What to do with an earlier run in `output_dir`.

    Returns:
        `str`: `config.output_dir`.

    Raises:
        [`~instrl_trl.backends.failure_budget.RoleFailureError`]: a role failed `max_failure_fraction` of a step's
            queries (training stops, checkpoints kept); `RuntimeError`: most queries of the run failed (nothing saved).
    """
    script_args = script_args or InstructorScriptArguments()
    check_max_steps(config)
    train_dataset = load_instructor_seeds(config)
    factory = build_environment_factory(config)
    model = config.model_name_or_path
    fingerprint = {
        "seeds": fingerprint_texts(train_dataset[config.instruction_column]),
        "model": model,
        "model_files": fingerprint_folder(model) if model else None,
        **training_fingerprint(config),
    }
    with claim_run_folder(
        config.output_dir, "train-instructor", fingerprint, script_args.overwrite_output_dir, TRAINING_OUTPUTS
    ):
        if model is None:
            # Built once, by the main process first; the other ranks then find it in the cache
            with PartialState().main_process_first():
                model = default_instructor(
                    factory.operations,
                    config.task_prompt,
                    num_steps=config.warm_start_steps,
                    learning_rate=config.warm_start_learning_rate,
                )
        trainer = InstructorTrainer(
            model=model,
            args=config,
            train_dataset=train_dataset,
            environment_factory=factory,
            processing_class=load_processing_class(config, model),
        )
        roles = {"rewriter": factory.rewriter, "reviewer": factory.reviewer}
        trainer.add_callback(FailureBudgetCallback(trainer.accounting.details, roles, config.max_failure_fraction))
        checkpoint = find_resume_checkpoint(
            config.output_dir,
            config.resume_from_checkpoint,
            log=logger.info,
            warn=logger.warning,
        )
        trainer.train(resume_from_checkpoint=checkpoint)
        per_role, _ = trainer.run_totals()
        check_run_answered(per_role, config.output_dir, what="instructor")
        trainer.save_model(config.output_dir)
        if config.push_to_hub:
            trainer.push_to_hub()
    return config.output_dir
