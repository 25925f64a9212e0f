import os

from huggingface_hub import HfApi, ModelCard, snapshot_download

from instrl_trl import InstructionGenerationConfig, InstructionGenerationTrainer


def test_push_to_hub_token_never_in_pushed_files(hub, tiny_backbone, quickstart_seeds, tmp_path):
    # The token the clients send to the local Hub (read at import, see conftest), also given as an argument: the
    # argument is what could leak into the card, the config files or the pickled training arguments.
    token = os.environ["HF_TOKEN"]
    repo_id = "user/policy-token-check"
    args = InstructionGenerationConfig(
        output_dir=str(tmp_path / "policy"),
        hub_model_id=repo_id,
        hub_token=token,
        per_device_train_batch_size=8,
        steps_per_generation=2,
        num_iterations=1,
        max_steps=1,
        save_strategy="no",
        report_to="none",
        reward_funcs=["information_gain", "elimination", "query_cost"],
        reward_weights=[1.0, 1.0, 0.25],
        max_state_length=64,
        disable_tqdm=True,
    )
    trainer = InstructionGenerationTrainer(model=tiny_backbone, args=args, train_dataset=quickstart_seeds)
    trainer.train()
    trainer.push_to_hub()

    pushed = set(HfApi().list_repo_files(repo_id))
    assert {"README.md", "config.json", "model.safetensors"} <= pushed
    assert ModelCard.load(repo_id).data.library_name == "transformers"
    local = snapshot_download(repo_id, local_dir=tmp_path / "downloaded")
    checked = 0
    for root, _, names in os.walk(local):
        for name in names:
            with open(os.path.join(root, name), "rb") as file:
                assert token.encode() not in file.read(), name
            checked += 1
    assert checked >= len(pushed)
