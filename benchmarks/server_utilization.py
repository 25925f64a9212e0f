"""
How busy `generate` keeps an inference server. A simulated continuous-batching server (an aiohttp app on 127.0.0.1,
in its own process: `C` slots behind an `asyncio.Semaphore(C)`, each request holding one for a log-normal time,
sigma 0.5, of mean `--mean_latency`; requests beyond `C` wait) serves the rewriter and the expert; the reviewer is the
rules engine. `generate` runs with the defaults a user gets (uniform policy, `batch_size` 32, dedup threshold 0.95),
`max_operations 3` (as in the figures measured on main) and `max_concurrency: C` on both roles, on 8 x C seeds (the
quickstart seeds, repeated with an audience prefix when there are too few), pipelined and then lock-step
(`pipelined: false`, on 2 x C seeds: its utilization is set by the batch, and 8 x C would take minutes).

Utilization = busy slot-seconds / (C x the LLM phase's wall time, from the first request queued to the last answered).
The answers depend only on a hash of the request's messages, so runs with other timings are comparable. The client's
CPU seconds per request are this process's CPU time (the server runs in another process) over the requests served.

A PPO rollout is measured too (`--rollout_episodes`, in multiples of C; `--skip_rollout` leaves it out): one
`InstructionGenerationTrainer.collect_rollout` with the defaults a user gets (the MiniLM policy, `max_operations` 6,
the default rewards) and the rewriter on the server with `max_concurrency: C`, the reviewer the rules engine,
pipelined and then lock-step (`pipelined_rollouts: false`). `--rollout_models tiny` swaps the MiniLM policy and the
novelty reward's MiniLM embedder for tiny BERTs whose forward passes cost next to nothing (as on a GPU, where the
defaults were not measured): on this project's 2-core CPU, the MiniLM policy's forward passes and the embedding of
every accepted rewrite outlast the queries, and the client's compute, not the pipeline, sets the rollout's length. A
rollout has a fixed set of episodes of different lengths, so its utilization is counted over min(C, episodes) slots:
with episodes <= C, the slots of episodes that ended sit idle until the longest one ends (an on-policy rollout cannot
start the next rollout's episodes early). It is printed over the LLM phase and over the whole rollout (complete steps
are scored, policy forward pass and rewards, in a background thread while the queries go on), with the shortest LLM
phase any schedule could reach: the longer of the longest episode's queries back to back (their slot times, with no
client time between them) and the busy slot-seconds over C, and how busy the rollout kept the slots its running
episodes could fill: busy slot-seconds over the integral of min(C, episodes not yet done) over the LLM phase (target
>= 0.8; an episode waiting for the client or for the rest of a lock-step batch counts as a slot it could fill).
Then PPO training runs (`--training_episodes`, in multiples of C; none with `--training_episodes` alone): `train()`
for `--training_rollouts` (8) rollouts of that many episodes, one micro-step of them per rollout and 4 PPO epochs,
on-policy (`rollouts_ahead: 0`) and with each `--rollouts_ahead` value (1 2 3): that many later rollouts are played
while PPO trains on this one, by the weights that many updates older. Utilization is counted over min(C, episodes)
slots and the training's LLM phase (first request to last answer), and over the whole `train()`; each `rollouts_ahead`
prints its ratio against the on-policy run of the same script.

Printed last: generate's pipelined utilization at the largest C (target >= 0.8).

    python benchmarks/server_utilization.py [--mean_latency 1.0] [--slots 64 256] [--rollout_episodes 1 8]
        [--training_episodes 1] [--rollouts_ahead 1 2 3] [--training_rollouts 8]
"""

import argparse
import asyncio
import hashlib
import json
import math
import multiprocessing
import os
import random
import tempfile
import time
import urllib.request


os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TQDM_DISABLE", "1")

WORDS = [
    "budget",
    "glacier",
    "lantern",
    "orchard",
    "harbor",
    "census",
    "violin",
    "meadow",
    "quartz",
    "canyon",
    "ledger",
    "falcon",
    "prism",
    "tundra",
]
AUDIENCES = [
    "a beginner", "an expert", "a child", "a manager", "a student", "a journalist", "a retiree", "an engineer",
    "a teacher", "a tourist", "a nurse", "a farmer",
]  # fmt: skip


def given_prompt(messages: list[dict]) -> str | None:
    """The instruction a rewriter prompt asks to rewrite; `None` for another prompt."""
    text = [message["content"] for message in messages if message.get("role") == "user"][-1]
    if "#Given Prompt#:" not in text:
        return None
    return text.split("#Given Prompt#:", 1)[1].strip().split("\n\n", 1)[0].strip()


def answer(messages: list[dict], given: str | None) -> str:
    """
    A rewrite (the given prompt plus a clause of three hashed words) for a rewriter prompt (`given`, from
    [`given_prompt`]), else an answer.
    """
    digest = hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).digest()
    words = [WORDS[byte % len(WORDS)] for byte in digest[:3]]
    if given is not None:
        return f"{given} Mention the {words[0]}, the {words[1]} and the {words[2]}."
    return f"The answer involves the {words[0]}, the {words[1]} and the {words[2]}."


def serve(slots: int, mean_latency: float, port_queue) -> None:
    """The simulated server (runs in a child process until killed)."""
    from aiohttp import web

    sigma = 0.5
    rng = random.Random(0)
    log: list[tuple[float, float, float, str | None]] = []

    async def chat(request):
        queued = time.monotonic()
        body = await request.json()
        async with semaphore:
            start = time.monotonic()
            await asyncio.sleep(rng.lognormvariate(math.log(mean_latency) - sigma**2 / 2, sigma))
            end = time.monotonic()
        given = given_prompt(body["messages"])
        log.append((queued, start, end, given))
        text = answer(body["messages"], given)
        return web.json_response({
            "id": "chatcmpl-bench", "object": "chat.completion", "created": 0, "model": body.get("model") or "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": len(text.split()), "total_tokens": 20},
        })  # fmt: skip

    async def get_log(request):
        entries, log[:] = list(log), []
        return web.json_response(entries)

    async def main():
        nonlocal semaphore
        semaphore = asyncio.Semaphore(slots)
        app = web.Application(client_max_size=2**24)
        app.add_routes([web.post("/v1/chat/completions", chat), web.get("/log", get_log)])
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=4096)
        await site.start()
        port_queue.put(site._server.sockets[0].getsockname()[1])
        await asyncio.Event().wait()

    semaphore = None
    asyncio.run(main())


def start_server(target, *args, timeout: float = 60):
    """
    Runs `target(*args, port_queue)` in a spawned child process, a server that puts its port on the queue once it
    listens; returns the process (kill it when done) and the server's `http://127.0.0.1:PORT`.
    """
    context = multiprocessing.get_context("spawn")
    port_queue = context.Queue()
    server = context.Process(target=target, args=(*args, port_queue), daemon=True)
    server.start()
    return server, f"http://127.0.0.1:{port_queue.get(timeout=timeout)}"


def load_seeds(num_seeds: int):
    from datasets import Dataset

    from instrl_trl.data import load_quickstart_seeds

    base = load_quickstart_seeds()["instruction"]
    seeds = [
        text if round_ == 0 else f"For {AUDIENCES[(round_ - 1) % len(AUDIENCES)]}: {text}"
        for round_ in range(math.ceil(num_seeds / len(base)))
        for text in base
    ]
    return Dataset.from_dict({"instruction": seeds[:num_seeds]})


def llm_phase(log: list) -> tuple[float, float]:
    """The LLM phase's wall time (first request queued to last answered) and the busy slot-seconds of `log`."""
    wall = max(end for _, _, end, _ in log) - min(queued for queued, _, _, _ in log)
    return wall, sum(end - start for _, start, end, _ in log)


def run_generate(base_url: str, slots: int, num_seeds: int, pipelined: bool) -> dict:
    from instrl_trl.generation import DatasetGenerationConfig, generate_dataset

    role = {"backend": "endpoint", "model": "bench-model", "base_url": f"{base_url}/v1", "max_concurrency": slots}
    seeds = load_seeds(num_seeds)
    with tempfile.TemporaryDirectory() as output_dir:
        config = DatasetGenerationConfig(policy="uniform", output_dir=output_dir, rewriter=role, expert=role,
                                         max_operations=3, pipelined=pipelined)  # fmt: skip
        urllib.request.urlopen(f"{base_url}/log").read()  # forget earlier runs
        cpu = time.process_time()
        summary = generate_dataset(config, seeds)
        cpu = time.process_time() - cpu
    log = json.loads(urllib.request.urlopen(f"{base_url}/log").read())
    wall, busy = llm_phase(log)
    mean_latency = busy / len(log)
    return {
        "utilization": busy / (slots * wall),
        "requests": len(log),
        "achieved": len(log) / wall,
        "possible": slots / mean_latency,
        "cpu_ms": 1000 * cpu / len(log),
        "wall": wall,
        "rows": summary.num_rows,
        **client_view(summary.server_loads, summary.client_load),
    }


def client_view(server_loads: dict, client_load) -> dict:
    """What the client measured of a pipelined run (empty for lock-step): its fill and why slots were free."""
    if not server_loads:
        return {}
    (load,) = server_loads.values()
    return {"client_fill": load.fill, "held_back": load.held_back, "client": client_load.describe()}


def describe_client_view(result: dict) -> str:
    if "client_fill" not in result:
        return ""
    held_back = "no free slot" if result["held_back"] is None else f"{result['held_back']:.2f}"
    return (
        f"\n          the client's view: fill {result['client_fill']:.2f}; of the slot-time left free, the share that "
        f"passed while its loop worked (calls held back): {held_back}; {result['client']}"
    )


def tiny_bert(tokenizer, folder: str, classifier: bool) -> None:
    """Saves a 2-layer, 32-wide BERT with MiniLM's tokenizer to `folder`: its forward passes cost next to nothing."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertModel

    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64)  # fmt: skip
    torch.manual_seed(0)
    (BertForSequenceClassification if classifier else BertModel)(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def rollout_models(kind: str, folder: str) -> tuple[str, str | None]:
    """
    The policy the rollout measurement trains and the novelty reward's sentence embedder (`None`: the default): for
    `minilm`, the MiniLM models a user gets; for `tiny`, tiny BERTs with MiniLM's tokenizer (a sequence classifier,
    and one under mean pooling), so that the client's compute does not hide how busy the pipeline keeps the server.
    """
    from instrl_trl.policy import default_policy_model

    if kind == "minilm":
        return default_policy_model(), None
    from sentence_transformers import SentenceTransformer, models
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(default_policy_model())
    policy, encoder, embedder = (os.path.join(folder, name) for name in ("policy", "encoder", "embedder"))
    tiny_bert(tokenizer, policy, classifier=True)
    tiny_bert(tokenizer, encoder, classifier=False)
    SentenceTransformer(modules=[models.Transformer(encoder), models.Pooling(32), models.Normalize()]).save(embedder)
    return policy, embedder


def requests_by_episode(log: list, seeds: list[str]) -> list[list]:
    """
    The requests of `log` (from one rollout of `seeds`) grouped by episode: a request belongs to the episode whose seed
    its given prompt begins with (the simulated rewrites keep the instruction and add a clause). Episodes that sent no
    request (they stopped at once) are left out.
    """
    if len(set(seeds)) != len(seeds):
        raise ValueError("The rollout's seeds must differ from each other to tell its episodes apart.")
    by_length = sorted(seeds, key=len, reverse=True)
    episodes: dict[str, list] = {}
    for request in log:
        seed = next(seed for seed in by_length if request[3].startswith(seed))
        episodes.setdefault(seed, []).append(request)
    return list(episodes.values())


def shortest_llm_phase(episodes: list[list], slots: int) -> tuple[float, float, float]:
    """
    A lower bound on any schedule's LLM phase for the requests of `episodes`: each episode's queries back to back (its
    rewrites' slot times in a row; the longest episode sets the bound) and the busy slot-seconds spread over `slots`.
    Returns the bound and its two terms.
    """
    chains = [sum(end - start for _, start, end, _ in requests) for requests in episodes]
    longest_chain = max(chains)
    spread = sum(chains) / slots
    return max(longest_chain, spread), longest_chain, spread


def running_episode_slots(episodes: list[list], slots: int) -> float:
    """
    The slot-seconds the running episodes could fill: the integral, over the LLM phase, of min(C, episodes not yet
    answered their last query). An episode runs from the first request of the phase to its own last answer; whether
    it waits for the server, for the client or for the rest of a lock-step batch, it counts as a slot it could use.
    """
    start = min(queued for requests in episodes for queued, _, _, _ in requests)
    ends = sorted(max(end for _, _, end, _ in requests) for requests in episodes)
    total, previous = 0.0, start
    for index, end in enumerate(ends):
        total += min(slots, len(ends) - index) * (end - previous)
        previous = end
    return total


def measure_trainer(base_url: str, slots: int, num_episodes: int, seeds, models: str, run, **config) -> tuple:
    """
    Builds an `InstructionGenerationTrainer` with the rewriter on the server (`max_concurrency: slots`), one
    micro-step of `num_episodes` seeds per rollout and `config`, warms the novelty reward's embedder up, then measures
    `run(trainer)` alone in the server's log. Returns what `run` returned, the log, and the measures both PPO
    measurements print: utilization of min(C, episodes) slots over the LLM phase and over `run`, requests, achieved and
    possible requests per second, the client's CPU per request, and the two times.
    """
    from instrl_trl import InstructionGenerationConfig, InstructionGenerationTrainer

    role = {"backend": "endpoint", "model": "bench-model", "base_url": f"{base_url}/v1", "max_concurrency": slots}
    with tempfile.TemporaryDirectory() as output_dir:
        model, embedding_model = rollout_models(models, output_dir)
        args = InstructionGenerationConfig(
            output_dir=output_dir,
            per_device_train_batch_size=num_episodes,
            steps_per_generation=1,
            rewriter=role,
            embedding_model=embedding_model,
            report_to="none",
            disable_tqdm=True,
            **config,
        )
        trainer = InstructionGenerationTrainer(model=model, args=args, train_dataset=seeds)
        # A short rollout first: the novelty reward loads its embedding model at its first call, once per training run
        with trainer.run_state.reward_memories_kept():
            trainer.collect_rollout(seeds["instruction"][:2])
        urllib.request.urlopen(f"{base_url}/log").read()  # forget earlier runs
        cpu, start = time.process_time(), time.monotonic()
        result = run(trainer)
        cpu, total = time.process_time() - cpu, time.monotonic() - start
    log = json.loads(urllib.request.urlopen(f"{base_url}/log").read())
    wall, busy = llm_phase(log)
    used_slots = min(slots, num_episodes)
    measures = {
        "utilization": busy / (used_slots * wall),
        "run_utilization": busy / (used_slots * total),
        "slots": used_slots,
        "requests": len(log),
        "achieved": len(log) / wall,
        "possible": used_slots / (busy / len(log)),
        "cpu_ms": 1000 * cpu / len(log),
        "wall": wall,
        "total": total,
    }
    return result, log, measures


def run_rollout(base_url: str, slots: int, num_episodes: int, pipelined: bool, models: str) -> dict:
    seeds = load_seeds(num_episodes)
    rollout, log, measures = measure_trainer(
        base_url,
        slots,
        num_episodes,
        seeds,
        models,
        lambda trainer: trainer.collect_rollout(seeds["instruction"]),
        pipelined_rollouts=pipelined,
    )
    episodes = requests_by_episode(log, seeds["instruction"])
    shortest, longest_chain, spread = shortest_llm_phase(episodes, slots)
    _, busy = llm_phase(log)
    return {
        **measures,
        "running_utilization": busy / running_episode_slots(episodes, slots),
        "rollout_utilization": measures["run_utilization"],
        "shortest": shortest,
        "longest_chain": longest_chain,
        "spread": spread,
        "transitions": len(rollout),
        **client_view(rollout.server_loads, rollout.client_load),
    }


def run_training(base_url: str, slots: int, num_episodes: int, num_rollouts: int, ahead: int, models: str) -> dict:
    """
    `num_rollouts` rollouts of `num_episodes` episodes and their PPO updates (`InstructionGenerationTrainer.train`,
    the defaults a user gets but for the batch: one micro-step of `num_episodes` seeds per rollout, 4 PPO epochs), with
    `rollouts_ahead: ahead`; utilization is counted over the training's LLM phase (first request to last answer) and
    min(C, episodes) slots.
    """
    seeds = load_seeds(num_episodes * num_rollouts)
    _, _, measures = measure_trainer(
        base_url,
        slots,
        num_episodes,
        seeds,
        models,
        lambda trainer: trainer.train(),
        max_steps=num_rollouts * 4,  # 4 PPO epochs (`num_iterations`) per rollout
        rollouts_ahead=ahead,
        save_strategy="no",
    )
    return {**measures, "training_utilization": measures["run_utilization"]}


def describe_training(label: str, slots: int, num_episodes: int, num_rollouts: int, result: dict) -> str:
    return (
        f"C={slots:4d} PPO training {label:26s} {num_rollouts} rollouts x {num_episodes:4d} episodes "
        f"requests={result['requests']:6d} wall={result['wall']:6.1f}s (training {result['total']:6.1f}s) "
        f"achieved={result['achieved']:6.1f} of {result['possible']:6.1f} req/s utilization of {result['slots']} "
        f"slots={result['utilization']:.2f} (over the whole training {result['training_utilization']:.2f}) "
        f"client_cpu={result['cpu_ms']:.2f} ms/request"
    )


def describe_rollout(label: str, slots: int, num_episodes: int, result: dict) -> str:
    return (
        f"C={slots:4d} PPO rollout {label:18s} episodes={num_episodes:5d} requests={result['requests']:6d} "
        f"wall={result['wall']:6.1f}s (rollout {result['total']:6.1f}s) achieved={result['achieved']:6.1f} of "
        f"{result['possible']:6.1f} req/s utilization of {result['slots']} slots={result['utilization']:.2f} "
        f"(over the whole rollout {result['rollout_utilization']:.2f}) client_cpu={result['cpu_ms']:.2f} ms/request "
        f"transitions={result['transitions']}\n"
        f"          shortest possible LLM phase {result['shortest']:6.1f}s (longest episode's queries back to back "
        f"{result['longest_chain']:.1f}s, busy slot-seconds / C {result['spread']:.1f}s): "
        f"{result['shortest'] / result['wall']:.2f} of the LLM phase, {result['shortest'] / result['total']:.2f} of "
        f"the whole rollout\n"
        f"          busy slot-seconds over what its running episodes could fill (min(C, episodes not yet done), over "
        f"the LLM phase): {result['running_utilization']:.2f}" + describe_client_view(result)
    )


def describe(label: str, slots: int, num_seeds: int, result: dict) -> str:
    return (
        f"C={slots:4d} {label:10s} seeds={num_seeds:5d} requests={result['requests']:6d} "
        f"wall={result['wall']:6.1f}s achieved={result['achieved']:6.1f} of {result['possible']:6.1f} req/s "
        f"utilization={result['utilization']:.2f} client_cpu={result['cpu_ms']:.2f} ms/request rows={result['rows']}"
        + describe_client_view(result)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mean_latency", type=float, default=1.0, help="Mean seconds a request holds a slot.")
    parser.add_argument("--slots", type=int, nargs="+", default=[64, 256], help="Server slots C to measure.")
    parser.add_argument("--skip_lock_step", action="store_true", help="Measure the pipelined stage only.")
    parser.add_argument(
        "--rollout_episodes", type=int, nargs="+", default=[1, 8], help="Episodes of a PPO rollout, in multiples of C."
    )
    parser.add_argument("--skip_rollout", action="store_true", help="Leave the PPO rollout out.")
    parser.add_argument(
        "--training_episodes",
        type=int,
        nargs="*",
        default=[1],
        help="Episodes per rollout of the PPO training runs, in multiples of C (none: no training runs).",
    )
    parser.add_argument(
        "--rollouts_ahead", type=int, nargs="+", default=[1, 2, 3], help="`rollouts_ahead` values to train with."
    )
    parser.add_argument("--training_rollouts", type=int, default=8, help="Rollouts of each PPO training run.")
    parser.add_argument(
        "--rollout_models",
        choices=["minilm", "tiny"],
        default="minilm",
        help="The PPO rollout's policy and novelty embedder (see above).",
    )
    args = parser.parse_args()

    last = None
    for slots in args.slots:
        server, base_url = start_server(serve, slots, args.mean_latency)
        try:
            pipelined = run_generate(base_url, slots, 8 * slots, pipelined=True)
            print(describe("pipelined", slots, 8 * slots, pipelined), flush=True)  # noqa: T201
            if not args.skip_lock_step:
                lock_step = run_generate(base_url, slots, 2 * slots, pipelined=False)
                print(describe("lock-step", slots, 2 * slots, lock_step), flush=True)  # noqa: T201
                ratio = pipelined["utilization"] / lock_step["utilization"]
                print(f"C={slots:4d} pipelined / lock-step utilization: {ratio:.1f}x", flush=True)  # noqa: T201
            for multiple in [] if args.skip_rollout else args.rollout_episodes:
                for pipelined_rollout in (True, False):
                    label = "pipelined" if pipelined_rollout else "lock-step"
                    result = run_rollout(base_url, slots, multiple * slots, pipelined_rollout, args.rollout_models)
                    label = f"{label} ({args.rollout_models})"
                    print(describe_rollout(label, slots, multiple * slots, result), flush=True)  # noqa: T201
            for multiple in [] if args.skip_rollout else args.training_episodes:
                episodes, utilization = multiple * slots, {}
                for ahead in [0, *args.rollouts_ahead]:
                    label = f"{'on-policy' if ahead == 0 else f'{ahead} rollouts ahead'} ({args.rollout_models})"
                    result = run_training(
                        base_url, slots, episodes, args.training_rollouts, ahead, args.rollout_models
                    )
                    utilization[ahead] = result["utilization"]
                    print(describe_training(label, slots, episodes, args.training_rollouts, result), flush=True)  # noqa: T201
                for ahead in args.rollouts_ahead:
                    ratio = utilization[ahead] / utilization[0]
                    print(f"C={slots:4d} PPO training, {ahead} rollouts ahead / on-policy utilization: {ratio:.2f}x")  # noqa: T201
        finally:
            server.kill()
        last = pipelined["utilization"]
    print(f"mean latency {args.mean_latency} s; main at 84f40d0 (lock-step, measured earlier): C=64 0.17, C=256 0.10")  # noqa: T201
    print(f"{last:.2f}")  # noqa: T201


if __name__ == "__main__":
    main()
