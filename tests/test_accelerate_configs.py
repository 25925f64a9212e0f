from pathlib import Path

import pytest
from accelerate.commands.config.config_args import load_config_from_file
from accelerate.utils import DistributedType


CONFIG_DIR = Path(__file__).resolve().parents[1] / "recipes" / "accelerate_configs"
EXPECTED = {
    "cpu": DistributedType.NO,
    "ddp": DistributedType.MULTI_GPU,
    "zero2": DistributedType.DEEPSPEED,
    "zero3": DistributedType.DEEPSPEED,
    "zero3_offload": DistributedType.DEEPSPEED,
}


def test_every_config_is_tested():
    assert {path.stem for path in CONFIG_DIR.glob("*.yaml")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_accelerate_config_loads(name):
    path = CONFIG_DIR / f"{name}.yaml"
    # Accelerate's own loader rejects unknown keys, as `accelerate launch --config_file` does.
    config = load_config_from_file(str(path))
    assert config.compute_environment == "LOCAL_MACHINE"
    assert config.distributed_type == EXPECTED[name]
    assert config.machine_rank == 0
    assert config.main_training_function == "main"
    if name == "cpu":
        assert config.use_cpu is True
        assert config.num_processes == 1
    else:
        assert config.use_cpu is False
        assert config.num_processes == 8
        # ZeRO-3 also runs the README's CPU quickstart: its precision comes from the recipe (see zero3.yaml)
        assert config.mixed_precision == ("no" if name == "zero3" else "bf16")

    first_line = path.read_text(encoding="utf-8").splitlines()[0]
    assert first_line.startswith("# ")
    assert f"--config_file recipes/accelerate_configs/{name}.yaml" in path.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", ["zero2", "zero3", "zero3_offload"])
def test_deepspeed_configs(name):
    deepspeed_config = load_config_from_file(str(CONFIG_DIR / f"{name}.yaml")).deepspeed_config
    zero_stage = int(name[4])
    assert deepspeed_config["zero_stage"] == zero_stage
    if zero_stage == 3:
        # Without it, a ZeRO-3 `save_model` writes sharded states instead of loadable weights.
        assert deepspeed_config["zero3_save_16bit_model"] is True
        assert deepspeed_config["zero3_init_flag"] is True
    offload = "cpu" if name.endswith("_offload") else "none"
    assert deepspeed_config["offload_optimizer_device"] == offload
    assert deepspeed_config["offload_param_device"] == offload
