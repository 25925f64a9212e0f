"""Seeds that look like secrets are refused by the seed loader, before any query, and never reach a written file."""

import json
from pathlib import Path

import pytest
import yaml
from datasets import Dataset

from instrl_trl.cli.main import main as cli_main
from instrl_trl.data import load_heldout_seeds, load_quickstart_seeds
from instrl_trl.data.seeds import prepare_seed_dataset
from instrl_trl.hub.secrets import SECRET_PATTERNS, check_no_secrets, find_secret


RECIPES_DIR = Path(__file__).resolve().parents[1] / "recipes" / "quickstart"
STAGE_RECIPES = {"generate": "generate.yaml", "train-policy": "policy.yaml", "train-instructor": "instructor.yaml"}
# Built here rather than written out, so that no scanner mistakes this file for a leak; the shapes are the issuers'
HF_TOKEN = "hf_" + "QmZx7Rk2Lw9Tn4Vb8Yc1Jd6Pf3Gh5Ks0Aq"
SECRETS = {
    "Hugging Face token": HF_TOKEN,
    "OpenAI-style API key": "sk-proj-" + "a1B2c3D4e5F6g7H8i9J0" * 3,
    "GitHub token": "ghp_" + "x9Y8z7W6v5U4t3S2r1Q0" * 2,
    "AWS access key id": "AKIA" + "IOSFODNN7EXAMPLE",
    "Google API key": "AIza" + "Sy" + "D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8s9T",
    "Slack token": "xoxb-" + "1234567890-abcdefghijklmnop",
    "Stripe secret key": "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc",
    "private key": "-----BEGIN RSA PRIVATE KEY-----",
}
# Ordinary text near the patterns: none of it may be refused
NOT_SECRETS = [
    "Explain what sk-learn's fit method does.",
    "Compare sk-learn-is-a-python-library-for-machine-learning with PyTorch.",
    "Call hf_hub_download to fetch the config of a model.",
    "Describe the AKIA protocol in three sentences.",
    "Write a haiku about the NASA ASIA EUROPE AFRICA tour.",
    "List ghp_ prefixes used by GitHub, without any real token.",
    "Summarise how PEM files begin with -----BEGIN CERTIFICATE-----.",
]


def write_seeds(path: Path, secret: str, index: int = 3) -> str:
    seeds = [f"Describe a place you would like to visit number {i}." for i in range(8)]
    seeds[index] = f"Log in with {secret} and list the files."
    path.write_text("".join(json.dumps({"instruction": seed}) + "\n" for seed in seeds))
    return str(path)


def files_containing(folder: Path, text: str) -> list[str]:
    """Every file under `folder` (parquet, sqlite, JSON, cards...) whose bytes contain `text`."""
    return [str(p) for p in folder.rglob("*") if p.is_file() and text.encode() in p.read_bytes()]


def test_every_kind_is_recognised_and_ordinary_text_is_not():
    assert set(SECRETS) == set(SECRET_PATTERNS)
    for kind, secret in SECRETS.items():
        assert find_secret(f"Use {secret} here.") == kind
    for text in NOT_SECRETS:
        assert find_secret(text) is None, text
    # the instructions shipped with the package are all plain text
    for seeds in (load_quickstart_seeds(), load_heldout_seeds()):
        check_no_secrets(seeds["instruction"], "instruction")


def test_the_error_names_the_rows_and_never_the_secret():
    texts = ["Name a river.", f"Token: {HF_TOKEN}", "Name a lake.", f"key {SECRETS['AWS access key id']}", None]
    with pytest.raises(ValueError) as error:
        check_no_secrets(texts, "instruction")
    message = str(error.value)
    assert "2 seeds in `instruction`" in message
    assert "row 1 (Hugging Face token), 3 (AWS access key id)" in message
    assert "revoke" in message
    assert not any(secret in message for secret in SECRETS.values())


def test_prepare_seed_dataset_names_the_row_as_given():
    # the empty row 0 is dropped later: the error still counts it, so the row named is the user's row
    dataset = Dataset.from_dict({"instruction": ["", "Name a river.", f"Use {HF_TOKEN}."]})
    with pytest.raises(ValueError, match=r"at row 2 \(Hugging Face token\)"):
        prepare_seed_dataset(dataset, "instruction")


@pytest.mark.parametrize("stage", list(STAGE_RECIPES))
def test_every_stage_refuses_the_seed_before_writing_anything(stage, tmp_path, capsys):
    recipe = yaml.safe_load((RECIPES_DIR / STAGE_RECIPES[stage]).read_text())
    output_dir = tmp_path / "run"
    recipe.update(output_dir=str(output_dir), dataset_name=write_seeds(tmp_path / "seeds.jsonl", HF_TOKEN))
    path = tmp_path / f"{stage}.yaml"
    path.write_text(yaml.safe_dump(recipe))

    assert cli_main([stage, "--config", str(path)]) == 1

    captured = capsys.readouterr()
    assert "1 seed in `instruction` look like they hold a secret, at row 3 (Hugging Face token)" in captured.err
    assert HF_TOKEN not in captured.err + captured.out
    assert not output_dir.exists()  # refused before the folder is claimed: no lock, no shard, no cache


def test_a_token_in_a_seed_never_reaches_a_shard_the_cache_or_the_hub(hub, tmp_path, capsys):
    from huggingface_hub import HfApi

    from instrl_trl.cli.generate import main
    from instrl_trl.generation import DatasetGenerationConfig

    output_dir = tmp_path / "dataset"
    config = DatasetGenerationConfig(
        policy="uniform",
        dataset_name=write_seeds(tmp_path / "seeds.jsonl", HF_TOKEN, index=5),
        output_dir=str(output_dir),
        response_cache=str(output_dir / "response_cache.sqlite"),
        keep_unverified=True,
        push_to_hub=True,
        hub_dataset_id="user/instructions",
    )
    with pytest.raises(ValueError, match=r"at row 5 \(Hugging Face token\)") as error:
        main(config)
    assert HF_TOKEN not in str(error.value)
    written = list(tmp_path.rglob("*"))
    assert files_containing(tmp_path, HF_TOKEN) == [str(tmp_path / "seeds.jsonl")]  # the user's own file only
    assert not any(p.suffix in (".parquet", ".sqlite") for p in written)
    assert not HfApi().repo_exists("user/instructions", repo_type="dataset")
    assert hub.repos == {} and hub.lfs_store == {}  # nothing pushed anywhere
    assert HF_TOKEN not in capsys.readouterr().out
