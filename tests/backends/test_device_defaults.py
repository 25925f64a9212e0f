import pytest
import torch
from transformers import LlamaConfig

from instrl_trl.backends import device_defaults
from instrl_trl.backends.device_defaults import (
    MAX_AUTO_BATCH_SIZE,
    cpu_bfloat16_is_faster,
    default_batch_size,
    default_dtype,
    measure_bfloat16_speedup,
)
from instrl_trl.backends.transformers import TransformersGenerator


@pytest.fixture
def fresh_check():
    cpu_bfloat16_is_faster.cache_clear()
    yield
    cpu_bfloat16_is_faster.cache_clear()


@pytest.mark.parametrize(
    ("kernels", "speedup", "expected"),
    [(False, 9.0, torch.float32), (True, 1.1, torch.float32), (True, 2.0, torch.bfloat16)],
)
def test_cpu_picks_bfloat16_with_kernels_and_a_measured_gain(monkeypatch, fresh_check, kernels, speedup, expected):
    measured = []
    monkeypatch.setattr(device_defaults, "_has_bfloat16_kernels", lambda: kernels)
    monkeypatch.setattr(device_defaults, "measure_bfloat16_speedup", lambda: measured.append(1) or speedup)
    assert default_dtype("cpu") == expected
    assert default_dtype(torch.device("cpu")) == expected
    # Measured once per process, and only where the CPU has bfloat16 kernels
    assert len(measured) == int(kernels)


def test_the_measurement_is_a_ratio_and_leaves_the_threads_alone():
    threads = torch.get_num_threads()
    speedup = measure_bfloat16_speedup(repetitions=2)
    assert 0 < speedup < 100
    assert torch.get_num_threads() == threads


def test_this_machine_matches_the_rule(fresh_check):
    if not device_defaults._has_bfloat16_kernels():
        assert default_dtype("cpu") == torch.float32  # e.g. AVX2 only: bfloat16 is emulated, several times slower


def test_generator_loads_in_the_default_dtype_unless_told(monkeypatch, tiny_causal_lm):
    monkeypatch.setattr("instrl_trl.backends.transformers.default_dtype", lambda device: torch.bfloat16)
    generator = TransformersGenerator(tiny_causal_lm, device="cpu", max_new_tokens=2)
    assert generator.model.dtype == torch.bfloat16
    assert generator.cache_identity()["dtype"] == "bfloat16"  # cached answers of another dtype are not reused
    assert generator.generate(["Describe a city."])[0].usage.completion_tokens == 2
    forced = TransformersGenerator(tiny_causal_lm, dtype="float32", device="cpu")
    assert forced.model.dtype == torch.float32


def smollm2_config() -> LlamaConfig:
    # SmolLM2-135M's shape: 30 layers, 3 key-value heads of 64
    return LlamaConfig(hidden_size=576, num_attention_heads=9, num_key_value_heads=3, num_hidden_layers=30)


def test_batch_size_fits_a_quarter_of_the_free_memory(monkeypatch):
    bytes_per_row = 2 * 30 * 3 * 64 * 2 * (1024 + 256)  # keys and values, bfloat16, planned prompt + completion
    monkeypatch.setattr(device_defaults, "_free_memory", lambda device: 4 * bytes_per_row * 10)
    assert default_batch_size(smollm2_config(), torch.bfloat16, "cpu", 256) == 10
    assert default_batch_size(smollm2_config(), torch.float32, "cpu", 256) == 5  # twice the bytes
    monkeypatch.setattr(device_defaults, "_free_memory", lambda device: 1)
    assert default_batch_size(smollm2_config(), torch.bfloat16, "cpu", 256) == 1
    monkeypatch.setattr(device_defaults, "_free_memory", lambda device: 1 << 50)
    assert default_batch_size(smollm2_config(), torch.bfloat16, "cpu", 256) == MAX_AUTO_BATCH_SIZE


def test_generator_batch_size_defaults_to_what_fits(monkeypatch, tiny_causal_lm):
    monkeypatch.setattr(device_defaults, "_free_memory", lambda device: 1 << 50)
    assert TransformersGenerator(tiny_causal_lm, device="cpu").batch_size == MAX_AUTO_BATCH_SIZE
    assert TransformersGenerator(tiny_causal_lm, device="cpu", batch_size=3).batch_size == 3
