"""
What the PPO trainer counts and logs about one rollout; the run's totals are one
[`~instrl_trl.backends.run_statistics.RunStatistics`], the class the instructor's trainer keeps as well.
"""

import torch

from ..backends.costs import MIN_EVOLUTIONS, rate
from ..backends.run_statistics import RunStatistics
from ..environment import STOP_ACTION
from .rollout import RolloutBatch


def rollout_statistics(rollout: RolloutBatch, action_names: list[str]) -> RunStatistics:
    """This process's sums over one rollout (one episode per seed); `.reduce(accelerator)` sums them over processes."""
    rewards = torch.cat(rollout.rewards) if rollout.rewards else torch.zeros(0)
    return RunStatistics(
        action_names,
        num_episodes=rollout.num_episodes,
        num_transitions=len(rollout),
        reward_sum=rewards.sum().item(),
        num_accepted=sum(rollout.accepted),
        num_queries=sum(rollout.queries),
        num_rewrites=sum(operation != STOP_ACTION for operation in rollout.operations),
        num_stopped=rollout.operations.count(STOP_ACTION),
        num_instructions=sum(bool(evolutions) for evolutions in rollout.evolutions),
        num_deep_instructions=sum(len(evolutions) >= MIN_EVOLUTIONS for evolutions in rollout.evolutions),
        operation_counts={name: rollout.operations.count(name) for name in action_names},
    )


def rollout_metrics(
    rollout: RolloutBatch,
    totals: RunStatistics,
    statistics: RunStatistics,
    usage_totals: dict[str, dict[str, float]],
    cost_multiplier: float,
) -> dict[str, float]:
    """
    What the trainer logs about one rollout: GRPO's reward keys from this process's transitions, and our episode,
    query and operation keys from the totals over all processes (`queries/*` are running totals since the start,
    except the ratios `queries/per_*`, this rollout's, `inf` when it bought nothing: the trainer's `log` leaves such
    a value out of its window's mean). A pipelined rollout adds `server/fill`, this process's: how full it kept its
    least full server's `max_concurrency`, and `server/held_back`: the share of that server's free slot-time that
    passed while the rollout's loop worked (calls this process held back).
    """
    rewards = torch.cat(rollout.rewards)
    costs = totals.costs()
    metrics = {
        "reward": rewards.mean().item(),
        "reward_std": rewards.std().item() if len(rewards) > 1 else 0.0,
        **{
            f"rewards/{name}/mean": torch.nanmean(torch.cat(v)).item() for name, v in rollout.reward_components.items()
        },
        "episode/reward": totals.reward_sum / totals.num_episodes,
        "episode/length": totals.num_transitions / totals.num_episodes,
        "accepted_rate": rate(totals.num_accepted, totals.num_rewrites),
        "queries/total": float(statistics.num_queries),
        **{
            f"queries/{name.removeprefix('queries_')}": value
            for name, value in costs.ratios().items()
            if name.startswith("queries_")
        },
        "cost/multiplier": cost_multiplier,
    }
    for role, usage in usage_totals.items():
        if usage["queries"]:
            metrics[f"queries/{role}"] = usage["queries"]
            metrics[f"queries/{role}/cache_hits"] = usage["cache_hits"]
            metrics[f"queries/{role}/failures"] = usage["failures"]
    metrics["queries/paid"] = sum(usage["queries"] - usage["cache_hits"] for usage in usage_totals.values())
    if rollout.server_fill is not None:
        # This process's pipelined rollout: how full it kept its least full server (1.0: always `max_concurrency`),
        # and of the slot-time left free there, the share that passed while the rollout's loop worked
        metrics["server/fill"] = rollout.server_fill
        if rollout.server_held_back is not None:
            metrics["server/held_back"] = rollout.server_held_back
    for name, count in totals.operation_counts.items():
        metrics[f"operations/{name}/frequency"] = count / totals.num_transitions
    return metrics
