"""
Whether a rollout can keep its servers busy: a rollout with fewer episodes per process than an endpoint takes at once
never fills the slots past them, and the server the user pays for idles. Both trainers warn with the fix. Once a
pipelined rollout ran, what it measured says why a server waited (`rollout_waiting_messages`; with rollouts played
ahead, `rollouts_ahead_waiting_messages`).
"""

from accelerate.logging import get_logger

from ..backends.role_calls import servers_of
from ..backends.server_load import BUSY_CORES, ClientLoad, ServerLoad, servers_kept_waiting, waiting_messages


logger = get_logger(__name__)


def idle_slot_warnings(episodes: int, roles: dict[str, object], rollouts_ahead: int | None = None) -> list[str]:
    """
    One message per server that takes more queries at once (`max_concurrency`) than a rollout's `episodes` per process
    (with the `rollouts_ahead` later rollouts that play beside it, for the PPO trainer; `None` for a trainer without
    them) can have in flight; roles that send to one server share its slots, as in
    [`~instrl_trl.backends.role_calls.ServerPools`]. None for local roles.
    """
    in_flight = episodes * (1 + (rollouts_ahead or 0))
    beside = f", with {rollouts_ahead} later rollouts beside it (`rollouts_ahead`)" if rollouts_ahead else ""
    ahead = (
        ""
        if rollouts_ahead is None
        else "play more later rollouts while PPO trains on this one (`rollouts_ahead`: 3 kept rollouts of as many "
        "episodes as slots 0.84 busy, off-policy by 3 updates), "
    )
    messages = []
    for endpoint, (max_concurrency, names) in servers_of(roles).items():
        if in_flight >= max_concurrency:
            continue
        messages.append(
            f"A rollout plays {episodes} episodes per process (`per_device_train_batch_size` x "
            f"`steps_per_generation`){beside}, and the {' and '.join(names)}'s endpoint {endpoint} takes "
            f"{max_concurrency} queries at once (`max_concurrency`): at most {in_flight} of its slots are ever busy, "
            "fewer as episodes end, and the server you pay for idles. Give a rollout several times more episodes "
            "than `max_concurrency` (`generation_batch_size`; 8x kept a simulated server 0.86-0.92 busy, see "
            f"benchmarks/server_utilization.py), {ahead}or lower `max_concurrency`."
        )
    return messages


def warn_if_rollouts_leave_slots_idle(args, roles: dict[str, object]) -> None:
    """
    Logs [`idle_slot_warnings`] once (main process) for a trainer's `args`: a rollout (a GRPO generation, whose
    completions are its episodes) plays `per_device_train_batch_size * steps_per_generation` episodes per process,
    beside `rollouts_ahead` later ones in the PPO trainer.
    """
    episodes = args.per_device_train_batch_size * args.steps_per_generation
    for message in idle_slot_warnings(episodes, roles, getattr(args, "rollouts_ahead", None)):
        logger.warning(message)


def rollout_waiting_messages(loads: dict[str, ServerLoad], client: ClientLoad) -> list[str]:
    """
    One message per server a pipelined rollout kept waiting, with its cause (see
    [`~instrl_trl.backends.server_load.waiting_messages`]): this process (free slots while its loop worked: the
    policy's forward passes) or a lack of work to send (free while the loop waited for answers: episodes queued for a
    busier server, or ended ones leaving slots empty).
    """
    return waiting_messages(
        loads,
        client,
        who="A rollout",
        held_back_cause=(
            "the policy's forward passes (acting, then each step's log-probabilities and values) and the novelty "
            "reward's embeddings, on a CPU. A GPU takes them off this CPU; on a CPU, lock-step rollouts "
            "(`pipelined_rollouts: false`) spend less CPU per query and may finish sooner: "
            "benchmarks/server_utilization.py measures both on your machine."
        ),
        no_work_cause=(
            "episodes that ended left their slots empty. Give a rollout more episodes than `max_concurrency` "
            "(`generation_batch_size`; 8x kept a simulated server 0.86-0.92 busy), or play later rollouts while PPO "
            "trains on this one (`rollouts_ahead`)."
        ),
    )


def rollouts_ahead_waiting_messages(loads: dict[str, ServerLoad], client: ClientLoad) -> list[str]:
    """
    One message per server that the rollouts played ahead (`rollouts_ahead`) kept waiting since the first rollout (see
    [`~instrl_trl.backends.server_load.servers_kept_waiting`]), with its cause. Several rollouts' loops and PPO's
    update share the servers and the cores there, so the free slot-time is not split by what one loop did; the
    process's CPU tells the cause: cores kept busy (`BUSY_CORES`), its own compute held the calls back (more rollouts
    ahead would only compete with the update for them); cores to spare, its rollouts had no more queries to send.
    """
    cores_busy = client.cores_busy_so_far()
    messages = []
    for endpoint, load in servers_kept_waiting(loads).items():
        message = (
            f"Rollouts played ahead kept the server waiting on this process: {endpoint}: {load.describe()}; this "
            f"process kept {cores_busy:.1f} of its {client.cores} CPU cores busy since the first rollout. "
        )
        if cores_busy >= BUSY_CORES * client.cores:
            message += (
                "Its own compute held the calls back: PPO's update, the rollouts' forward passes and the novelty "
                "reward's embeddings share these cores, and more rollouts ahead would only compete with the update "
                "for them (the MiniLM policy on a 2-core CPU kept a simulated server 0.07 busy on-policy and 0.12 "
                "with 3 rollouts ahead). A GPU takes them off this CPU: benchmarks/server_utilization.py measures "
                "both on your machine."
            )
        else:
            message += (
                "Its rollouts had no more queries to send: play more rollouts ahead (`rollouts_ahead`) or give a "
                "rollout more episodes (`generation_batch_size`)."
            )
        messages.append(message)
    return messages


def warn_why_servers_waited(loads: dict[str, ServerLoad], client: ClientLoad, rollouts_ahead: bool) -> bool:
    """
    Logs (main process) why pipelined rollouts kept servers waiting: [`rollout_waiting_messages`] for one rollout,
    [`rollouts_ahead_waiting_messages`] for rollouts played ahead since the first; returns whether there was anything
    to say.
    """
    explain = rollouts_ahead_waiting_messages if rollouts_ahead else rollout_waiting_messages
    messages = explain(loads, client)
    for message in messages:
        logger.warning(message)
    return bool(messages)
