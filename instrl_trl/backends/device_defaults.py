"""
What the transformers backend picks for a device when a recipe leaves it open: the dtype that generates faster there,
and the widest batch that memory allows.

The dtype rule, on CPU: bfloat16 only where oneDNN has bfloat16 kernels for this CPU (AVX512-BW/VL/DQ or newer, the
check `torch.ops.mkldnn._is_mkldnn_bf16_supported()`) **and** a short measured check finds a bfloat16 matrix product of
a small model's shape at least `MIN_BFLOAT16_SPEEDUP` times faster than float32. Both halves are needed: on an
AVX2-only CPU (no bfloat16 kernels) the same product measured 3-8x *slower* in bfloat16, and a flag alone says
nothing about the memory bandwidth that decoding mostly waits on. The measurement runs once per process, on one
thread, and keeps the best of several interleaved repetitions, so that a loaded machine does not flip it. On CUDA:
bfloat16 where the GPU supports it. Elsewhere: float32. A role's `dtype` overrides the rule either way.
"""

import functools
import time

import torch


# bfloat16 must beat float32 by this factor in the measured check; a tie keeps float32, which is exact
MIN_BFLOAT16_SPEEDUP = 1.25
# The measured product: a batch of 8 hidden states of SmolLM2-135M through one MLP projection (576 -> 1536)
_CHECK_SHAPE = (8, 576, 1536)
_CHECK_REPETITIONS = 10
# The auto batch size: at most this many rows (a batch waits for its longest row, and a CPU is compute-bound well
# before), and the key-value cache of a batch may use at most this share of the free memory
MAX_AUTO_BATCH_SIZE = 64
_MEMORY_SHARE = 0.25
# The prompt length a batch's memory is planned for, beside `max_new_tokens` (the roles' prompts are a few hundred)
_PLANNED_PROMPT_TOKENS = 1024


def default_dtype(device: str | torch.device) -> torch.dtype:
    r"""
    The dtype the transformers backend loads a model in on `device` when the role names none: bfloat16 where it is
    supported and faster (on CPU, measured: [`cpu_bfloat16_is_faster`]), float32 otherwise.

    Example:
    ```python
    >>> default_dtype("cpu") in (torch.float32, torch.bfloat16)
    True

    ```
    """
    device = torch.device(device)
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    if device.type == "cpu":
        return torch.bfloat16 if cpu_bfloat16_is_faster() else torch.float32
    return torch.float32


@functools.cache
def cpu_bfloat16_is_faster() -> bool:
    """Whether this CPU has bfloat16 kernels and runs a small model's product in bfloat16 faster (see the module)."""
    if not _has_bfloat16_kernels():
        return False
    return measure_bfloat16_speedup() >= MIN_BFLOAT16_SPEEDUP


def _has_bfloat16_kernels() -> bool:
    # oneDNN's own check (AVX512-BW/VL/DQ, AVX512-BF16 or AMX on x86; also true on Arm with bf16)
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def measure_bfloat16_speedup(repetitions: int = _CHECK_REPETITIONS) -> float:
    """
    float32 time / bfloat16 time of one `(8, 576) x (576, 1536)` product on one thread, each the best of
    `repetitions` interleaved runs (about 30 ms in all).
    """
    rows, inputs, outputs = _CHECK_SHAPE
    generator = torch.Generator().manual_seed(0)
    weight = torch.randn(outputs, inputs, generator=generator)
    hidden = torch.randn(rows, inputs, generator=generator)
    operands = {dtype: (hidden.to(dtype), weight.to(dtype)) for dtype in (torch.float32, torch.bfloat16)}
    best = dict.fromkeys(operands, float("inf"))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread: other processes on a busy machine then preempt less of it
    try:
        with torch.inference_mode():
            for x, w in operands.values():  # warm-up: the first call allocates and picks kernels
                torch.nn.functional.linear(x, w)
            for _ in range(repetitions):
                for dtype, (x, w) in operands.items():
                    start = time.perf_counter()
                    torch.nn.functional.linear(x, w)
                    best[dtype] = min(best[dtype], time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads)
    return best[torch.float32] / best[torch.bfloat16]


def default_batch_size(config, dtype: torch.dtype, device: str | torch.device, max_new_tokens: int) -> int:
    r"""
    The widest batch whose key-value cache (for prompts of 1024 tokens plus `max_new_tokens`) fits in a quarter of
    the free memory of `device`, at most `MAX_AUTO_BATCH_SIZE` and at least 1.

    Args:
        config ([`~transformers.PretrainedConfig`]):
            The model's config: its layers, key-value heads and head size give the cache's size per token.
        dtype (`torch.dtype`):
            The dtype the cache is kept in (the model's).
        device (`str` or `torch.device`):
            Where the model runs; CUDA reports its free memory, other devices are planned with the host's.
        max_new_tokens (`int`):
            The longest completion.
    """
    config = config.get_text_config() if hasattr(config, "get_text_config") else config
    num_heads = getattr(config, "num_attention_heads", None) or 1
    head_dim = getattr(config, "head_dim", None) or getattr(config, "hidden_size", 64) // num_heads
    num_kv_heads = getattr(config, "num_key_value_heads", None) or num_heads
    num_layers = getattr(config, "num_hidden_layers", None) or 1
    bytes_per_token = 2 * num_layers * num_kv_heads * head_dim * torch.empty((), dtype=dtype).element_size()
    bytes_per_row = bytes_per_token * (_PLANNED_PROMPT_TOKENS + max_new_tokens)
    rows = int(_free_memory(torch.device(device)) * _MEMORY_SHARE // bytes_per_row)
    return max(1, min(MAX_AUTO_BATCH_SIZE, rows))


def _free_memory(device: torch.device) -> int:
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    import psutil  # a dependency of accelerate

    return psutil.virtual_memory().available
