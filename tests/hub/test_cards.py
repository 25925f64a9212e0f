import re

import pytest
from huggingface_hub import ModelCard, ModelCardData

from instrl_trl.hub import framework_versions, render_model_card, template_path
from instrl_trl.hub.cards import REPO_TEMPLATES_DIR


OPERATIONS = [
    {"name": "add_constraints", "description": "Adds one or more constraints to the instruction.", "frequency": 0.375},
    {"name": "deepening", "description": "Asks for more depth on the same topic.", "frequency": 0.25},
    {"name": "stop", "description": "Keeps the instruction as it is.", "frequency": None},
]


def _jinja_left_over(text):
    """Jinja markers in `text` outside the BibTeX blocks (BibTeX titles legitimately use `{{...}}`)."""
    outside_bibtex = re.sub(r"```bibtex\n.*?```", "", text, flags=re.DOTALL)
    return [marker for marker in ("{{", "}}", "{%", "%}", "{#") if marker in outside_bibtex]


def _card_data(**kwargs):
    return ModelCardData(
        library_name="transformers",
        license="apache-2.0",
        pipeline_tag="text-classification",
        tags=["instrl-trl", "teams-rl"],
        **kwargs,
    )


def _render_policy_card(tmp_path, **overrides):
    values = {
        "model_name": "teams-rl-policy",
        "hub_model_id": "someone/teams-rl-policy",
        "dataset_name": "someone/quickstart-seeds",
        "operations": OPERATIONS,
        "reward_weights": {"information_gain": 1.0, "query_cost": 0.05},
        "num_episodes": 512,
        "mean_reward": 0.4321,
        "accepted_rate": 0.8125,
        "queries_total": 1234,
        "cost_ratios": {"LLM queries per accepted evolution": 2.5},
        "tokens_per_role": {"rewriter": {"prompt": 100, "completion": 40}},
        "wandb_url": "https://wandb.ai/someone/instrl/runs/abc123",
        "example_state": "Instruction: Plan a trip to a city.\nOperations so far: concretizing",
        "output_dir": str(tmp_path / "run"),  # a local path: must not reach the card
    }
    values.update(overrides)
    card_data = _card_data(base_model=str(tmp_path), model_name="teams-rl-policy")
    return render_model_card("policy_card.md", card_data, **values)


def test_template_path_finds_the_policy_card():
    path = template_path("policy_card.md")
    assert path.is_file()
    assert path.name == "policy_card.md"


def test_template_path_lists_the_searched_places():
    with pytest.raises(FileNotFoundError, match="Searched") as error:
        template_path("no_such_card.md")
    assert "instrl_trl.model_cards" in str(error.value)
    assert str(REPO_TEMPLATES_DIR) in str(error.value)


def test_framework_versions():
    versions = framework_versions()
    assert set(versions) == {
        "instrl_trl_version",
        "trl_version",
        "transformers_version",
        "pytorch_version",
        "datasets_version",
        "tokenizers_version",
    }
    assert all(isinstance(v, str) and v for v in versions.values())


def test_render_policy_card(tmp_path):
    text = str(_render_policy_card(tmp_path))

    assert _jinja_left_over(text) == []
    assert text.count("```bibtex") == 2
    for expected in [
        "# Operation policy card for teams-rl-policy",
        'pipeline("text-classification", model="someone/teams-rl-policy")',
        "| `add_constraints` | Adds one or more constraints to the instruction. | 37.5% |",
        "| `deepening` | Asks for more depth on the same topic. | 25.0% |",
        "| `stop` | Keeps the instruction as it is. | - |",
        "- `information_gain`: 1.0",
        "- `query_cost`: 0.05",
        "- Episodes: 512",
        "- Mean reward: 0.4321",
        "- Accepted instructions: 81.2%",
        "- LLM queries in total: 1234",
        "- LLM queries per accepted evolution: 2.50",
        "- Tokens per role (prompt + completion): rewriter 100 + 40",
        "https://huggingface.co/datasets/someone/quickstart-seeds",
        "https://wandb.ai/someone/instrl/runs/abc123",
        f"- TRL: {framework_versions()['trl_version']}",
        "@article{gu2024teamsrl,",
        "@software{vonwerra2020trl,",
        "title   = {{TRL: Transformers Reinforcement Learning}}",  # `{% raw %}` keeps BibTeX's double braces
    ]:
        assert expected in text, expected
    # The example state is a valid Python string literal, newline escaped.
    assert 'state = "Instruction: Plan a trip to a city.\\nOperations so far: concretizing"' in text

    # Front matter parses back into card data; the local base model was dropped.
    data = ModelCard(text).data
    assert data.license == "apache-2.0"
    assert data.pipeline_tag == "text-classification"
    assert data.tags == ["instrl-trl", "teams-rl"]
    assert data.base_model is None

    # Neither the run's local paths nor the template's own path leak into the card.
    assert str(tmp_path) not in text
    assert str(REPO_TEMPLATES_DIR) not in text
    assert not re.search(r"(^|[\s(\"'])/(tmp|home|root|work|Users)/", text, re.MULTILINE)


def test_render_policy_card_does_not_modify_the_callers_card_data(tmp_path):
    card_data = _card_data(base_model=str(tmp_path))
    render_model_card("policy_card.md", card_data, model_name="policy")
    assert card_data.base_model == str(tmp_path)


def test_render_policy_card_with_hub_base_model():
    card_data = _card_data(base_model="someone/tiny-classifier", model_name="policy")
    text = str(render_model_card("policy_card.md", card_data, model_name="policy"))  # base_model from card_data
    assert "[someone/tiny-classifier](https://huggingface.co/someone/tiny-classifier)" in text
    assert ModelCard(text).data.base_model == "someone/tiny-classifier"


def test_render_policy_card_minimal_values_leave_out_optional_sections():
    text = str(render_model_card("policy_card.md", _card_data(model_name="policy"), model_name="policy"))
    assert _jinja_left_over(text) == []
    assert 'model="policy"' in text
    for absent in ["Mean reward", "Episodes:", "Reward weights", "Visualize in Weights & Biases", "fine-tuned from"]:
        assert absent not in text, absent
    assert "The operation list was not recorded" in text
    # A zero is a result, not a missing value.
    text = str(render_model_card("policy_card.md", _card_data(), model_name="policy", mean_reward=0.0))
    assert "- Mean reward: 0.0000" in text


def test_render_model_card_refuses_a_token(tmp_path):
    with pytest.raises(ValueError, match="token"):
        _render_policy_card(tmp_path, model_name="hf_" + "a" * 34)
