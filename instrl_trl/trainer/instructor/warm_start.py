"""
The offline default instructor: the tiny tool-calling chat model of `instrl_trl.models.tiny`, warm-started with a short
SFT on tool-call transcripts so that it calls tools at all (an untrained model never does, and GRPO then has no
signal). Built on first use into a cache folder keyed by everything that shapes it, so later runs load it at once.
"""

import hashlib
import json
import os
import random
import shutil
import tempfile
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerBase
from transformers.utils import get_json_schema

from ...backends.rules import RULES, RulesReviewer, RulesRewriter, rules_options
from ...environment import STOP_ACTION
from ...models.builtin import models_cache_dir
from ...models.tiny import build_tiny_tool_chat_model, training_corpus
from ...operations import OperationLibrary
from ...rewards import information_gain_reward
from ...tool_environment.environment import InstructionEnvironmentFactory


# Bump when the builder changes what it writes: cached folders of older builds are then ignored
BUILDER_VERSION = 1
FINAL_ANSWER = "Done."
# Longer transcripts (the rules engine's instructions grow with each operation) cost quadratic time and teach nothing
# more about the call syntax
MAX_TRANSCRIPT_CHARS = 500


def tool_schemas(factory: InstructionEnvironmentFactory) -> list[dict]:
    """The JSON schemas of an environment's tools, in TRL's order (what the chat template lists)."""
    environment = factory()
    return [get_json_schema(getattr(environment, name)) for name in factory.tool_names]


def tool_call_transcripts(
    operations: OperationLibrary,
    task_prompt: str,
    seeds: list[str],
    seed: int = 0,
    max_calls: int = 3,
    max_chars: int = MAX_TRANSCRIPT_CHARS,
) -> list[list[dict]]:
    """
    Conversations played in the environment with the rules engine, one per seed instruction: 1 to `max_calls` random
    operations, then `stop`, then a short final answer. The tool replies are the environment's own. Conversations
    whose messages have more than `max_chars` characters in all are left out.
    """
    factory = InstructionEnvironmentFactory(
        operations, RulesRewriter(), RulesReviewer(), [information_gain_reward], seed=seed
    )
    rng = random.Random(seed)
    transcripts = []
    for instruction in seeds:
        environment = factory()
        messages = [{"role": "user", "content": task_prompt + environment.reset(instruction=instruction)}]
        names = [rng.choice(operations.names) for _ in range(rng.randint(1, max_calls))]
        for name in [*names, STOP_ACTION]:
            call = {"type": "function", "function": {"name": name, "arguments": {}}}
            messages.append({"role": "assistant", "content": "", "tool_calls": [call]})
            try:
                reply = getattr(environment, name)()
            except ValueError as error:  # an operation after the episode ended, as TRL reports it
                reply = str({"error": str(error)})
            messages.append({"role": "tool", "name": name, "content": reply})
        messages.append({"role": "assistant", "content": FINAL_ANSWER})
        if sum(len(message["content"]) for message in messages) <= max_chars:
            transcripts.append(messages)
    return transcripts


def warm_start(
    model_dir: str,
    transcripts: list[list[dict]],
    tools: list[dict],
    num_steps: int = 60,
    learning_rate: float = 5e-3,
    batch_size: int = 16,
    seed: int = 0,
) -> list[float]:
    """
    Trains the causal LM in `model_dir` on the assistant tokens of `transcripts` (next-token loss) with AdamW, saves it
    back, and returns the loss of each step. A plain loop, not a Trainer: it is a few seconds of set-up work.
    """
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    examples = [_tokenize(tokenizer, messages, tools) for messages in transcripts]
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate)
    model.train()
    losses = []
    for _ in range(num_steps):
        indices = torch.randint(len(examples), (min(batch_size, len(examples)),), generator=generator).tolist()
        input_ids, labels, attention_mask = _collate([examples[i] for i in indices], tokenizer.pad_token_id)
        loss = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    model.save_pretrained(model_dir)
    return losses


def _tokenize(tokenizer: PreTrainedTokenizerBase, messages: list[dict], tools: list[dict]) -> tuple[list, list]:
    encoded = tokenizer.apply_chat_template(
        messages, tools=tools, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    input_ids = list(encoded["input_ids"])
    labels = [token if mask else -100 for token, mask in zip(input_ids, encoded["assistant_masks"], strict=True)]
    return input_ids, labels


def _collate(examples: list[tuple[list, list]], pad_token_id: int) -> tuple[torch.Tensor, ...]:
    length = max(len(input_ids) for input_ids, _ in examples)
    input_ids = torch.full((len(examples), length), pad_token_id)
    labels = torch.full((len(examples), length), -100)
    attention_mask = torch.zeros((len(examples), length), dtype=torch.long)
    for row, (ids, row_labels) in enumerate(examples):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        labels[row, : len(ids)] = torch.tensor(row_labels)
        attention_mask[row, : len(ids)] = 1
    return input_ids, labels, attention_mask


def default_instructor(
    operations: OperationLibrary,
    task_prompt: str,
    num_steps: int = 60,
    learning_rate: float = 5e-3,
    cache_dir: str | os.PathLike | None = None,
) -> str:
    r"""
    Returns the folder of the offline default instructor for these operations and prompt, building it on first use:
    a tiny chat model (tokenizer trained on the transcripts), warm-started for `num_steps` on tool-call transcripts of
    the quickstart seeds. The folder name hashes every input, so a change of operations or prompt builds a new one.

    Args:
        operations ([`OperationLibrary`]):
            The tools the instructor learns to call. The transcripts are played with the rules engine, so every
            operation needs a rules-engine strategy.
        task_prompt (`str`):
            The user message of the episodes.
        num_steps (`int`, *optional*, defaults to `60`):
            Warm-start SFT steps (batch 16).
        learning_rate (`float`, *optional*, defaults to `5e-3`):
            Warm-start learning rate.
        cache_dir (`str` or `os.PathLike`, *optional*):
            Where built models are kept; the one models cache by default
            ([`~instrl_trl.models.builtin.models_cache_dir`]).

    Returns:
        `str`: The model folder (loads with `AutoModelForCausalLM.from_pretrained`).
    """
    rules = {name: rules_options(operation) for name, operation in operations.items()}
    without_rule = [name for name, options in rules.items() if options.strategy not in RULES]
    if without_rule:
        raise ValueError(
            f"Operations {without_rule} have no rules-engine strategy (`backend_options.rules.strategy`), so the "
            "offline default instructor cannot be warm-started on "
            "them (its transcripts are played with the rules engine). Set `model_name_or_path` to an instruct model "
            "with a tool-calling chat template."
        )
    key = json.dumps(
        {
            "version": BUILDER_VERSION,
            "operations": [
                [op.name, op.description, rules[op.name].strategy, list(rules[op.name].texts)]
                for op in operations.values()
            ],
            "task_prompt": task_prompt,
            "num_steps": num_steps,
            "learning_rate": learning_rate,
        },
        sort_keys=True,
    )
    folder = Path(cache_dir or models_cache_dir()) / f"tiny-instructor-{hashlib.sha256(key.encode()).hexdigest()[:16]}"
    if (folder / "config.json").is_file():
        return str(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    building = tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent)
    try:
        transcripts = tool_call_transcripts(operations, task_prompt, training_corpus())
        factory = InstructionEnvironmentFactory(
            operations, RulesRewriter(), RulesReviewer(), [information_gain_reward]
        )
        tools = tool_schemas(factory)
        build_tiny_tool_chat_model(building, _corpus(transcripts, factory.tool_names))
        warm_start(building, transcripts, tools, num_steps=num_steps, learning_rate=learning_rate)
        try:
            # Atomic: a concurrent build (another rank) of the same folder either wins or finds this one
            os.rename(building, folder)
        except OSError:
            if not (folder / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return str(folder)


def _corpus(transcripts: list[list[dict]], tool_names: list[str]) -> list[str]:
    # The texts the chat template writes around its special tokens: frequent pieces (tool names, the call syntax)
    # then get short tokens
    texts = ["Tools: " + " ".join(tool_names)]
    for messages in transcripts:
        for message in messages:
            texts.append(message["content"])
            for call in message.get("tool_calls", []):
                texts.append(json.dumps({"name": call["function"]["name"], "arguments": {}}))
    return texts
