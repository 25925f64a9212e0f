"""
Rollouts played ahead (`rollouts_ahead` = k > 0): the next k rollouts' episodes run while PPO trains on this one, so
that an inference server is not left with only the ended episodes' empty slots at the end of every rollout, nor idle
during every update.

```
 R_j: rollout j (the one PPO trains on from micro-step j x steps_per_rollout);  θ_j: the weights before update j
 k = 1:
 boundary 0:  launch R_0 and R_1, played by θ_0;  take R_0;  update 0 -> θ_1      (R_1's queries go on meanwhile)
 boundary 1:  launch R_2, played by θ_1;          take R_1;  update 1 -> θ_2      (R_2's queries go on)
 boundary j:  launch R_{j+k}, played by θ_j;      take R_j;  update j -> θ_{j+1}  (R_{j+1} ... R_{j+k} go on)
```

Rollout `m` is played by θ_{max(0, m - k)}: k updates older than the weights PPO starts from (fewer for the first k),
as asynchronous trainers allow (TRL's async GRPO keeps samples up to 4 updates old). Its log-probabilities and values
are those of the policy that played it, so PPO's ratio accounts for the updates in between, and clips them. No rollout
is launched past the run's last one.

Nothing depends on the server's timing. The policy that plays a rollout is fixed by the schedule, each episode samples
from its own stream ([`~instrl_trl.trainer.rollout.episode_generators`], seeded by the micro-step that takes the
rollout), and what carries state from rollout to rollout waits until the trainer takes the rollout, in rollout order:
its rewards (the reward memories and the cost multiplier as they stand then, as for a rollout played on the spot) and
its query counts (kept apart until then). A checkpoint therefore holds nothing of the rollouts in flight but the
weights that play them, and a resumed run plays them again: the same rollouts.
"""

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from copy import deepcopy
from dataclasses import dataclass

import torch
from transformers import PreTrainedModel

from ..backends.accounting import QueryAccounting
from ..backends.role_calls import ServerPools
from ..backends.server_load import ClientLoad, ServerLoad
from .rollout import RolloutBatch


class RolloutGivenUp(RuntimeError):
    """Raised in a rollout in flight that training ended without (its rewards are never computed)."""


class Adoption:
    """Holds a rollout in flight's rewards back until the trainer takes the rollout ([`adopt`]) or gives it up."""

    def __init__(self):
        self._decided = threading.Event()
        self._given_up = False

    def adopt(self) -> None:
        self._decided.set()

    def give_up(self) -> None:
        self._given_up = True
        self._decided.set()

    def wait(self) -> None:
        """Returns once the rollout is taken; raises [`RolloutGivenUp`] if it never will be."""
        self._decided.wait()
        if self._given_up:
            raise RolloutGivenUp("Training ended without this rollout.")


# play(accounting, adoption, pools) -> the rollout: a pipelined rollout that counts its queries in `accounting`,
# computes its rewards once `adoption` lets it and sends its requests through the shared `pools`
PlayFn = Callable[[QueryAccounting, Adoption, ServerPools], RolloutBatch]


def frozen_copy(model: PreTrainedModel) -> PreTrainedModel:
    """A copy of `model`'s weights as they are now, in eval mode and without gradients, to play rollouts with."""
    policy = deepcopy(model)
    for parameter in policy.parameters():
        parameter.grad = None
        parameter.requires_grad_(False)
    return policy.eval()


@dataclass
class _InFlight:
    policy: PreTrainedModel
    accounting: QueryAccounting
    adoption: Adoption
    future: Future


class RolloutsAhead:
    r"""
    The rollouts a trainer has in flight (the one it takes next and up to `rollouts_ahead` later ones), keyed by the
    micro-step that takes each, with one pool per server shared by all of them, so that together they keep at most
    each server's `max_concurrency` requests in flight. The pools are prioritized: give each rollout's requests its
    micro-step as their priority, and the rollout PPO needs first is never held up by the bursts of later ones.

    Args:
        roles (`dict[str, object]`):
            The roles whose servers the rollouts send to (`{"rewriter": ..., "reviewer": ...}`).
        rollouts_ahead (`int`):
            How many rollouts are played ahead of the one PPO trains on.
    """

    def __init__(self, roles: dict[str, object], rollouts_ahead: int):
        self._roles = roles
        self.rollouts_ahead = rollouts_ahead
        self._in_flight: dict[int, _InFlight] = {}
        self._pools: ServerPools | None = None
        self._threads: ThreadPoolExecutor | None = None
        # The rollouts in flight at a checkpoint (micro-step, weights), until the resumed run launches them again
        self._pending: list[tuple[int, dict[str, torch.Tensor]]] = []

    @property
    def server_loads(self) -> dict[str, ServerLoad]:
        """Each server's load since the first rollout (see [`~instrl_trl.backends.server_load.ServerLoad`])."""
        return {} if self._pools is None else self._pools.loads

    @property
    def client_load(self) -> ClientLoad | None:
        """What this process did since the first rollout (see [`~instrl_trl.backends.server_load.ClientLoad`])."""
        return None if self._pools is None else self._pools.client

    def keep_in_flight(
        self,
        step: int,
        seeds: dict[int, list[str | None]],
        at_boundary: bool,
        last_step: int,
        model: PreTrainedModel,
        launch: Callable[[int, list[str], PreTrainedModel], None],
    ) -> None:
        """
        At micro-step `step`, keeps the rollouts of `seeds` (micro-step -> seeds: the rollout PPO takes next, first,
        then the next `rollouts_ahead` ones) in flight, each started by `launch(micro_step, seeds, policy)`. After a
        resume, first the rollouts that were in flight at the checkpoint, played by the weights saved with them; at a
        rollout's first micro-step (`at_boundary`), every one of them not yet in flight (all of them at the run's
        first), played by a [`frozen_copy`] of `model` as it is now. No rollout at or past `last_step` (the run's last
        micro-step) is launched, nor one whose seeds are not known (`None`).
        """
        this_step = min(seeds)
        for pending_step, policy in self._pending_launches(model):
            if pending_step not in seeds:
                raise RuntimeError(
                    f"The checkpoint had the rollout of micro-step {pending_step} in flight, but the run resumed at "
                    f"micro-step {step}: resume from the checkpoint's own step."
                )
            launch(pending_step, seeds[pending_step], policy)
        if not at_boundary:
            return
        policy = None
        for rollout_step, rollout_seeds in seeds.items():
            if rollout_step in self._in_flight or (rollout_step != this_step and rollout_step >= last_step):
                continue
            if None in rollout_seeds:
                continue
            if policy is None:
                policy = frozen_copy(model)
            launch(rollout_step, rollout_seeds, policy)

    def launch(self, step: int, policy: PreTrainedModel, play: PlayFn) -> None:
        """
        Starts `play` (in a background thread): the rollout taken at micro-step `step`, played by `policy` (a
        [`frozen_copy`], kept for checkpoints).
        """
        if step in self._in_flight:
            raise RuntimeError(f"The rollout of micro-step {step} is already in flight.")
        if self._pools is None:
            self._pools = ServerPools(self._roles, prioritized=True)
            self._threads = ThreadPoolExecutor(max_workers=self.rollouts_ahead + 1, thread_name_prefix="rollout-ahead")
        accounting, adoption = QueryAccounting(), Adoption()
        future = self._threads.submit(play, accounting, adoption, self._pools)
        self._in_flight[step] = _InFlight(policy, accounting, adoption, future)

    def take(self, step: int, accounting: QueryAccounting) -> RolloutBatch:
        """
        Waits for the rollout of micro-step `step` (its rewards are computed now, after every earlier rollout's), adds
        its query counts to `accounting` and returns it. Raises what the rollout raised.
        """
        rollout = self._in_flight.pop(step)
        rollout.adoption.adopt()
        batch = rollout.future.result()
        accounting.add(rollout.accounting)
        return batch

    def _pending_launches(self, model: PreTrainedModel) -> list[tuple[int, PreTrainedModel]]:
        """
        After a resume: the rollouts that were in flight at the checkpoint, each as its micro-step and the policy that
        plays it (a copy of `model` with the saved weights), once; empty otherwise.
        """
        launches, policies = [], {}
        for step, weights in self._pending:
            if id(weights) not in policies:
                policies[id(weights)] = frozen_copy(model)
                policies[id(weights)].load_state_dict(weights)
            launches.append((step, policies[id(weights)]))
        self._pending = []
        return launches

    def state_dict(self) -> dict:
        """The rollouts in flight as a checkpoint keeps them: their micro-steps and the weights that play them."""
        if self._pending:
            rollouts = self._pending
        else:
            rollouts = [(step, rollout.policy) for step, rollout in sorted(self._in_flight.items())]
        policies, indices, saved = [], {}, []
        for step, policy in rollouts:
            if id(policy) not in indices:
                indices[id(policy)] = len(policies)
                weights = policy if isinstance(policy, dict) else policy.state_dict()
                policies.append({name: tensor.detach().cpu() for name, tensor in weights.items()})
            saved.append({"step": step, "policy": indices[id(policy)]})
        return {"rollouts": saved, "policies": policies}

    def load_state_dict(self, state: dict | None) -> None:
        state = state or {"rollouts": [], "policies": []}
        self._pending = [(rollout["step"], state["policies"][rollout["policy"]]) for rollout in state["rollouts"]]

    def close(self) -> None:
        """
        Gives up the rollouts still in flight (training ended or failed without them): their requests not yet sent
        are cancelled, those in flight end with their current attempt. Returns without waiting for them.
        """
        for rollout in self._in_flight.values():
            rollout.adoption.give_up()
        self._in_flight.clear()
        if self._pools is not None:
            self._pools.shutdown()
            self._threads.shutdown(wait=False, cancel_futures=True)
            self._pools = self._threads = None
