"""
Local causal LMs for the transformers backend: loaded once per model, revision, dtype and device, and shared by the
roles that name the same one (an expert and a reviewer on one model hold one copy). A copy goes when its last
generator does.
"""

import threading
import weakref
from dataclasses import dataclass

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from ..models.builtin import CONVERTED_DTYPES, resolve_model_name


@dataclass(eq=False)
class SharedModel:
    """A loaded model and its tokenizer, held by the generators that use them (weakly by the registry)."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase


# (model, revision, dtype, device) -> the loaded copy; an entry goes when its last generator does
_LOADED: "weakref.WeakValueDictionary[tuple, SharedModel]" = weakref.WeakValueDictionary()
_LOADING = threading.Lock()


def load_shared_model(
    model_name_or_path: str, dtype: str | torch.dtype | None, revision: str | None, device: str | torch.device
) -> SharedModel:
    """The loaded copy of a model on `device`, shared with every generator that asked for the same one."""
    key = (model_name_or_path, revision, str(dtype), str(torch.device(device)))
    with _LOADING:
        shared = _LOADED.get(key)
        if shared is None:
            model, tokenizer = load_causal_lm(model_name_or_path, dtype, revision)
            shared = SharedModel(model.to(device).eval(), tokenizer)
            _LOADED[key] = shared
    return shared


def resolve_dtype(dtype: str | torch.dtype | None) -> str | torch.dtype | None:
    """A dtype's name (`"bfloat16"`) as the `torch.dtype`; `None`, `"auto"` and dtypes as they are."""
    if dtype is None or dtype == "auto" or isinstance(dtype, torch.dtype):
        return dtype
    if not isinstance(dtype, str):
        raise TypeError(f"`dtype` must be a string, a `torch.dtype` or `None`, got {type(dtype).__name__}.")
    dtypes = {
        name: value
        for name, value in vars(torch).items()
        if isinstance(value, torch.dtype) and value.is_floating_point
    }
    if dtype not in dtypes:
        valid = ", ".join(repr(name) for name in sorted(dtypes))
        raise ValueError(f"Unknown `dtype` {dtype!r}. Valid values: 'auto', {valid}.")
    return dtypes[dtype]


def load_causal_lm(
    model_name_or_path: str, dtype: str | torch.dtype | None, revision: str | None
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A causal LM and its tokenizer from a Hub id, a local folder or one of our model names; a clear error if not."""
    hub_kwargs = {} if revision is None else {"revision": revision}
    # Our converted model names are saved in the dtype they are loaded in, so that loading casts nothing
    dtype_name = str(dtype).removeprefix("torch.")
    folder = resolve_model_name(model_name_or_path, dtype=dtype_name if dtype_name in CONVERTED_DTYPES else "float32")
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, **hub_kwargs)
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype, **hub_kwargs)
    except (OSError, ValueError) as error:
        raise ValueError(
            f"Could not load the causal LM {model_name_or_path!r}"
            + (f" at revision {revision!r}" if revision else "")
            + f": {error}\nPass a local folder saved with `save_pretrained` or the id of a Hub model repository."
        ) from error
    return model, tokenizer
