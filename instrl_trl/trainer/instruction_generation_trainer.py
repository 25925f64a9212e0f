import math
import os
from collections import defaultdict
from copy import deepcopy
from pathlib import Path
from typing import ClassVar

import torch
from datasets import Dataset
from torch.distributions import Categorical
from transformers import AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase, TrainerCallback, set_seed

from ..backends.accounting import QUERIES_FILE, ROLES, QueryAccounting, write_queries_file
from ..backends.base import Reviewer, Rewriter
from ..backends.roles import build_role
from ..data.seeds import prepare_seed_dataset
from ..environment import STOP_ACTION, InstructionEnv, StepResult
from ..operations import OperationLibrary, build_operation_library
from ..policy import (
    add_value_head,
    build_policy,
    check_policy_labels,
    save_value_head,
    tokenize_states,
)
from ..rewards import get_reward_funcs
from ..rewards.scoring import reward_func_name, weighted_rewards
from ._trl import _BaseTrainer, disable_dropout_in_model, identity
from .checkpoint_state import CheckpointStateMixin
from .instruction_generation_config import InstructionGenerationConfig
from .policy_card import TRAINING_CURVE_FILE, build_policy_card, plot_training_curve
from .policy_usage import PolicyUsageMixin
from .ppo_loss import ppo_loss
from .query_budget import QueryBudgetCallback
from .rollout import RolloutBatch, collect_rollouts
from .run_statistics import RolloutTotals, RunStatistics
from .sampling import EpochSeededRepeatSampler


_USAGE_FIELDS = ("queries", "cache_hits", "failures", "prompt_tokens", "completion_tokens", "seconds")


def _is_running_total(key: str) -> bool:
    """Counts since the start of training are logged at their latest value, not averaged over the window."""
    return key == "cost/multiplier" or (key.startswith("queries/") and key != "queries/per_accepted")


class InstructionGenerationTrainer(PolicyUsageMixin, CheckpointStateMixin, _BaseTrainer):
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
            rewriter if rewriter is not None else build_role("rewriter", args.rewriter, self._cache_path(args)),
            reviewer if reviewer is not None else build_role("reviewer", args.reviewer, self._cache_path(args)),
            max_operations=args.max_operations,
            accounting=self.accounting,
            seed=args.seed,
        )
        self.reward_funcs = self._build_reward_funcs(
            reward_funcs if reward_funcs is not None else args.reward_funcs, args
        )
        self.reward_func_names = [reward_func_name(func) for func in self.reward_funcs]
        if args.reward_weights is not None and len(args.reward_weights) != len(self.reward_funcs):
            raise ValueError(
                f"`reward_weights` has {len(args.reward_weights)} values for {len(self.reward_funcs)} reward "
                f"functions ({self.reward_func_names}); give one weight per function."
            )
        weights = args.reward_weights if args.reward_weights is not None else [1.0] * len(self.reward_funcs)
        self.reward_weights = torch.tensor(weights, dtype=torch.float32)
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
        # `compute_loss` returns a minibatch mean; the Trainer divides by the accumulation steps itself
        self.loss_is_scaled_for_ga = False
        if self.ref_model is not None:
            self.ref_model = self.ref_model.to(self.accelerator.device)

        self._metrics = {"train": defaultdict(list), "eval": defaultdict(list)}
        self._step = 0
        self._buffer: dict | None = None
        self._buffered_inputs: list[dict] | None = None
        self.cost_multiplier = 0.0
        self.last_rollout: RolloutBatch | None = None
        # Totals over the whole run and all ranks: the query budget, the logs and the card read them
        self.statistics = RunStatistics(self.action_names)
        self.usage_totals = self.accounting.details()
        # Each rank samples its own actions; the seed + rank keeps a run reproducible
        self._rollout_generator = torch.Generator().manual_seed(args.seed + self.accelerator.process_index)

    @staticmethod
    def _cache_path(args: InstructionGenerationConfig) -> str | None:
        if args.response_cache is not None:
            return args.response_cache
        return os.path.join(args.output_dir, "response_cache.sqlite")

    @staticmethod
    def _build_reward_funcs(reward_funcs: list, args: InstructionGenerationConfig) -> list:
        # Names are built (stateful ones fresh, the novelty reward on `embedding_model`); callables are kept
        names = [func for func in reward_funcs if isinstance(func, str)]
        built = iter(get_reward_funcs(names, embedding_model=args.embedding_model))
        return [next(built) if isinstance(func, str) else func for func in reward_funcs]

    @property
    def total_queries(self) -> int:
        """LLM queries spent in training so far, over all processes."""
        return self.statistics.num_queries

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
    # same number of micro-steps, which DDP needs.
    def get_train_dataloader(self):
        return self._get_dataloader(
            dataset=self.train_dataset,
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
        )

    def _prepare_inputs(self, generation_batch: list[dict]) -> dict:
        steps_per_generation = self.args.steps_per_generation
        position = self._step % (steps_per_generation * self.args.num_iterations)
        if position == 0 or self._buffer is None:
            seeds = [row[self.args.instruction_column] for row in generation_batch]
            rollout = self.collect_rollout(seeds)
            self._buffer = rollout.to_dict(self.args.gamma, self.args.gae_lambda, self.args.normalize_advantage)
            self._log_rollout(rollout)
        if self._step % steps_per_generation == 0 or self._buffered_inputs is None:
            # A new PPO epoch over the same rollout: reshuffle its transitions into minibatches, as CleanRL does
            order = torch.randperm(len(self._buffer["states"]), generator=self._rollout_generator)
            self._buffered_inputs = [
                self._select(self._buffer, indices) for indices in torch.tensor_split(order, steps_per_generation)
            ]
        return self._buffered_inputs[self._step % steps_per_generation]

    @staticmethod
    def _select(buffer: dict, indices: torch.Tensor) -> dict:
        return {
            key: [value[i] for i in indices.tolist()] if isinstance(value, list) else value[indices]
            for key, value in buffer.items()
        }

    def training_step(self, model, inputs, num_items_in_batch=None):
        output = super().training_step(model, inputs, num_items_in_batch)
        self._step += 1
        return output

    def collect_rollout(self, seeds: list[str]) -> RolloutBatch:
        """Plays one episode per seed with the current policy (sampling) and scores every step."""
        model = self.accelerator.unwrap_model(self.model)
        was_training = model.training
        model.eval()
        try:
            rollout = collect_rollouts(self.env, self.policy_act_fn(), seeds, self.score_step)
        finally:
            model.train(was_training)
        self.last_rollout = rollout
        return rollout

    def score_step(self, result: StepResult) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Weighted sum of the reward functions for one environment step, minus the Lagrangian query cost."""
        rewards, components = weighted_rewards(
            self.reward_funcs,
            self.reward_weights,
            result.instructions,
            result.new_instructions,
            **result.reward_kwargs(),
        )
        rewards = rewards - self.cost_multiplier * torch.tensor(result.queries, dtype=torch.float32)
        return rewards, components

    def _log_rollout(self, rollout: RolloutBatch) -> None:
        # One all-reduce of a fixed-size vector, in the same order on every rank
        local = RolloutTotals.local_vector(rollout, self.action_names).to(self.accelerator.device)
        totals = RolloutTotals.from_vector(self.accelerator.reduce(local, reduction="sum").cpu(), self.action_names)
        self.statistics.add(totals)
        if self.args.cost_target is not None and totals.num_accepted:
            # Dual ascent on the Lagrange multiplier of "queries per accepted instruction <= cost_target"
            violation = totals.queries_per_accepted - self.args.cost_target
            self.cost_multiplier = max(0.0, self.cost_multiplier + self.args.cost_multiplier_lr * violation)

        rewards = torch.cat(rollout.rewards)
        metrics = self._metrics["train"]
        metrics["reward"].append(rewards.mean().item())
        metrics["reward_std"].append(rewards.std().item() if len(rewards) > 1 else 0.0)
        for name, values in rollout.reward_components.items():
            metrics[f"rewards/{name}/mean"].append(torch.nanmean(torch.cat(values)).item())
        metrics["episode/reward"].append(totals.reward_sum / totals.num_episodes)
        metrics["episode/length"].append(totals.num_transitions / totals.num_episodes)
        metrics["accepted_rate"].append(totals.accepted_rate)
        metrics["queries/total"].append(float(self.statistics.num_queries))
        metrics["queries/per_accepted"].append(totals.queries_per_accepted)
        metrics["cost/multiplier"].append(self.cost_multiplier)
        self.usage_totals = self._reduce_usage()
        for role, usage in self.usage_totals.items():
            if usage["queries"]:
                metrics[f"queries/{role}"].append(usage["queries"])
                metrics[f"queries/{role}/cache_hits"].append(usage["cache_hits"])
                metrics[f"queries/{role}/failures"].append(usage["failures"])
        metrics["queries/paid"].append(
            sum(usage["queries"] - usage["cache_hits"] for usage in self.usage_totals.values())
        )
        for name, count in totals.operation_counts.items():
            metrics[f"operations/{name}/frequency"].append(count / totals.num_transitions)

    def _reduce_usage(self) -> dict[str, dict[str, float]]:
        """Per-role usage (queries, cache hits, failures, tokens, seconds) summed over all processes."""
        local = torch.tensor(
            [[getattr(self.accounting.usage(role), name) for name in _USAGE_FIELDS] for role in ROLES],
            dtype=torch.float64,
            device=self.accelerator.device,
        )
        totals = self.accelerator.reduce(local, reduction="sum").cpu().tolist()
        return {
            role: dict(zip(_USAGE_FIELDS, values, strict=True)) for role, values in zip(ROLES, totals, strict=True)
        }

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if return_outputs:
            raise ValueError("The InstructionGenerationTrainer does not support returning outputs")
        encoded = tokenize_states(self.processing_class, inputs["states"], self.args.max_state_length, model.device)
        outputs = model(**encoded)
        distribution = Categorical(logits=outputs.logits.float())
        actions = inputs["actions"].to(model.device)
        new_logprobs = distribution.log_prob(actions)
        ref_logprobs = None
        if self.ref_model is not None:
            with torch.no_grad():
                ref_logits = self.ref_model(**encoded).logits.float()
            ref_logprobs = torch.log_softmax(ref_logits, -1).gather(-1, actions[:, None]).squeeze(-1)
        loss, stats = ppo_loss(
            new_logprobs,
            inputs["old_logprobs"].to(model.device),
            inputs["advantages"].to(model.device),
            outputs.state_values.float(),
            inputs["old_values"].to(model.device),
            inputs["returns"].to(model.device),
            distribution.entropy(),
            epsilon=self.args.epsilon,
            epsilon_high=self.args.epsilon_high,
            vf_coef=self.args.vf_coef,
            entropy_coef=self.args.entropy_coef,
            value_clip=self.args.value_clip,
            ref_logprobs=ref_logprobs,
            beta=self.args.beta,
        )
        mode = "train" if self.model.training else "eval"
        stats_vector = self.accelerator.reduce(torch.stack(list(stats.values())).detach(), reduction="mean")
        stats = dict(zip(stats.keys(), stats_vector.tolist(), strict=True))
        metrics = self._metrics[mode]
        metrics["policy/loss"].append(stats["policy_loss"])
        metrics["policy/approx_kl"].append(stats["approx_kl"])
        metrics["policy/clip_fraction"].append(stats["clip_fraction"])
        metrics["value/loss"].append(stats["value_loss"])
        metrics["entropy"].append(stats["entropy"])
        metrics["kl"].append(stats["kl"])
        returns = inputs["returns"]
        if len(returns) > 1 and returns.var() > 0:
            residual_var = (returns - outputs.state_values.detach().float().cpu()).var()
            metrics["value/explained_variance"].append((1 - residual_var / returns.var()).item())
        if self.args.target_kl is not None and stats["approx_kl"] > self.args.target_kl:
            # Early stop of the PPO epochs: drop the rollout, the next micro-step collects a fresh one
            self._buffer = None
            self._buffered_inputs = None
        return loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        mode = "train" if self.model.training else "eval"
        metrics = {}
        for key, values in self._metrics[mode].items():
            valid = [v for v in values if not math.isnan(v)]
            if _is_running_total(key):
                metrics[key] = valid[-1] if valid else None
            else:
                metrics[key] = sum(valid) / len(valid) if valid else None
        if mode == "eval":
            metrics = {f"eval_{key}": value for key, value in metrics.items()}
        logs.update(metrics)
        super().log(logs, start_time)
        self._metrics[mode].clear()

    # Saving: the value head in its own file, the extra training state per rank
    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        output_dir = output_dir if output_dir is not None else self.args.output_dir
        model = self.accelerator.unwrap_model(self.model)
        if state_dict is None:
            state_dict = model.state_dict()
        state_dict = {key: value for key, value in state_dict.items() if not key.startswith("v_head.")}
        super()._save(output_dir, state_dict=state_dict)
        if self.args.should_save:
            save_value_head(model, output_dir)
            write_queries_file(os.path.join(output_dir, QUERIES_FILE), self.usage_totals)
            curve = TRAINING_CURVE_FILE
            if not plot_training_curve(self.state.log_history, os.path.join(output_dir, curve)):
                curve = None
            self._build_model_card(training_curve=curve).save(os.path.join(output_dir, "README.md"))

    def _build_model_card(self, model_name=None, dataset_name=None, tags=None, training_curve: str | None = None):
        name_or_path = self.accelerator.unwrap_model(self.model).config._name_or_path
        tags = [tags] if isinstance(tags, str) else list(tags or [])
        return build_policy_card(
            model_name=model_name or (self.args.hub_model_id or Path(self.args.output_dir).name).split("/")[-1],
            operations=self.operations,
            statistics=self.statistics,
            reward_weights=dict(zip(self.reward_func_names, self.reward_weights.tolist(), strict=True)),
            tags=sorted({*self._tag_names, *tags}),
            base_model=name_or_path if name_or_path and not os.path.isdir(name_or_path) else None,
            hub_model_id=self.args.hub_model_id,
            dataset_name=dataset_name,
            training_curve=training_curve,
        )

    def create_model_card(self, model_name: str | None = None, dataset_name: str | None = None, tags=None):
        """Renders the policy card from `model_cards/policy_card.md` into `output_dir/README.md`."""
        if not self.is_world_process_zero():
            return
        card = self._build_model_card(model_name, dataset_name, tags)
        card.save(os.path.join(self.args.output_dir, "README.md"))
