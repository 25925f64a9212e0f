import os
import threading
from contextlib import contextmanager
from copy import deepcopy

import pytest
import torch
import transformers
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from instrl_trl.environment import STOP_ACTION, format_state
from instrl_trl.operations import DEFAULT_OPERATION_NAMES
from instrl_trl.policy import (
    VALUE_HEAD_FILE,
    PolicyOutput,
    act,
    act_each,
    add_value_head,
    build_policy,
    check_policy_labels,
    get_action_and_value,
    policy_forward,
    save_value_head,
    settled_actions,
    settling_margin,
)


ACTIONS = [*DEFAULT_OPERATION_NAMES, STOP_ACTION]
STATES = [
    format_state("Write a poem about the ocean.", []),
    format_state("Plan a trip to a city.", ["concretizing"]),
    format_state("Calculate the total cost of five apples.", ["deepening", "add_constraints"]),
]


@pytest.fixture(scope="module")
def tokenizer(tiny_backbone):
    return AutoTokenizer.from_pretrained(tiny_backbone)


@pytest.fixture(scope="module")
def policy(tiny_backbone):
    torch.manual_seed(0)
    return build_policy(tiny_backbone, ACTIONS).eval()


@pytest.fixture(scope="module")
def saved_policy(policy, tokenizer, tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("policy"))
    with torch.no_grad():  # a value head that differs from a fresh one, so that restoring it is visible
        policy.v_head.bias.fill_(0.25)
    # as the trainer's `_save` does: the value head goes to its own file, not into the classifier's weights
    state_dict = {key: value for key, value in policy.state_dict().items() if not key.startswith("v_head.")}
    policy.save_pretrained(folder, state_dict=state_dict)
    save_value_head(policy, folder)
    tokenizer.save_pretrained(folder)
    return folder


def encode(tokenizer, states=STATES):
    return tokenizer(states, padding=True, return_tensors="pt")


def test_build_policy_labels_are_the_action_names(policy):
    assert policy.config.id2label == dict(enumerate(ACTIONS))
    assert policy.config.label2id == {name: i for i, name in enumerate(ACTIONS)}
    assert policy.config.num_labels == len(ACTIONS)
    assert isinstance(policy.v_head, torch.nn.Linear)
    assert policy.v_head.out_features == 1
    check_policy_labels(policy, ACTIONS)


def test_forward_returns_logits_and_state_values(policy, tokenizer):
    with torch.no_grad():
        outputs = policy(**encode(tokenizer))
    assert isinstance(outputs, PolicyOutput)
    assert outputs.logits.shape == (len(STATES), len(ACTIONS))
    assert outputs.state_values.shape == (len(STATES),)
    assert torch.isfinite(outputs.state_values).all()


def test_value_gradient_reaches_the_head_and_the_backbone(tiny_backbone, tokenizer):
    model = build_policy(tiny_backbone, ACTIONS)
    model(**encode(tokenizer)).state_values.sum().backward()
    assert model.v_head.weight.grad is not None and model.v_head.weight.grad.abs().sum() > 0
    embeddings = model.get_input_embeddings().weight
    assert embeddings.grad is not None and embeddings.grad.abs().sum() > 0


def test_add_value_head_twice_is_harmless(tiny_backbone, tokenizer):
    model = build_policy(tiny_backbone, ACTIONS).eval()
    v_head = model.v_head
    assert add_value_head(model) is model
    assert model.v_head is v_head
    with torch.no_grad():
        assert model(**encode(tokenizer)).state_values.shape == (len(STATES),)


def test_act_greedy_is_deterministic(policy, tokenizer):
    actions, logprobs, values = act(policy, tokenizer, STATES, greedy=True)
    again = act(policy, tokenizer, STATES, greedy=True)
    assert all(torch.equal(a, b) for a, b in zip((actions, logprobs, values), again, strict=True))
    assert actions.shape == logprobs.shape == values.shape == (len(STATES),)
    with torch.no_grad():
        outputs = policy(**encode(tokenizer))
    assert torch.equal(actions, outputs.logits.argmax(-1))
    torch.testing.assert_close(logprobs, torch.log_softmax(outputs.logits, -1).max(-1).values)
    torch.testing.assert_close(values, outputs.state_values)


def test_forward_passes_from_two_threads_keep_their_own_values(policy, tokenizer):
    # A pipelined rollout acts in one thread while another scores complete steps, both with the same model: each
    # forward's values must come from its own hidden states (batches of other sizes make a mix-up visible)
    batches = [STATES[:1], STATES * 3]
    tokenizers = [tokenizer, deepcopy(tokenizer)]  # a fast tokenizer is not thread-safe: one each, as the trainer does
    expected = [act(policy, tokenizer, states, greedy=True)[2] for states in batches]
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            for _ in range(100):
                values = act(policy, tokenizers[index], batches[index], greedy=True)[2]
                torch.testing.assert_close(values, expected[index], rtol=0, atol=0)
        except BaseException as error:  # noqa: BLE001 - reported by the main thread
            errors.append(error)

    threads = [threading.Thread(target=run, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_act_sampling_is_reproducible_with_a_seeded_generator(policy, tokenizer):
    states = STATES * 8

    def sample(seed):
        return act(policy, tokenizer, states, generator=torch.Generator().manual_seed(seed))

    first, second = sample(7), sample(7)
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))
    actions, logprobs, _ = first
    assert ((0 <= actions) & (actions < len(ACTIONS))).all()
    assert (logprobs <= 0).all()
    # an untrained head is close to uniform, so other seeds draw other actions
    assert any(not torch.equal(sample(seed)[0], actions) for seed in range(8, 12))


def test_get_action_and_value_at_a_temperature(policy, tokenizer):
    with torch.no_grad():
        outputs = policy(**encode(tokenizer))
        actions, logprobs, entropy, values = get_action_and_value(
            policy, tokenizer, STATES, actions=torch.tensor([0, 3, 5]), temperature=0.5
        )
    expected = torch.log_softmax(outputs.logits / 0.5, -1)
    assert actions.tolist() == [0, 3, 5]
    torch.testing.assert_close(values, outputs.state_values)
    torch.testing.assert_close(logprobs, expected[torch.arange(3), actions])
    torch.testing.assert_close(entropy, -(expected.exp() * expected).sum(-1))
    # `act` samples from the same distribution: re-evaluating its actions gives its log-probabilities exactly
    sampled, old_logprobs, old_values = act(
        policy, tokenizer, STATES * 4, generator=torch.Generator().manual_seed(0), temperature=0.5
    )
    with torch.no_grad():
        _, new_logprobs, _, new_values = get_action_and_value(
            policy, tokenizer, STATES * 4, actions=sampled, temperature=0.5
        )
    assert torch.equal(new_logprobs, old_logprobs) and torch.equal(new_values, old_values)


def test_policy_forward_runs_length_sorted_passes_and_keeps_the_order(policy, tokenizer):
    states = [
        format_state("Write a detailed essay on the history of the printing press in Europe and its effects.", []),
        format_state("Sing.", []),
        format_state("Plan a trip to a city by the sea.", ["concretizing"]),
        format_state("Cook.", []),
        format_state("Explain how tides form, with the moon, the sun and the shape of the coast.", ["deepening"]),
    ]
    lengths = [len(ids) for ids in tokenizer(states)["input_ids"]]
    widths = []
    hook = policy.register_forward_pre_hook(
        lambda module, args, kwargs: widths.append(kwargs["input_ids"].shape), with_kwargs=True
    )
    try:
        with torch.no_grad():
            logits, values = policy_forward(policy, tokenizer, states, tokens_per_pass=40)
            num_passes = len(widths)
            widths.clear()
            policy_forward(policy, tokenizer, states)
            alone = [policy(**encode(tokenizer, [state])) for state in states]
    finally:
        hook.remove()
    assert num_passes > 2
    assert widths[0] == (5, max(lengths))  # without a budget: one pass padded to the longest
    # each state's numbers are its own, in the order given (padding moves them by float rounding only)
    torch.testing.assert_close(logits, torch.cat([outputs.logits for outputs in alone]), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(values, torch.cat([outputs.state_values for outputs in alone]), atol=1e-5, rtol=1e-5)


def test_policy_forward_fills_each_pass_up_to_its_token_budget(policy, tokenizer):
    states = [format_state("Sing." if i % 2 else "Write a long essay about rivers, " * (i + 1), []) for i in range(6)]
    lengths = sorted(len(ids) for ids in tokenizer(states)["input_ids"])
    short, longest = lengths[0], lengths[-1]
    assert lengths[:3] == [short] * 3 and lengths[3] > short  # three short states, three longer ones
    assert 4 * lengths[3] > 2 * lengths[4] and 3 * short < 2 * lengths[4]  # what the second budget below relies on
    shapes = []
    hook = policy.register_forward_pre_hook(
        lambda module, args, kwargs: shapes.append(tuple(kwargs["input_ids"].shape)), with_kwargs=True
    )
    try:
        with torch.no_grad():
            policy_forward(policy, tokenizer, states, tokens_per_pass=3 * short)
            shapes.append("|")
            policy_forward(policy, tokenizer, states, tokens_per_pass=2 * lengths[4])
    finally:
        hook.remove()
    # the short states share a pass of exactly the budget; each longer one is alone, padded to its own length
    assert shapes[: shapes.index("|")] == [(3, short), (1, lengths[3]), (1, lengths[4]), (1, longest)]
    # a budget of two of the fifth's length: the fourth joins the fifth (not the short ones: 4 x its length is over)
    assert shapes[shapes.index("|") + 1 :] == [(3, short), (2, lengths[4]), (1, longest)]


def first_draw(seed: int) -> float:
    return float(torch.rand((), generator=torch.Generator().manual_seed(seed), dtype=torch.float64))


@contextmanager
def logits_by_pass_size(policy, logits_for):
    """The policy's logits replaced, for every state, by `logits_for(number of states in the forward pass)`."""

    def replace(module, args, kwargs, output):
        rows = kwargs["input_ids"].shape[0]
        output.logits = logits_for(rows).to(output.logits.dtype).expand(rows, -1).clone()
        return output

    hook = policy.register_forward_hook(replace, with_kwargs=True)
    try:
        yield
    finally:
        hook.remove()


def test_a_draw_near_a_boundary_is_settled_by_the_state_alone(policy, tokenizer):
    # Sharing a pass moves the first action's probability across this state's draw: alone the draw picks action 0,
    # in a pass of two it would pick action 1. The state's own pass settles it: action 0 in both cases.
    draw, shift = first_draw(0), settling_margin(torch.float32) / 10

    def logits_for(rows):
        first = draw + shift if rows == 1 else draw - shift
        rest = (1 - first) / (len(ACTIONS) - 1)
        return torch.tensor([first] + [rest] * (len(ACTIONS) - 1)).log()

    def streams(count):
        return [torch.Generator().manual_seed(0) for _ in range(count)]

    with logits_by_pass_size(policy, logits_for), torch.no_grad():
        shared_probability = policy(**encode(tokenizer, STATES[:2])).logits.softmax(-1)[0, 0].item()
        alone = act_each(policy, tokenizer, STATES[:1], streams(1))
        in_pass_of_two = act_each(policy, tokenizer, STATES[:2], streams(2))
        sampled, _, _ = act(policy, tokenizer, STATES[:2], generator=streams(2))
    assert draw >= shared_probability  # the shared pass's own probabilities would not pick action 0
    assert alone == [0] and in_pass_of_two == [0, 0] and sampled.tolist() == [0, 0]


def test_a_greedy_near_tie_is_settled_by_the_state_alone(policy, tokenizer):
    lead = settling_margin(torch.float32) / 10

    def logits_for(rows):  # alone, action 2 leads by a hair; in a shared pass, action 3 does
        probs = torch.full((len(ACTIONS),), 0.1)
        probs[2], probs[3] = (0.25 + lead, 0.25) if rows == 1 else (0.25, 0.25 + lead)
        return probs.log()

    generators = [torch.Generator().manual_seed(0) for _ in STATES]
    with logits_by_pass_size(policy, logits_for), torch.no_grad():
        assert act_each(policy, tokenizer, STATES, generators, greedy=True) == [2, 2, 2]


def test_draws_away_from_boundaries_cost_no_extra_pass(policy, tokenizer):
    calls = []
    hook = policy.register_forward_pre_hook(lambda module, args: calls.append(1))
    try:
        with torch.no_grad():
            actions = act_each(policy, tokenizer, STATES, [torch.Generator().manual_seed(i) for i in range(3)])
    finally:
        hook.remove()
    assert len(calls) == 1 and len(actions) == 3


def test_half_precision_logits_settle_every_draw():
    # bfloat16 rounds at ~1e-2: no margin short of all of [0, 1] keeps a shared pass's draw exact
    assert settling_margin(torch.float32) == pytest.approx(1.19e-4, rel=0.01)
    assert settling_margin(torch.bfloat16) == 1.0
    settled = []
    probs = torch.tensor([[0.5, 0.3, 0.2], [0.1, 0.1, 0.8]])

    def settle(index):
        settled.append(index)
        return probs[index]

    generators = [torch.Generator().manual_seed(i) for i in range(2)]
    settled_actions(probs, settle, generators, margin=settling_margin(torch.bfloat16))
    assert settled == [0, 1]
    settled.clear()
    assert settled_actions(probs, settle, margin=settling_margin(torch.float32)) == [0, 2] and settled == []


def test_saved_policy_restores_logits_values_and_value_head(policy, saved_policy, tokenizer):
    assert os.path.isfile(os.path.join(saved_policy, VALUE_HEAD_FILE))
    restored = build_policy(saved_policy, ACTIONS).eval()
    for key, value in policy.v_head.state_dict().items():
        assert torch.equal(restored.v_head.state_dict()[key], value)
    with torch.no_grad():
        expected, actual = policy(**encode(tokenizer)), restored(**encode(tokenizer))
    torch.testing.assert_close(actual.logits, expected.logits)
    torch.testing.assert_close(actual.state_values, expected.state_values)


def test_saved_policy_loads_as_a_plain_classifier(saved_policy):
    model, loading_info = AutoModelForSequenceClassification.from_pretrained(saved_policy, output_loading_info=True)
    assert model.config.id2label == dict(enumerate(ACTIONS))
    assert not loading_info["missing_keys"] and not loading_info["unexpected_keys"]
    assert not hasattr(model, "v_head")
    classifier = transformers.pipeline("text-classification", model=saved_policy, device="cpu")
    predictions = classifier(STATES)
    assert len(predictions) == len(STATES)
    assert all(prediction["label"] in ACTIONS for prediction in predictions)


def test_saved_policy_with_other_operations_raises(saved_policy):
    other = [name for name in ACTIONS if name != "breadth"]
    with pytest.raises(ValueError, match="trained over the operations.*breadth"):
        build_policy(saved_policy, other)
    reordered = [ACTIONS[1], ACTIONS[0], *ACTIONS[2:]]
    with pytest.raises(ValueError, match="operations"):
        build_policy(saved_policy, reordered)


def test_check_policy_labels_raises_on_other_labels(policy):
    with pytest.raises(ValueError, match="id2label.*operations are \\['deepening', 'stop'\\]"):
        check_policy_labels(policy, ["deepening", STOP_ACTION])
