import math
import os
from collections import defaultdict
from copy import deepcopy
from functools import partial
from pathlib import Path
from typing import ClassVar

import torch
from datasets import Dataset
from transformers import AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase, TrainerCallback, set_seed

from ..backends.accounting import QueryAccounting
from ..backends.base import Reviewer, Rewriter
from ..backends.process_memory import release_freed_memory
from ..backends.review_statistics import ReviewStatistics
from ..backends.roles import build_role
from ..backends.run_statistics import RunStatistics, reduce_review_statistics, reduce_usage
from ..backends.server_load import least_fill
from ..data.seeds import prepare_seed_dataset
from ..environment import STOP_ACTION, InstructionEnv, StepResult, format_state
from ..operations import OperationLibrary, build_operation_library
from ..policy import (
    UPDATE_TOKENS_PER_PASS,
    add_value_head,
    build_policy,
    check_policy_labels,
    get_action_and_value,
    load_value_head,
    save_value_head,
)
from ..rewards.scoring import weighted_rewards
from ._trl import _BaseTrainer, disable_dropout_in_model, identity
from .cards import TRAINING_CURVE_FILE, build_operation_card, plot_training_curve
from .instruction_generation_config import InstructionGenerationConfig
from .ppo_loss import ppo_loss
from .query_budget import QueryBudgetCallback
from .reward_funcs import build_reward_funcs
from .rollout import RolloutBatch
from .rollout_buffer import RolloutBuffer
from .rollout_metrics import rollout_metrics, rollout_statistics
from .rollout_playing import RolloutPlayingMixin
from .rollouts_ahead import RolloutsAhead
from .run_outputs import RunOutputsMixin
from .sampling import EpochSeededRepeatSampler, SeedsAhead
from .server_fill import warn_if_rollouts_leave_slots_idle, warn_why_servers_waited
from .state import EXTRA_STATE_FILE, InstructionGenerationState


def _is_running_total(key: str) -> bool:
    """Counts since the start of training are logged at their latest value, not averaged over the window."""
    return key == "cost/multiplier" or (key.startswith("queries/") and not key.startswith("queries/per_"))


class InstructionGenerationTrainer(RolloutPlayingMixin, RunOutputsMixin, _BaseTrainer):
    r"""
    Trainer for the TeaMs-RL method: PPO learns which sequence of textual operations (add constraints, deepening,
    concretizing, ...) turns a seed instruction into a better one. Paper: [TeaMs-RL: Teaching LLMs to Teach Themselves
    Better Instructions via Reinforcement Learning](https://huggingface.co/papers/2403.08694).

    Example:

    ```python
    from datasets import load_dataset
    from instrl_trl import InstructionGenerationConfig, InstructionGenerationTrainer

    seeds = load_dataset("json", data_files="instrl_trl/data/quickstart_seeds.jsonl", split="train")
    trainer = InstructionGenerationTrainer(
        model="sentence-transformers/all-MiniLM-L6-v2",
        args=InstructionGenerationConfig(output_dir="policy"),
        train_dataset=seeds,
    )
    trainer.train()
    ```

    Args:
        model (`str` or [`~transformers.PreTrainedModel`]):
            The operation policy: a model id or path (loaded as a sequence classifier over the operations and
            `stop`), or a sequence-classification model whose `config.id2label` already lists them.
        args ([`InstructionGenerationConfig`], *optional*):
            Configuration; a default one is built when `None`.
        train_dataset ([`~datasets.Dataset`]):
            Seed instructions, in the column `args.instruction_column`. Empty and non-string rows are skipped.
        reward_funcs (`list[str | Callable]`, *optional*):
            Reward functions (names from `instrl_trl.rewards.REWARD_FUNCS` or callables with the signature
            `fn(instructions, new_instructions, **episode_fields) -> list[float]`). Defaults to `args.reward_funcs`.
        processing_class ([`~transformers.PreTrainedTokenizerBase`], *optional*):
            Tokenizer of the policy; loaded from the model when `None`.
        rewriter ([`Rewriter`], *optional*):
            Applies operations; the offline rules engine by default.
        reviewer ([`Reviewer`], *optional*):
            Judges information gain; the offline rules reviewer by default.
        operations ([`OperationLibrary`], *optional*):
            The operations; built from `args.operations` and `args.operations_file` when `None`.
        callbacks (`list[TrainerCallback]`, *optional*), optimizers (`tuple`, *optional*):
            As in [`~transformers.Trainer`].
    """

    _tag_names: ClassVar[list[str]] = ["trl", "instrl-trl", "teams-rl", "ppo"]
    _name = "InstructionGeneration"
    _resumable_state_file = EXTRA_STATE_FILE
    _paper: ClassVar[dict[str, str]] = {
        "title": "TeaMs-RL: Teaching LLMs to Teach Themselves Better Instructions via Reinforcement Learning",
        "id": "2403.08694",
        "citation": """\
@article{gu2024teamsrl,
    title        = {{TeaMs-RL: Teaching LLMs to Teach Themselves Better Instructions via Reinforcement Learning}},
    author       = {Shangding Gu and Alois Knoll and Ming Jin},
    year         = 2024,
    eprint       = {arXiv:2403.08694}
}""",
    }

    def __init__(
        self,
        model: str | PreTrainedModel,
        args: InstructionGenerationConfig | None = None,
        train_dataset: Dataset | None = None,
        reward_funcs: list | None = None,
        processing_class: PreTrainedTokenizerBase | None = None,
        rewriter: Rewriter | None = None,
        reviewer: Reviewer | None = None,
        operations: OperationLibrary | None = None,
        callbacks: list[TrainerCallback] | None = None,
        optimizers=(None, None),
    ):
        if args is None:
            model_name = model if isinstance(model, str) else model.config._name_or_path
            args = InstructionGenerationConfig(f"{Path(model_name).name}-InstructionGeneration")

        # Operations, environment and rewards come first: every bad input fails here, before any query is spent
        self.operations = operations or build_operation_library(args.operations, args.operations_file)
        self.action_names = [*self.operations.names, STOP_ACTION]
        self.accounting = QueryAccounting()
        self.env = InstructionEnv(
            self.operations,
            rewriter if rewriter is not None else build_role("rewriter", args.rewriter, args.response_cache_file),
            reviewer if reviewer is not None else build_role("reviewer", args.reviewer, args.response_cache_file),
            max_operations=args.max_operations,
            accounting=self.accounting,
            seed=args.seed,
        )
        self.reward_funcs, self.reward_func_names, self.reward_weights = build_reward_funcs(
            reward_funcs if reward_funcs is not None else args.reward_funcs, args.reward_weights, args.embedding_model
        )
        train_dataset = prepare_seed_dataset(train_dataset, args.instruction_column, args.generation_batch_size)

        # Policy model and processing class. Seeded first: a new classification head is initialized at random
        set_seed(args.seed)
        if isinstance(model, str):
            model = build_policy(model, self.action_names, **(args.model_init_kwargs or {}))
        else:
            check_policy_labels(model, self.action_names)
            add_value_head(model)
        if processing_class is None:
            processing_class = AutoTokenizer.from_pretrained(model.config._name_or_path)
        # Dropout would make the first PPO ratio differ from 1 (1.03 measured): off, as TRL does for its RL trainers
        disable_dropout_in_model(model)
        self.ref_model = None
        if args.beta > 0:
            self.ref_model = deepcopy(model).eval().requires_grad_(False)

        super().__init__(
            model=model,
            args=args,
            data_collator=identity,
            train_dataset=train_dataset,
            processing_class=processing_class,
            callbacks=callbacks,
            optimizers=optimizers,
        )
        self.add_callback(QueryBudgetCallback(self))
        roles = {"rewriter": self.env.rewriter, "reviewer": self.env.reviewer}
        warn_if_rollouts_leave_slots_idle(args, roles)
        # `compute_loss` returns a minibatch mean; the Trainer divides by the accumulation steps itself
        self.loss_is_scaled_for_ga = False
        if self.ref_model is not None:
            self.ref_model = self.ref_model.to(self.accelerator.device)

        self._metrics = defaultdict(list)
        # Everything a resume restores beyond the Trainer's own state. Each rank samples its own actions: the seed +
        # rank keeps a run reproducible
        self.run_state = InstructionGenerationState(
            accounting=self.accounting,
            statistics=RunStatistics(self.action_names),
            rollout_generator=torch.Generator().manual_seed(args.seed + self.accelerator.process_index),
            reward_funcs=dict(zip(self.reward_func_names, self.reward_funcs, strict=True)),
            usage_totals=self.accounting.details(),
            # An LLM reviewer's verdicts: failed share, spread of P(gain), agreement with the rules reviewer
            reviewer_statistics=getattr(self.env.reviewer, "review_statistics", None),
        )
        self._logged_review_totals = ReviewStatistics()
        # A run says once why a rollout kept a server waiting, not at every rollout
        self._said_why_servers_waited = False
        self._rollouts_ahead = None
        if args.rollouts_ahead:
            self._check_rollouts_ahead_supported()
            self._rollouts_ahead = RolloutsAhead(roles, args.rollouts_ahead)

    @property
    def total_queries(self) -> int:
        """LLM queries spent in training so far, over all processes."""
        return self.run_state.statistics.num_queries

    def _set_signature_columns_if_needed(self):
        if self._signature_columns is None:
            self._signature_columns = [self.args.instruction_column]

    # Batching: each dataloader batch is a whole *generation* batch of seeds, repeated for every micro-step that
    # trains on its rollout. With per_device_train_batch_size=2, steps_per_generation=2, num_iterations=2, one
    # process (values are seed indices):
    #
    #   step   batch given to _prepare_inputs   what _prepare_inputs does
    #    0      [3, 7, 1, 5]                     roll out seeds 3,7,1,5; buffer all transitions; return chunk 0
    #    1      [3, 7, 1, 5]                     return chunk 1
    #    2      [3, 7, 1, 5]                     reshuffle the buffer (2nd PPO epoch); return chunk 0
    #    3      [3, 7, 1, 5]                     return chunk 1
    #    4      [0, 6, 2, 4]                     roll out the next seeds ...
    #
    # Episodes have ragged lengths, so chunks split the *transitions* with `tensor_split`: every rank then does the
    # same number of micro-steps, which DDP needs. With `rollouts_ahead: k`, each row also names the seeds at its
    # place in the next k batches, and the rollout of step 4 (seeds [0, 6, 2, 4]) is already in flight at step 0.
    def get_train_dataloader(self):
        # Rollouts played ahead read, with each seed, its counterparts in the next rollouts (`SeedsAhead`)
        dataset = self.train_dataset
        if self.args.rollouts_ahead:
            dataset = SeedsAhead(dataset, self.args.instruction_column)
        return self._get_dataloader(
            dataset=dataset,
            description="Training",
            batch_size=self._train_batch_size * self.args.steps_per_generation,
            sampler_fn=self._get_train_sampler,
            is_training=True,
        )

    def _get_train_sampler(self, dataset: Dataset | None = None):
        return EpochSeededRepeatSampler(
            data_source=dataset if dataset is not None else self.train_dataset,
            mini_repeat_count=1,
            batch_size=self.args.generation_batch_size,
            repeat_count=self.args.num_iterations * self.args.steps_per_generation,
            shuffle=True,
            seed=self.args.seed,
            lookahead=self.args.rollouts_ahead,
        )

    def _prepare_inputs(self, generation_batch: list[dict]) -> dict:
        # The body of CleanRL's loop: roll out, GAE, normalise, buffer; then one minibatch per micro-step
        state, args = self.run_state, self.args
        steps_per_rollout = args.steps_per_generation * args.num_iterations
        if args.rollouts_ahead:
            self._keep_rollouts_in_flight(generation_batch)
        new_rollout = state.step % steps_per_rollout == 0 or state.buffer is None
        if new_rollout:
            if args.rollouts_ahead:
                rollout = self._rollouts_ahead.take(state.step - state.step % steps_per_rollout, self.accounting)
            else:
                rollout = self.collect_rollout([row[args.instruction_column] for row in generation_batch])
            self._log_rollout(rollout)
            state.buffer = RolloutBuffer.from_rollout(rollout, args.gamma, args.gae_lambda, args.normalize_advantage)
            self._metrics["value/explained_variance"].append(state.buffer.explained_variance)
        if state.step % args.steps_per_generation == 0 or state.buffered_inputs is None:
            state.buffered_inputs = state.buffer.minibatches(args.steps_per_generation, state.rollout_generator)
        if new_rollout:
            # Nothing holds the last rollout now: what its threads freed goes back to the system, or a long run at a
            # server grows by GBs (see `backends/process_memory.py`)
            release_freed_memory()
        return state.buffered_inputs[state.step % args.steps_per_generation]

    def training_step(self, model, inputs, num_items_in_batch=None):
        output = super().training_step(model, inputs, num_items_in_batch)
        self.run_state.step += 1
        return output

    def train(self, *args, **kwargs):
        try:
            return super().train(*args, **kwargs)
        finally:
            if self._rollouts_ahead is not None:
                self._rollouts_ahead.close()

    def score_step(self, result: StepResult) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Weighted sum of the reward functions for one environment step, minus the Lagrangian query cost."""
        rewards, components = weighted_rewards(
            self.reward_funcs,
            self.reward_weights,
            result.instructions,
            result.new_instructions,
            **result.reward_kwargs(),
        )
        rewards = rewards - self.run_state.cost_multiplier * torch.tensor(result.queries, dtype=torch.float32)
        return rewards, components

    def _log_rollout(self, rollout: RolloutBatch) -> None:
        # A rollout's own servers, or those the rollouts played ahead share since the first
        ahead = self._rollouts_ahead
        loads, client = (
            (rollout.server_loads, rollout.client_load) if ahead is None else (ahead.server_loads, ahead.client_load)
        )
        if client is not None and not self._said_why_servers_waited:
            self._said_why_servers_waited = warn_why_servers_waited(loads, client, rollouts_ahead=ahead is not None)
        state = self.run_state
        totals = rollout_statistics(rollout, self.action_names).reduce(self.accelerator)
        state.statistics.add(totals)
        if self.args.cost_target is not None:
            state.update_cost_multiplier(totals, self.args.cost_target, self.args.cost_multiplier_lr)
        state.usage_totals = reduce_usage(self.accounting, self.accelerator)
        if state.reviewer_statistics is not None:
            state.review_totals = reduce_review_statistics(state.reviewer_statistics, self.accelerator)
        metrics = rollout_metrics(rollout, totals, state.statistics, state.usage_totals, state.cost_multiplier)
        if self._rollouts_ahead is not None and least_fill(self._rollouts_ahead.server_loads) is not None:
            # Rollouts played ahead share the servers: how full they kept the least full one, since the first
            metrics["server/fill"] = least_fill(self._rollouts_ahead.server_loads)
        for key, value in metrics.items():
            self._metrics[key].append(value)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if return_outputs:
            raise ValueError("The InstructionGenerationTrainer does not support returning outputs")
        # The rollout's distribution (same function, same temperature): the first ratio is 1 up to padding rounding.
        # On a CPU, length-sorted passes unless DDP or DeepSpeed wrap the model (see `UPDATE_TOKENS_PER_PASS`)
        sorted_passes = isinstance(model, PreTrainedModel) and model.device.type == "cpu"
        policy = partial(
            get_action_and_value,
            processing_class=self.processing_class,
            states=inputs["states"],
            max_length=self.args.max_state_length,
            actions=inputs["actions"],
            temperature=self.args.rollout_temperature,
            tokens_per_pass=UPDATE_TOKENS_PER_PASS if sorted_passes else None,
        )
        _, new_logprobs, entropy, new_values = policy(model)
        ref_logprobs = None
        if self.ref_model is not None:
            with torch.no_grad():
                ref_logprobs = policy(self.ref_model)[1]
        device = new_logprobs.device
        loss, stats = ppo_loss(
            new_logprobs,
            inputs["old_logprobs"].to(device),
            inputs["advantages"].to(device),
            new_values,
            inputs["old_values"].to(device),
            inputs["returns"].to(device),
            entropy,
            epsilon=self.args.epsilon,
            epsilon_high=self.args.epsilon_high,
            vf_coef=self.args.vf_coef,
            entropy_coef=self.args.entropy_coef,
            value_clip=self.args.value_clip,
            ref_logprobs=ref_logprobs,
            beta=self.args.beta,
        )
        stats_vector = self.accelerator.reduce(torch.stack(list(stats.values())).detach(), reduction="mean")
        stats = dict(zip(stats.keys(), stats_vector.tolist(), strict=True))
        metrics = self._metrics
        metrics["policy/loss"].append(stats["policy_loss"])
        metrics["policy/approx_kl"].append(stats["approx_kl"])
        metrics["policy/clip_fraction"].append(stats["clip_fraction"])
        metrics["value/loss"].append(stats["value_loss"])
        metrics["entropy"].append(stats["entropy"])
        metrics["kl"].append(stats["kl"])
        return loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        metrics = {}
        for key, values in self._metrics.items():
            # NaN (an undefined rate) and inf (a ratio of a rollout that bought nothing) would swamp the window's mean
            valid = [v for v in values if math.isfinite(v)]
            if _is_running_total(key):
                metrics[key] = valid[-1] if valid else None
            else:
                metrics[key] = sum(valid) / len(valid) if valid else None
        if self.run_state.review_totals is not None:
            # The reviews of this logging window (`reviewer/*`): a judge that fails or hardly varies shows here
            metrics.update((self.run_state.review_totals - self._logged_review_totals).metrics())
            self._logged_review_totals = self.run_state.review_totals
        logs.update(metrics)
        super().log(logs, start_time)
        self._metrics.clear()

    # Checkpoints: the value head in its own file, the resumable state per rank (`RunOutputsMixin`)
    def _resumable_state(self) -> dict:
        state = self.run_state.state_dict()
        if self._rollouts_ahead is not None:
            state["rollouts_in_flight"] = self._rollouts_ahead.state_dict()
        return state

    def _restore_resumable_state(self, state: dict) -> None:
        self.run_state.load_state_dict(state)
        if self._rollouts_ahead is not None:
            self._rollouts_ahead.load_state_dict(state.get("rollouts_in_flight"))
        if self.run_state.review_totals is not None:
            self._logged_review_totals = self.run_state.review_totals

    def _usage_totals(self) -> dict[str, dict[str, float]]:
        return self.run_state.usage_totals

    def _review_totals(self) -> ReviewStatistics | None:
        return self.run_state.review_totals

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None) -> None:
        super()._load_from_checkpoint(resume_from_checkpoint, model)
        load_value_head(
            self.accelerator.unwrap_model(model if model is not None else self.model), resume_from_checkpoint
        )

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        output_dir = output_dir if output_dir is not None else self.args.output_dir
        model = self.accelerator.unwrap_model(self.model)
        if state_dict is None:
            state_dict = model.state_dict()
        state_dict = {key: value for key, value in state_dict.items() if not key.startswith("v_head.")}
        super()._save(output_dir, state_dict=state_dict)
        if self.args.should_save:
            save_value_head(model, output_dir)
            has_curve = plot_training_curve(self.state.log_history, os.path.join(output_dir, TRAINING_CURVE_FILE))
            self._save_run_outputs(output_dir, training_curve=TRAINING_CURVE_FILE if has_curve else None)

    def _build_model_card(self, model_name=None, dataset_name=None, tags=None, training_curve: str | None = None):
        return build_operation_card(
            "policy_card.md",
            "text-classification",
            model_name=self._card_name(model_name),
            operations=self.operations,
            statistics=self.run_state.statistics,
            reward_weights=dict(zip(self.reward_func_names, self.reward_weights.tolist(), strict=True)),
            tags=self._card_tags(tags),
            queries_total=self.run_state.statistics.num_queries,
            usage_totals=self.run_state.usage_totals,
            name_or_path=self.accelerator.unwrap_model(self.model).config._name_or_path,
            hub_model_id=self.args.hub_model_id,
            dataset_name=dataset_name,
            example_state=format_state("Describe a city you would like to visit.", []),
            training_curve=training_curve,
        )
