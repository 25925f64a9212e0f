"""The `train-instructor` stage: seeds -> environment -> instructor model -> GRPO -> saved model, card, push."""

import os

from accelerate import PartialState
from accelerate.logging import get_logger
from datasets import Dataset
from transformers import AutoTokenizer, PreTrainedTokenizerBase
from transformers.trainer_utils import get_last_checkpoint
from trl.chat_template_utils import qwen2_5_chat_template

from ...backends.roles import build_role
from ...data.seeds import load_seeds, prepare_seed_dataset
from ...operations import build_operation_library
from ...rewards import get_reward_funcs
from .environment import InstructionEnvironmentFactory
from .instructor_config import InstructorConfig
from .instructor_trainer import InstructorTrainer
from .warm_start import default_instructor


logger = get_logger(__name__)


def load_instructor_seeds(config: InstructorConfig) -> Dataset:
    """
    The seed instructions as GRPO rows: a conversational `prompt` (the task, to which the environment appends the
    seed) and the seed in `config.instruction_column`. Bad input raises here, before any query.
    """
    column = config.instruction_column
    seeds = load_seeds(config.dataset_name, config.dataset_config, config.dataset_split, column)
    instructions = prepare_seed_dataset(seeds, column)[column]
    prompt = [{"role": "user", "content": config.task_prompt}]
    return Dataset.from_dict({"prompt": [prompt] * len(instructions), column: instructions})


def build_environment_factory(config: InstructorConfig) -> InstructionEnvironmentFactory:
    """The environments of the run, from the config's operations, roles and rewards (checked before any query)."""
    operations = build_operation_library(config.operations, config.operations_file)
    cache_path = config.response_cache or os.path.join(config.output_dir, "response_cache.sqlite")
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


def run_train_instructor(config: InstructorConfig) -> str:
    r"""
    Trains the instructor with GRPO, saves it (a causal LM with its tokenizer, `queries.json` and the card) to
    `config.output_dir`, and pushes it when `config.push_to_hub` is set. Resumes from the last checkpoint in
    `output_dir` (or `resume_from_checkpoint`).

    Args:
        config ([`InstructorConfig`]):
            The stage's configuration.

    Returns:
        `str`: `config.output_dir`.
    """
    train_dataset = load_instructor_seeds(config)  # first: a bad seed fails before a role (or its cache) exists
    factory = build_environment_factory(config)
    model = config.model_name_or_path
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
    checkpoint = config.resume_from_checkpoint
    if checkpoint is None and os.path.isdir(config.output_dir):
        checkpoint = get_last_checkpoint(config.output_dir)
        if checkpoint is not None:
            logger.info(f"Resuming from the last checkpoint in {config.output_dir}: {checkpoint}")
    trainer.train(resume_from_checkpoint=checkpoint)
    trainer.save_model(config.output_dir)
    if config.push_to_hub:
        trainer.push_to_hub()
    return config.output_dir
