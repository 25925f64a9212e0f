"""
The policy learns (in the spirit of SB3's `tests/test_identity.py`) and its choice depends on what it reads: on the
rules engine, which operation adds information depends on the instruction, so a policy that ignores its input cannot
pass these tests.
"""

import pytest

from instrl_trl import InstructionGenerationConfig, InstructionGenerationTrainer
from instrl_trl.backends.rules import read_features
from instrl_trl.generation.policy_evaluation import evaluate_trainer_policy
from tests.trainer.rules_world import greedy_first_operations


def _config(tmp_path, **overrides) -> InstructionGenerationConfig:
    # A 2-layer, 32-wide BERT learns in ~100 PPO steps at a high learning rate (seconds on 2 CPU cores)
    settings = {
        "output_dir": str(tmp_path),
        "per_device_train_batch_size": 16,
        "steps_per_generation": 2,
        "num_iterations": 2,
        "learning_rate": 5e-3,
        "max_state_length": 64,
        "reward_funcs": ["information_gain", "elimination", "query_cost"],
        "reward_weights": [1.0, 1.0, 0.1],  # as the quickstart recipe: at 0.25 per query stopping at once pays
        "save_strategy": "no",
        "report_to": "none",
        "logging_steps": 50,
        "disable_tqdm": True,
        "seed": 0,
    }
    return InstructionGenerationConfig(**{**settings, **overrides})


@pytest.mark.slow
@pytest.mark.timeout(900)  # about a minute alone on 2 cores
def test_policy_chooses_by_what_it_reads(tiny_backbone, quickstart_seeds, tmp_path):
    # Two families of seeds without a general term: inquiries, which only deepening improves, and tasks, which only
    # add_constraints improves. A state-blind policy picks the same first operation for both and fails one family.
    features = {seed: read_features(seed) for seed in quickstart_seeds["instruction"]}
    inquiries = [seed for seed, f in features.items() if f.inquiry and not f.general_term]
    tasks = [seed for seed, f in features.items() if not f.inquiry and not f.general_term]
    assert len(inquiries) >= 30 and len(tasks) >= 30
    train_seeds = inquiries[::2] + tasks[::2]
    args = _config(
        tmp_path, max_steps=100, max_operations=1, operations=["add_constraints", "deepening", "concretizing"]
    )
    trainer = InstructionGenerationTrainer(
        model=tiny_backbone,
        args=args,
        train_dataset=quickstart_seeds.filter(lambda row: row["instruction"] in train_seeds),
    )
    trainer.train()

    # on seeds it never trained on
    held_out_inquiries = greedy_first_operations(trainer, inquiries[1::2])
    held_out_tasks = greedy_first_operations(trainer, tasks[1::2])
    assert held_out_inquiries.count("deepening") >= 0.8 * len(held_out_inquiries), held_out_inquiries
    assert held_out_tasks.count("add_constraints") >= 0.8 * len(held_out_tasks), held_out_tasks


@pytest.mark.slow
@pytest.mark.timeout(900)  # one to two minutes alone on 2 cores
def test_trained_policy_beats_uniform_operations(tiny_backbone, quickstart_seeds, tmp_path):
    # The four operations whose rules the tiny model learns in 200 steps (breadth first, then what the new instruction
    # allows); in the six-operation world MiniLM's 400 steps go deep for some training seeds only
    # (benchmarks/query_efficiency.py)
    operations = ["add_constraints", "deepening", "concretizing", "breadth"]
    args = _config(tmp_path, max_steps=200, operations=operations, max_operations=3, entropy_coef=0.05)
    trainer = InstructionGenerationTrainer(model=tiny_backbone, args=args, train_dataset=quickstart_seeds)
    trainer.train()

    seeds = quickstart_seeds["instruction"]
    # The one policy evaluation: same environment rule (episodes end on elimination), seeds and budget for all
    uniform = evaluate_trainer_policy(trainer, seeds, policy="uniform", query_budget=1000).costs
    trained = evaluate_trainer_policy(trainer, seeds, policy="trained", query_budget=1000, greedy=True).costs
    sampled = evaluate_trainer_policy(trainer, seeds, policy="trained", query_budget=1000, greedy=False).costs

    # an untrained policy is uniform's equal
    assert trained.accepted_rate > uniform.accepted_rate + 0.1
    assert trained.queries_per_evolution < 0.8 * uniform.queries_per_evolution
    assert trained.queries_per_instruction < uniform.queries_per_instruction
    assert sampled.accepted_rate > uniform.accepted_rate + 0.05
