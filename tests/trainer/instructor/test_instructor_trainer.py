import json
import logging

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from instrl_trl.operations import build_operation_library
from instrl_trl.policies.instructor import choose_operations_with_instructor
from instrl_trl.stages.train_instructor import build_environment_factory, load_instructor_seeds
from instrl_trl.trainer.instructor import InstructorConfig, InstructorTrainer
from instrl_trl.trainer.instructor.instructor_trainer import EXTRA_STATE_FILE


def make_config(output_dir, **kwargs) -> InstructorConfig:
    # Small on purpose: 2 groups of 4 completions a step, short turns, no novelty reward (it loads a sentence model)
    values = {
        "output_dir": str(output_dir),
        "use_cpu": True,
        "max_steps": 2,
        "per_device_train_batch_size": 8,
        "num_generations": 4,
        "max_completion_length": 256,
        "max_operations": 3,
        "learning_rate": 1e-3,
        "logging_steps": 1,
        "report_to": "none",
        "save_strategy": "no",
        "seed": 0,
        "reward_funcs": ["information_gain", "elimination", "query_cost"],
        "operation_reward_weights": [1.0, 1.0, 0.25],
    }
    return InstructorConfig(**{**values, **kwargs})


def make_trainer(config, model) -> InstructorTrainer:
    return InstructorTrainer(
        model=model,
        args=config,
        train_dataset=load_instructor_seeds(config),
        environment_factory=build_environment_factory(config),
    )


def test_grpo_steps_change_every_weight_and_count_queries(tiny_instructor, tmp_path, silence_trl):
    trainer = make_trainer(make_config(tmp_path), tiny_instructor)
    before = {name: param.detach().clone() for name, param in trainer.model.named_parameters()}
    trainer.train()
    unchanged = [name for name, param in trainer.model.named_parameters() if torch.equal(param.detach(), before[name])]
    assert not unchanged, f"parameters unchanged by training: {unchanged}"
    logs = [log for log in trainer.state.log_history if "loss" in log]
    assert len(logs) == 2 and all("rewards/InstructionEnvironment/mean" in log for log in logs)
    # Every environment call went through the shared accounting, and the log reports it
    accounting = trainer.accounting.as_dict()
    assert accounting["rewriter"] > 0 and accounting["reviewer"] <= accounting["rewriter"]
    assert logs[-1]["queries/total"] == accounting["rewriter"] + accounting["reviewer"]
    assert trainer.statistics.num_episodes == 16  # 2 steps x 8 completions

    trainer.save_model(str(tmp_path / "saved"))
    saved = tmp_path / "saved"
    assert AutoModelForCausalLM.from_pretrained(saved).config.vocab_size == trainer.model.config.vocab_size
    card = (saved / "README.md").read_text()
    assert "# Instructor card for" in card and "{{ " not in card and "`stop`" in card
    assert json.loads((saved / "queries.json").read_text())["total"] == sum(accounting.values())
    assert AutoTokenizer.from_pretrained(saved).response_template is not None


def test_a_step_with_fewer_completions_than_an_endpoints_concurrency_is_warned_about(
    tiny_instructor, tmp_path, caplog
):
    rewriter = {"backend": "endpoint", "model": "m", "base_url": "http://127.0.0.1:9/v1", "max_concurrency": 64}
    config = make_config(tmp_path, rewriter=rewriter)  # 8 completions a step, each an episode
    with caplog.at_level(logging.WARNING, logger="instrl_trl.trainer.server_fill"):
        make_trainer(config, tiny_instructor)
    [warning] = [record.getMessage() for record in caplog.records if "rollout plays" in record.getMessage()]
    assert "8 episodes per process" in warning and "the rewriter's endpoint" in warning and "64 queries" in warning


def test_resume_restores_counts_and_episode_totals(tiny_instructor, tmp_path, silence_trl):
    first = make_trainer(make_config(tmp_path, save_strategy="steps", save_steps=1), tiny_instructor)
    first.train()
    checkpoint = tmp_path / "checkpoint-1"
    state = torch.load(checkpoint / EXTRA_STATE_FILE.format(rank=0), weights_only=False)
    assert state["statistics"]["num_episodes"] == 8

    resumed = make_trainer(make_config(tmp_path / "resumed"), tiny_instructor)
    resumed.train(resume_from_checkpoint=str(checkpoint))
    assert resumed.state.global_step == 2
    # Without the restored state, the run would count only its own step
    assert resumed.statistics.num_episodes == 16
    assert resumed.accounting["rewriter"] >= state["accounting"]["rewriter"]["queries"]
    final = torch.load(tmp_path / "checkpoint-2" / EXTRA_STATE_FILE.format(rank=0), weights_only=False)
    assert final["statistics"]["num_episodes"] == 16


def test_choose_operations_with_instructor(tiny_instructor, tmp_path):
    config = make_config(tmp_path)
    factory = build_environment_factory(config)
    model = AutoModelForCausalLM.from_pretrained(tiny_instructor)
    tokenizer = AutoTokenizer.from_pretrained(tiny_instructor)
    seeds = ["Write a poem about the sea.", "Name three rivers in Europe.", "Explain gravity.", "Describe a tree."]
    torch.manual_seed(0)
    episodes = choose_operations_with_instructor(model, tokenizer, seeds, factory, do_sample=True)
    assert [episode.seed for episode in episodes] == seeds
    names = set(build_operation_library().names)
    assert all(set(episode.operations) <= names for episode in episodes)
    assert any(episode.operations or episode.stopped for episode in episodes)
    for episode in episodes:
        replies = [message for message in episode.messages if message["role"] == "tool"]
        calls = [message for message in episode.messages if message.get("tool_calls")]
        assert len(replies) == sum(len(message["tool_calls"]) for message in calls)
        assert len(calls) <= config.max_operations + 1
    assert factory.accounting["rewriter"] == sum(len(episode.operations) for episode in episodes)


def test_seed_rows_carry_the_task_prompt_and_the_instruction(tmp_path):
    config = make_config(tmp_path)
    rows = load_instructor_seeds(config)
    assert rows[0]["prompt"] == [{"role": "user", "content": config.task_prompt}]
    assert rows[0]["instruction"].strip()


def test_bad_seed_column_fails_before_any_query(tmp_path):
    with pytest.raises(ValueError, match="instruction_column"):
        load_instructor_seeds(make_config(tmp_path, instruction_column="missing"))


def test_chat_template_path_replaces_the_template(tiny_instructor, tmp_path):
    from trl.chat_template_utils import qwen2_5_chat_template, supports_tool_calling

    from instrl_trl.stages.train_instructor import load_processing_class

    assert load_processing_class(make_config(tmp_path), tiny_instructor) is None
    tokenizer = load_processing_class(make_config(tmp_path, chat_template_path="qwen2.5"), tiny_instructor)
    assert tokenizer.chat_template == qwen2_5_chat_template and supports_tool_calling(tokenizer)
    template = tmp_path / "template.jinja"
    template.write_text("{% for message in messages %}{{ message.content }}{% endfor %}")
    tokenizer = load_processing_class(make_config(tmp_path, chat_template_path=str(template)), tiny_instructor)
    assert tokenizer.chat_template == template.read_text()


def test_push_to_hub_sends_the_model_and_our_card(tiny_instructor, tmp_path, hub, silence_trl):
    config = make_config(tmp_path, max_steps=1, push_to_hub=True, hub_model_id="someone/tiny-instructor")
    trainer = make_trainer(config, tiny_instructor)
    trainer.train()
    trainer.push_to_hub()
    files = hub.repo("model", "someone/tiny-instructor").head.files
    assert {"README.md", "config.json", "model.safetensors", "tokenizer.json", "queries.json"} <= set(files)
    card = files["README.md"].content.decode()
    assert "# Instructor card for tiny-instructor" in card
    assert 'from_pretrained("someone/tiny-instructor")' in card
    assert "hf_dummy_token" not in card and str(tmp_path) not in card
