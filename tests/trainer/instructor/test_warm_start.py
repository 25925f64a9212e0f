import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl.chat_template_utils import is_chat_template_prefix_preserving, supports_tool_calling

from instrl_trl.backends.rules import RulesReviewer, RulesRewriter
from instrl_trl.models.tiny import build_tiny_tool_chat_model, training_corpus
from instrl_trl.operations import build_operation_library
from instrl_trl.rewards import information_gain_reward
from instrl_trl.tool_environment import DEFAULT_TASK_PROMPT, InstructionEnvironmentFactory
from instrl_trl.trainer.instructor.warm_start import tool_call_transcripts, tool_schemas, warm_start


def test_tool_chat_tokenizer_is_lossless_and_its_template_passes_trl_checks(tmp_path):
    folder = build_tiny_tool_chat_model(str(tmp_path), training_corpus())
    tokenizer = AutoTokenizer.from_pretrained(folder)
    text = 'Naïve text: {"a": 1}\n\t<tool_call>  ünïcode ✓ words-not-in-the-corpus</tool_call><|im_end|>'
    assert tokenizer.decode(tokenizer.encode(text, add_special_tokens=False)) == text
    assert tokenizer.eos_token == "<|im_end|>"
    assert supports_tool_calling(tokenizer)
    assert is_chat_template_prefix_preserving(tokenizer)
    call = '<tool_call>\n{"name": "deepening", "arguments": {}}\n</tool_call><|im_end|>'
    assert tokenizer.parse_response(call, prefix="")["tool_calls"] == [
        {"type": "function", "function": {"name": "deepening", "arguments": {}}}
    ]


def test_transcripts_are_played_in_the_environment():
    operations = build_operation_library()
    transcripts = tool_call_transcripts(operations, DEFAULT_TASK_PROMPT, training_corpus()[:20], seed=0)
    assert transcripts
    for messages in transcripts:
        assert messages[0]["content"].startswith(DEFAULT_TASK_PROMPT + "\nInstruction: ")
        calls = [m["tool_calls"][0]["function"]["name"] for m in messages if m.get("tool_calls")]
        assert calls[-1] == "stop" and set(calls[:-1]) <= set(operations.names)
        assert messages[-2]["content"].startswith("Final instruction: ")


def test_warm_start_lowers_the_loss(tmp_path):
    operations = build_operation_library()
    transcripts = tool_call_transcripts(operations, DEFAULT_TASK_PROMPT, training_corpus()[:40])
    folder = build_tiny_tool_chat_model(str(tmp_path), [m["content"] for t in transcripts for m in t])
    factory = InstructionEnvironmentFactory(operations, RulesRewriter(), RulesReviewer(), [information_gain_reward])
    losses = warm_start(folder, transcripts, tool_schemas(factory), num_steps=15, batch_size=8)
    assert losses[-1] < losses[0] / 2


def test_default_instructor_calls_tools(tiny_instructor):
    tokenizer = AutoTokenizer.from_pretrained(tiny_instructor)
    model = AutoModelForCausalLM.from_pretrained(tiny_instructor)
    operations = build_operation_library()
    factory = InstructionEnvironmentFactory(operations, RulesRewriter(), RulesReviewer(), [information_gain_reward])
    messages = [{"role": "user", "content": DEFAULT_TASK_PROMPT + "\nInstruction: Describe a tree."}]
    encoded = tokenizer.apply_chat_template(
        messages, tools=tool_schemas(factory), add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    torch.manual_seed(0)
    output = model.generate(**encoded, do_sample=True, max_new_tokens=32, num_return_sequences=8)
    names = []
    for ids in output[:, encoded["input_ids"].shape[1] :]:
        text = tokenizer.decode(ids, skip_special_tokens=False).split("<|im_end|>")[0] + "<|im_end|>"
        try:
            parsed = tokenizer.parse_response(text, prefix="")
        except ValueError:  # an ill-formed call: the next sample may parse
            parsed = {}
        names += [call["function"]["name"] for call in parsed.get("tool_calls") or []]
    assert set(names) & set(factory.tool_names)
