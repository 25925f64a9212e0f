import json
import logging
import time

import pytest
import torch
from datasets import Dataset
from transformers import AutoModelForSequenceClassification, TrainerCallback

from instrl_trl import InstructionGenerationConfig, InstructionGenerationTrainer
from instrl_trl.backends.base import ChoiceScores, TextGenerator, Usage
from instrl_trl.policy import UPDATE_TOKENS_PER_PASS, VALUE_HEAD_FILE, build_policy
from instrl_trl.runs.checkpoints import find_resume_checkpoint, is_complete_checkpoint
from instrl_trl.trainer import run_outputs
from instrl_trl.trainer.advantages import explained_variance
from instrl_trl.trainer.rollout_buffer import RolloutBuffer
from instrl_trl.trainer.state import EXTRA_STATE_FILE
from tests.simulated_kill import SimulatedKill


# Shrunken on purpose so that a test trains in seconds on 2 CPU cores: 8 seeds per micro-step, 2 micro-steps per
# rollout, 2 PPO epochs. The novelty reward is left out (it loads MiniLM; it has its own tests).
def make_config(tmp_path, **overrides) -> InstructionGenerationConfig:
    kwargs = {
        "output_dir": str(tmp_path / "policy"),
        "per_device_train_batch_size": 8,
        "steps_per_generation": 2,
        "num_iterations": 2,
        "max_steps": 4,
        "learning_rate": 5e-3,
        "logging_steps": 2,
        "save_strategy": "no",
        "report_to": "none",
        "reward_funcs": ["information_gain", "elimination", "query_cost"],
        "reward_weights": [1.0, 1.0, 0.25],
        "max_state_length": 64,
        "disable_tqdm": True,
        "seed": 7,
    }
    kwargs.update(overrides)
    return InstructionGenerationConfig(**kwargs)


def test_train(tiny_backbone, quickstart_seeds, tmp_path):
    trainer = InstructionGenerationTrainer(
        model=tiny_backbone, args=make_config(tmp_path), train_dataset=quickstart_seeds
    )
    previous = {name: param.detach().clone() for name, param in trainer.model.named_parameters()}

    trainer.train()

    # Rollout metrics are logged with the step that collected the rollout, PPO metrics with every step
    logged = {key: value for log in trainer.state.log_history[:-1] for key, value in log.items()}
    for key in (
        "loss",
        "reward",
        "reward_std",
        "rewards/information_gain_reward/mean",
        "episode/reward",
        "episode/length",
        "accepted_rate",
        "queries/total",
        "queries/per_evolution",
        "operations/add_constraints/frequency",
        "operations/stop/frequency",
        "policy/approx_kl",
        "policy/clip_fraction",
        "value/loss",
        "entropy",
        "kl",
    ):
        assert key in logged, key
    assert logged["queries/total"] > 0
    assert 0.0 <= logged["accepted_rate"] <= 1.0
    assert "server/fill" not in logged  # no server: the rules engine
    first_rollout_log = trainer.state.log_history[0]
    frequencies = [value for key, value in first_rollout_log.items() if key.startswith("operations/")]
    assert sum(frequencies) == pytest.approx(1.0)
    # Every parameter of the policy changed, the value head included
    for name, param in trainer.model.named_parameters():
        assert not torch.equal(param, previous[name]), f"{name} did not change"


def test_save_model_writes_policy_value_head_card_and_queries(tiny_backbone, quickstart_seeds, tmp_path):
    trainer = InstructionGenerationTrainer(
        model=tiny_backbone, args=make_config(tmp_path, max_steps=2), train_dataset=quickstart_seeds
    )
    trainer.train()
    output_dir = tmp_path / "saved"
    trainer.save_model(str(output_dir))

    for filename in ("config.json", "model.safetensors", VALUE_HEAD_FILE, "README.md", "queries.json"):
        assert (output_dir / filename).is_file(), filename
    assert (output_dir / "training_curve.png").is_file()
    assert (
        "![Mean episode reward and accepted rate during training](training_curve.png)"
        in (output_dir / "README.md").read_text()
    )
    queries = json.loads((output_dir / "queries.json").read_text())
    assert queries["total"] == trainer.total_queries > 0
    card = (output_dir / "README.md").read_text()
    assert "add_constraints" in card and "instrl-trl" in card and "{{" not in card.split("```bibtex")[0]
    assert str(tmp_path) not in card

    # The export is a clean sequence classifier: no value-head keys, operation names as labels
    exported = AutoModelForSequenceClassification.from_pretrained(str(output_dir))
    assert list(exported.config.id2label.values()) == trainer.action_names
    assert not any(key.startswith("v_head") for key in exported.state_dict())

    # build_policy restores the value head too: same logits and values
    reloaded = build_policy(str(output_dir), trainer.action_names).eval()
    model = trainer.model.eval()
    encoded = trainer.processing_class(["operations: none | words: 3 | Name three rivers."], return_tensors="pt")
    with torch.no_grad():
        expected, actual = model(**encoded), reloaded(**encoded)
    torch.testing.assert_close(actual.logits, expected.logits)
    torch.testing.assert_close(actual.state_values, expected.state_values)


def test_resume_from_checkpoint_is_exact(tiny_backbone, quickstart_seeds, tmp_path):
    # steps_per_generation=2, num_iterations=2: the checkpoint at step 3 sits in the middle of a rollout's PPO epochs
    config = {"max_steps": 6, "save_strategy": "steps", "save_steps": 3}
    full = InstructionGenerationTrainer(
        model=tiny_backbone, args=make_config(tmp_path / "full", **config), train_dataset=quickstart_seeds
    )
    full.train()

    resumed = InstructionGenerationTrainer(
        model=tiny_backbone, args=make_config(tmp_path / "resumed", **config), train_dataset=quickstart_seeds
    )
    checkpoint = tmp_path / "full" / "policy" / "checkpoint-3"
    assert (checkpoint / EXTRA_STATE_FILE.format(rank=0)).is_file()
    resumed.train(resume_from_checkpoint=str(checkpoint))

    assert resumed.total_queries == full.total_queries
    assert resumed.accounting.as_dict() == full.accounting.as_dict()
    for (name, expected), (_, actual) in zip(
        full.model.named_parameters(), resumed.model.named_parameters(), strict=True
    ):
        torch.testing.assert_close(actual, expected, rtol=0, atol=1e-6, msg=f"{name} differs after resume")


def test_query_budget_stops_training(tiny_backbone, quickstart_seeds, tmp_path):
    trainer = InstructionGenerationTrainer(
        model=tiny_backbone, args=make_config(tmp_path, max_steps=50, query_budget=40), train_dataset=quickstart_seeds
    )
    trainer.train()
    assert trainer.total_queries >= 40
    assert trainer.state.global_step < 50


def test_cost_target_raises_the_lagrange_multiplier(tiny_backbone, quickstart_seeds, tmp_path):
    # No policy reaches 1 LLM query per accepted evolution (a rewrite and a review are 2), so the multiplier must rise
    trainer = InstructionGenerationTrainer(
        model=tiny_backbone,
        args=make_config(tmp_path, max_steps=4, cost_target=1.0, cost_multiplier_lr=0.1),
        train_dataset=quickstart_seeds,
    )
    trainer.train()
    assert trainer.run_state.cost_multiplier > 0
    multipliers = [log["cost/multiplier"] for log in trainer.state.log_history if "cost/multiplier" in log]
    assert multipliers[-1] > 0


def test_callbacks_see_the_logs(tiny_backbone, quickstart_seeds, tmp_path):
    class Recorder(TrainerCallback):
        def __init__(self):
            self.logs = []

        def on_log(self, args, state, control, logs=None, **kwargs):
            self.logs.append(logs)

    recorder = Recorder()
    trainer = InstructionGenerationTrainer(
        model=tiny_backbone, args=make_config(tmp_path), train_dataset=quickstart_seeds, callbacks=[recorder]
    )
    trainer.train()
    assert any("queries/per_evolution" in logs for logs in recorder.logs)


def test_skips_empty_and_non_string_seeds(tiny_backbone, tmp_path, caplog):
    rows = [f"Describe a city number {i} you would like to visit." for i in range(16)] + ["", "   ", None]
    trainer = InstructionGenerationTrainer(
        model=tiny_backbone, args=make_config(tmp_path), train_dataset=Dataset.from_dict({"instruction": rows})
    )
    assert len(trainer.train_dataset) == 16


@pytest.mark.parametrize(
    ("dataset", "overrides", "match"),
    [
        (Dataset.from_dict({"instruction": []}), {}, "no usable instruction"),
        (Dataset.from_dict({"instruction": ["", None]}), {}, "no usable instruction"),
        (Dataset.from_dict({"prompt": ["Name a river."] * 16}), {}, "instruction_column"),
        (Dataset.from_dict({"instruction": ["Name a river."] * 4}), {}, "generation_batch_size"),
        (Dataset.from_dict({"instruction": ["Name a river."] * 16}), {"operations": ["teleport"]}, "teleport"),
        (Dataset.from_dict({"instruction": ["Name a river."] * 16}), {"reward_funcs": ["luck"]}, "luck"),
    ],
)
def test_bad_input_fails_before_any_query(tiny_backbone, tmp_path, dataset, overrides, match):
    with pytest.raises(ValueError, match=match):
        trainer = InstructionGenerationTrainer(
            model=tiny_backbone, args=make_config(tmp_path, **overrides), train_dataset=dataset
        )
        assert trainer.total_queries == 0


def test_custom_column_and_user_operation(tiny_backbone, tmp_path):
    operations_file = tmp_path / "ops.yaml"
    operations_file.write_text(
        "- name: add_audience\n"
        "  description: Name the audience of the answer.\n"
        "  prompt_template: 'Rewrite the prompt for a named audience.\\n#Given Prompt#:\\n{instruction}'\n"
        "  backend_options:\n"
        "    rules:\n"
        "      strategy: append_clause\n"
        "      texts: ['Write it for retired engineers who volunteer at a science museum.']\n"
    )
    dataset = Dataset.from_dict({"prompt": [f"Explain how tide number {i} forms." for i in range(16)]})
    trainer = InstructionGenerationTrainer(
        model=tiny_backbone,
        args=make_config(tmp_path, instruction_column="prompt", operations_file=str(operations_file), max_steps=2),
        train_dataset=dataset,
    )
    assert trainer.action_names[-2:] == ["add_audience", "stop"]
    assert trainer.model.config.id2label[len(trainer.action_names) - 2] == "add_audience"
    trainer.train()
    assert trainer.total_queries > 0


def test_same_seed_same_policy(tiny_backbone, quickstart_seeds, tmp_path):
    results = []
    for run in ("a", "b"):
        trainer = InstructionGenerationTrainer(
            model=tiny_backbone, args=make_config(tmp_path / run, max_steps=2), train_dataset=quickstart_seeds
        )
        trainer.train()
        results.append((trainer.total_queries, [p.detach().clone() for p in trainer.model.parameters()]))
    assert results[0][0] == results[1][0]
    for a, b in zip(results[0][1], results[1][1], strict=True):
        assert torch.equal(a, b)


def _scripted_llm(messages: list[dict]) -> str:
    """Reviewer prompts get a verdict; rewriter prompts get the given prompt with one more requirement."""
    prompt = messages[-1]["content"]
    if "#Second Prompt#" in prompt:
        return "Not Equal"
    given = prompt.split("#Given Prompt#:", 1)[1].split("#Rewritten Prompt#", 1)[0]
    given = given.split("Reply with the rewritten prompt only.", 1)[0].strip()
    return f"{given} Support each point with a concrete example from practice."


def test_llm_roles_through_an_endpoint_are_counted_and_cached(tiny_backbone, quickstart_seeds, tmp_path):
    from tests.backends.openai_server import OpenAIServer

    with OpenAIServer(responder=_scripted_llm) as server:
        role = {"backend": "endpoint", "model": "served", "base_url": server.base_url, "max_retries": 0}
        # the scripted server answers in text only (no logprobs): the reviewer parses its verdicts
        reviewer = {**role, "verdict_mode": "parse"}
        overrides = {
            "max_steps": 2,
            "rewriter": role,
            "reviewer": reviewer,
            "response_cache": str(tmp_path / "c.sqlite"),
        }
        first = InstructionGenerationTrainer(
            model=tiny_backbone, args=make_config(tmp_path / "a", **overrides), train_dataset=quickstart_seeds
        )
        first.train()
        first.save_model()
        paid = len(server.requests)
        assert paid > 0
        # Its pipelined rollouts say how full they kept the server (the rules-engine run of `test_train` has no key)
        assert any("server/fill" in log for log in first.state.log_history)
        queries = json.loads((tmp_path / "a" / "policy" / "queries.json").read_text())
        assert queries["per_role"]["rewriter"]["queries"] > 0
        assert queries["per_role"]["reviewer"]["queries"] > 0
        assert queries["per_role"]["reviewer"]["failures"] == 0
        assert queries["per_role"]["rewriter"]["completion_tokens"] > 0

        # The same run again: every answer comes from the cache, no new request reaches the server
        second = InstructionGenerationTrainer(
            model=tiny_backbone, args=make_config(tmp_path / "b", **overrides), train_dataset=quickstart_seeds
        )
        second.train()
        assert len(server.requests) == paid
        assert second.total_queries == first.total_queries
        usage = second.run_state.usage_totals["rewriter"]
        assert usage["cache_hits"] == usage["queries"] > 0
        logged = {key for log in second.state.log_history for key in log}
        assert {"queries/rewriter/cache_hits", "queries/paid"} <= logged


def test_first_ppo_step_has_ratio_one_at_any_rollout_temperature(tiny_backbone, quickstart_seeds, tmp_path):
    # One micro-step per rollout, one PPO epoch: every step trains on a rollout of the weights it is computed with, so
    # the new log-probabilities equal the old ones. Temperature 1.0 hides a loss that ignores the temperature.
    config = {"rollout_temperature": 0.5, "num_iterations": 1, "steps_per_generation": 1, "logging_steps": 1}
    trainer = InstructionGenerationTrainer(
        model=tiny_backbone, args=make_config(tmp_path, **config), train_dataset=quickstart_seeds
    )
    trainer.train()
    approx_kls = [log["policy/approx_kl"] for log in trainer.state.log_history if "policy/approx_kl" in log]
    assert len(approx_kls) == trainer.args.max_steps
    assert approx_kls == [0.0] * len(approx_kls)
    clip_fractions = [
        log["policy/clip_fraction"] for log in trainer.state.log_history if "policy/clip_fraction" in log
    ]
    assert clip_fractions == [0.0] * len(clip_fractions)


def test_a_rollout_smaller_than_an_endpoints_concurrency_is_warned_about(
    tiny_backbone, quickstart_seeds, tmp_path, caplog
):
    def build(max_concurrency):
        rewriter = {
            "backend": "endpoint",
            "model": "m",
            "base_url": "http://127.0.0.1:9/v1",
            "max_concurrency": max_concurrency,
        }
        config = make_config(tmp_path, rewriter=rewriter)  # 8 seeds per micro-step, 2 micro-steps: 16 episodes
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="instrl_trl.trainer.server_fill"):
            InstructionGenerationTrainer(model=tiny_backbone, args=config, train_dataset=quickstart_seeds)
        return [record.getMessage() for record in caplog.records if "rollout plays" in record.getMessage()]

    [warning] = build(max_concurrency=64)
    assert "16 episodes per process" in warning and "takes 64 queries at once" in warning
    assert "http://127.0.0.1:9/v1" in warning and "`generation_batch_size`" in warning
    assert build(max_concurrency=16) == []  # as many episodes as slots: nothing to say


def test_each_rollout_hands_what_the_last_one_freed_back(tiny_backbone, quickstart_seeds, tmp_path, monkeypatch):
    # Once a new rollout replaced the last one (its buffer and minibatches), and only then: a long run at a server
    # would otherwise keep GBs its threads freed (benchmarks/rollout_memory.py)
    from instrl_trl.trainer import instruction_generation_trainer

    released_at = []

    def count_release():
        released_at.append(trainer.run_state.step)
        return True

    monkeypatch.setattr(instruction_generation_trainer, "release_freed_memory", count_release)
    trainer = InstructionGenerationTrainer(
        model=tiny_backbone, args=make_config(tmp_path, max_steps=12), train_dataset=quickstart_seeds
    )
    trainer.train()
    assert released_at == [0, 4, 8]  # three rollouts of 2 micro-steps x 2 epochs


def test_a_rollout_paced_by_its_policy_says_so_once(tiny_backbone, quickstart_seeds, tmp_path, caplog, monkeypatch):
    # A policy that takes 0.1 s per forward pass while the server answers in 0.01 s: pipelined rollouts keep the
    # server's 4 slots mostly idle while the loop acts, and the run says so once, not at every rollout, naming the
    # policy
    from instrl_trl.trainer import rollout_playing
    from tests.backends.openai_server import OpenAIServer

    act = rollout_playing.act

    def slow_act(*args, **kwargs):
        time.sleep(0.1)
        return act(*args, **kwargs)

    monkeypatch.setattr(rollout_playing, "act", slow_act)
    with OpenAIServer(responder=_scripted_llm, latency=0.01) as server:
        rewriter = {"backend": "endpoint", "model": "served", "base_url": server.base_url, "max_retries": 0,
                    "max_concurrency": 4}  # fmt: skip
        config = make_config(tmp_path, rewriter=rewriter, max_steps=12, logging_steps=4)  # three rollouts of 16
        trainer = InstructionGenerationTrainer(model=tiny_backbone, args=config, train_dataset=quickstart_seeds)
        with caplog.at_level(logging.WARNING, logger="instrl_trl.trainer.server_fill"):
            trainer.train()
        base_url = server.base_url
    warnings = [record.getMessage() for record in caplog.records if "kept the server waiting" in record.getMessage()]
    assert len(warnings) == 1
    assert f"A rollout kept the server waiting on this process: {base_url}: " in warnings[0]
    assert "This process held the calls back: the policy's forward passes" in warnings[0]
    # Each rollout's fill is logged, and how much of the free slot-time passed while the loop worked: most of it
    fills = [log["server/fill"] for log in trainer.state.log_history if "server/fill" in log]
    assert len(fills) == 3 and all(fill < 0.5 for fill in fills)
    held_back = [log["server/held_back"] for log in trainer.state.log_history if "server/held_back" in log]
    assert len(held_back) == 3 and all(share > 0.5 for share in held_back)


class _Wrapped(torch.nn.Module):
    """Stands for DDP's or DeepSpeed's wrapper: the policy inside, its device, its forward."""

    def __init__(self, model):
        super().__init__()
        self.module, self.device = model, model.device

    def forward(self, **inputs):
        return self.module(**inputs)


def test_the_update_runs_length_sorted_passes_unless_the_model_is_wrapped(tiny_backbone, quickstart_seeds, tmp_path):
    trainer = InstructionGenerationTrainer(
        model=tiny_backbone, args=make_config(tmp_path, per_device_train_batch_size=32), train_dataset=quickstart_seeds
    )
    rollout = trainer.collect_rollout(quickstart_seeds["instruction"][:32])
    buffer = RolloutBuffer.from_rollout(rollout, 0.99, 0.95, normalize_advantage=True)
    [minibatch] = buffer.minibatches(1, torch.Generator().manual_seed(0))
    max_length = trainer.args.max_state_length
    lengths = [
        len(ids)
        for ids in trainer.processing_class(minibatch["states"], truncation=True, max_length=max_length)["input_ids"]
    ]
    assert len(lengths) * max(lengths) > 2 * UPDATE_TOKENS_PER_PASS  # one pass would be more than two budgets
    model = trainer.model.train()
    shapes = []
    hook = model.register_forward_pre_hook(
        lambda module, args, kwargs: shapes.append(tuple(kwargs["input_ids"].shape)), with_kwargs=True
    )
    try:
        alone = trainer.compute_loss(model, minibatch)
        passes = list(shapes)
        shapes.clear()
        wrapped = trainer.compute_loss(_Wrapped(model), minibatch)
    finally:
        hook.remove()
    # A lone CPU model: passes of at most the budget, every state once; wrapped (its hooks expect one forward pass
    # per backward): one pass over the whole minibatch, padded to its longest
    assert len(passes) > 2 and all(rows * width <= UPDATE_TOKENS_PER_PASS or rows == 1 for rows, width in passes)
    assert sum(rows for rows, _ in passes) == len(lengths)
    assert shapes == [(len(lengths), max(lengths))]
    # The same loss, up to padding's float rounding, and it is differentiated
    torch.testing.assert_close(alone, wrapped, atol=1e-5, rtol=1e-5)
    alone.backward()
    assert all(parameter.grad is not None for parameter in model.parameters() if parameter.requires_grad)


def test_explained_variance_once_per_rollout_against_the_rollout_values(tiny_backbone, quickstart_seeds, tmp_path):
    # 4 micro-steps per rollout (2 minibatches x 2 PPO epochs): steps 1 and 5 collect, steps 2-4 reuse the buffer
    trainer = InstructionGenerationTrainer(
        model=tiny_backbone, args=make_config(tmp_path, max_steps=5, logging_steps=1), train_dataset=quickstart_seeds
    )
    trainer.train()
    logged = {log["step"]: log for log in trainer.state.log_history if "loss" in log}
    assert [step for step, log in logged.items() if log.get("value/explained_variance") is not None] == [1, 5]
    buffer = trainer.run_state.buffer  # the rollout of step 5, as collected
    expected = explained_variance(buffer.old_values, buffer.returns).item()
    assert logged[5]["value/explained_variance"] == pytest.approx(expected, rel=1e-6)
    # The advantages PPO trains on are GAE's, normalised
    assert buffer.advantages.mean().item() == pytest.approx(0.0, abs=1e-6)
    assert buffer.advantages.std().item() == pytest.approx(1.0, abs=1e-5)


class _ScriptedJudge(TextGenerator):
    """
    Scores the two verdicts without a model: a constant P(gain) when `probability` is given, else the rules
    reviewer's verdict as P = 0.9 or 0.1 (a judge that discriminates); every `fail_every`-th review fails.
    """

    backend = "scripted"
    choice_modes = ("likelihood",)

    def __init__(self, probability: float | None = None, fail_every: int = 0):
        self.probability = probability
        self.fail_every = fail_every
        self.num_scored = 0

    def generate(self, prompts, seeds=None, **generation_kwargs):
        raise AssertionError("a likelihood judge generates nothing")

    def score_choices(self, prompts, choices, mode):
        from instrl_trl.backends.rules import RulesReviewer

        scores = []
        for prompt in prompts:
            self.num_scored += 1
            if self.fail_every and self.num_scored % self.fail_every == 0:
                scores.append(ChoiceScores(None, None, Usage(failed=True)))
                continue
            text = prompt[-1]["content"]
            original, rewritten = text.split("#First Prompt#:\n", 1)[1].split("\n\n#Second Prompt#:\n", 1)
            rewritten = rewritten.split("\n\nReply with exactly", 1)[0]
            p = self.probability
            if p is None:
                p = 0.9 if RulesReviewer().review([original], [rewritten])[0].information_gain else 0.1
            scores.append(ChoiceScores((p, 1 - p), None, Usage()))
        return scores


def _train_with_judge(tiny_backbone, quickstart_seeds, tmp_path, judge: TextGenerator):
    from instrl_trl.backends.llm import LLMReviewer
    from instrl_trl.backends.rules import RulesReviewer

    reviewer = LLMReviewer(judge, reference=RulesReviewer())
    # One PPO epoch: steps 1 and 3 collect a rollout of 32 episodes each
    config = make_config(tmp_path, max_steps=4, logging_steps=1, num_iterations=1, per_device_train_batch_size=16)
    trainer = InstructionGenerationTrainer(
        model=tiny_backbone, args=config, train_dataset=quickstart_seeds, reviewer=reviewer
    )
    trainer.train()
    trainer.save_model()
    queries = json.loads((tmp_path / "policy" / "queries.json").read_text())
    windows = [log for log in trainer.state.log_history if "reviewer/p_gain_std" in log]
    return trainer, queries, windows


def test_a_judge_that_hardly_varies_is_logged_and_warned_about(tiny_backbone, quickstart_seeds, tmp_path, caplog):
    with caplog.at_level("WARNING", logger="instrl_trl.backends.llm"):
        trainer, queries, windows = _train_with_judge(
            tiny_backbone, quickstart_seeds, tmp_path, _ScriptedJudge(probability=0.51, fail_every=4)
        )
    assert caplog.text.count("does not discriminate") == 1
    # One window per rollout, each with what its reviews said
    assert [log["step"] for log in windows] == [1, 3]
    for log in windows:
        assert log["reviewer/p_gain_mean"] == pytest.approx(0.51)
        assert log["reviewer/p_gain_std"] == pytest.approx(0.0, abs=1e-6)
        assert 0.0 < log["reviewer/failed_share"] < 0.5  # one review in four fails
    # The run's totals agree with the query accounting, counted elsewhere
    judged, usage = queries["reviewer"], queries["per_role"]["reviewer"]
    assert judged["reviews"] == usage["queries"] == trainer.run_state.usage_totals["reviewer"]["queries"] >= 20
    assert judged["failed"] == usage["failures"] == usage["queries"] // 4
    assert judged["failed_share"] == pytest.approx(usage["failures"] / usage["queries"])
    assert judged["compared"] == judged["scored"] == usage["queries"] - usage["failures"]
    assert judged["p_gain_std"] == pytest.approx(0.0, abs=1e-6)


def test_a_judge_that_discriminates_is_logged_without_warning(tiny_backbone, quickstart_seeds, tmp_path, caplog):
    with caplog.at_level("WARNING", logger="instrl_trl.backends.llm"):
        _, queries, windows = _train_with_judge(tiny_backbone, quickstart_seeds, tmp_path, _ScriptedJudge())
    assert "does not discriminate" not in caplog.text
    assert len(windows) == 2 and all(log["reviewer/p_gain_std"] > 0.05 for log in windows)
    # It says what the rules reviewer says: agreement 1 (a wrong pairing of reviews and references would break it)
    assert [log["reviewer/agreement"] for log in windows] == [1.0, 1.0]
    assert queries["reviewer"]["agreement"] == 1.0 and queries["reviewer"]["failed"] == 0
    assert queries["reviewer"]["p_gain_std"] > 0.05


def test_a_kill_while_our_state_is_saved_leaves_the_previous_checkpoint_to_resume(
    tiny_backbone, quickstart_seeds, tmp_path, monkeypatch
):
    # Issue 22: our per-rank state was written after `trainer_state.json` and after the older checkpoints were rotated
    # away, so a kill while writing it left a "complete" checkpoint that every rerun failed to read (EOFError).
    config = {"max_steps": 6, "save_strategy": "steps", "save_steps": 3, "save_total_limit": 1}
    full = InstructionGenerationTrainer(
        model=tiny_backbone, args=make_config(tmp_path / "full", **config), train_dataset=quickstart_seeds
    )
    full.train()

    output_dir = tmp_path / "killed" / "policy"
    killed = InstructionGenerationTrainer(
        model=tiny_backbone, args=make_config(tmp_path / "killed", **config), train_dataset=quickstart_seeds
    )
    save = run_outputs.save_resumable_state

    def save_then_die_at_step_6(state, checkpoint_dir, filename):
        if checkpoint_dir.endswith("checkpoint-6"):
            raise SimulatedKill
        save(state, checkpoint_dir, filename)

    monkeypatch.setattr(run_outputs, "save_resumable_state", save_then_die_at_step_6)
    with pytest.raises(SimulatedKill):
        killed.train()
    monkeypatch.undo()

    assert not is_complete_checkpoint(str(output_dir / "checkpoint-6"))
    checkpoint = find_resume_checkpoint(str(output_dir))
    assert checkpoint == str(output_dir / "checkpoint-3")
    resumed = InstructionGenerationTrainer(
        model=tiny_backbone, args=make_config(tmp_path / "killed", **config), train_dataset=quickstart_seeds
    )
    resumed.train(resume_from_checkpoint=checkpoint)
    assert resumed.accounting.as_dict() == full.accounting.as_dict()
    for (name, expected), (_, actual) in zip(
        full.model.named_parameters(), resumed.model.named_parameters(), strict=True
    ):
        torch.testing.assert_close(actual, expected, rtol=0, atol=1e-6, msg=f"{name} differs after resume")
