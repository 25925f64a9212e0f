"""
The models instrl-trl builds or converts offline, in one cache (`$INSTRL_TRL_MODELS_CACHE`, else
`$HF_HOME/instrl_trl/models`): the tiny Llama chat models built from a config with locally trained tokenizers (`tiny`),
and our own model names resolved to local folders (`builtin`: `instrl-tiny-chat`, `smollm2-135m-instruct`).
"""
