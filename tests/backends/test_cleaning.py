import pytest

from instrl_trl.backends.base import RewriteRequest, TextGenerator, prompt_messages
from instrl_trl.backends.cleaning import CLEANUP_REASONS, clean_rewrite
from instrl_trl.backends.llm import LLMRewriter
from instrl_trl.elimination import elimination_reason
from instrl_trl.operations import DEFAULT_OPERATIONS


@pytest.mark.parametrize(
    "answer, cleaned, reasons",
    [
        # What SmolLM2-135M-Instruct wrote as a rewriter (issue 11)
        ("#Rewritten Prompt#: Name three rivers in Peru.", "Name three rivers in Peru.", ("label",)),
        ("Rewritten Prompt: Name three rivers in Peru.", "Name three rivers in Peru.", ("label",)),
        ("The new prompt is: Name three rivers in Peru.", "Name three rivers in Peru.", ("label",)),
        ("**Rewritten Prompt:** Name three rivers.", "Name three rivers.", ("label",)),
        ("Rewritten prompt\nName three rivers.", "Name three rivers.", ("label",)),
        (
            "#Given Prompt#: Name rivers.\n#Rewritten Prompt#: Name three rivers in Peru.",
            "Name three rivers in Peru.",
            ("label",),
        ),
        ("Name three rivers.\n\n#Given Prompt#:\nName rivers.", "Name three rivers.", ("given_prompt",)),
        (
            "Here's a rewritten version of the prompt:\n\nName three rivers in Peru.",
            "Name three rivers in Peru.",
            ("preamble",),
        ),
        ("Sure! Name three rivers in Peru.", "Name three rivers in Peru.", ("preamble",)),
        ("# Name three rivers in Peru", "Name three rivers in Peru", ("heading",)),
        ('"Name three rivers in Peru."', "Name three rivers in Peru.", ("quotes",)),
        ("\u201cName three rivers.\u201d", "Name three rivers.", ("quotes",)),
        (
            "Name three rivers in Peru.\n\nThis rewritten prompt adds a country.\n\nNote: it is harder.",
            "Name three rivers in Peru.",
            ("commentary",),
        ),
        (
            'Sure, here is the rewritten prompt:\n\n#Rewritten Prompt#: "Name three rivers in Peru."',
            "Name three rivers in Peru.",
            ("preamble", "label", "quotes"),
        ),
    ],
)
def test_clean_rewrite_cuts_the_wrapping_and_names_it(answer, cleaned, reasons):
    assert clean_rewrite(answer) == (cleaned, reasons)
    assert set(reasons) <= set(CLEANUP_REASONS)


@pytest.mark.parametrize(
    "answer",
    [
        "Name three rivers in Peru.",
        "Write a story.\nThe new prompt should be short.",  # "new prompt" inside a sentence is not a label
        'Explain the quote "to be or not to be" in two paragraphs.',  # inner quotes stay
        "Sure",  # nothing after a would-be preamble: kept for the elimination rules to judge
        "List the steps.\n\nThis matters because water boils at 100 degrees.",  # not commentary on the rewrite
        "",
    ],
)
def test_clean_rewrite_leaves_a_clean_rewrite_alone(answer):
    assert clean_rewrite(answer) == (answer, ())


def test_an_echo_of_the_given_prompt_alone_is_left_for_the_elimination_rules():
    text, _ = clean_rewrite("#Given Prompt#: Name rivers.")
    assert elimination_reason("Name rivers.", text) == "template_copy"


class _Unused(TextGenerator):
    def generate(self, prompts, seeds=None, **generation_kwargs):
        raise AssertionError("only the prompts are built here")


def shown(operation: str, instruction: str) -> str:
    """What the LLM rewriter shows the model for `operation` on `instruction`: every message's text."""
    prompt = LLMRewriter(_Unused()).build_prompt(RewriteRequest(instruction, DEFAULT_OPERATIONS[operation]))
    return "\n\n".join(message["content"] for message in prompt_messages(prompt))


ADD_CONSTRAINTS_PROMPT = shown("add_constraints", "Describe the water cycle.")
KEEP = ("Describe the water cycle.",)


@pytest.mark.parametrize(
    "answer, cleaned, reasons",
    [
        # The operation's own lines copied before the rewrite (SmolLM2's habit)
        (
            "Rewrite the prompt with the following method:\nDescribe the water cycle in three short paragraphs.",
            "Describe the water cycle in three short paragraphs.",
            ("echoed_template_line",),
        ),
        (
            "Rewrite the prompt with the following method: Describe the water cycle in under 100 words.",
            "Describe the water cycle in under 100 words.",
            ("echoed_template_line",),
        ),
        # A copied sentence that the template wraps over two lines, and the closing instruction of the chat prompt
        (
            (
                "Describe the water cycle for a ten-year-old.\nAdd one more constraint or requirement that the answer "
                "must satisfy, such as a format, a length, a word to use or avoid, or a style.\n"
                "Reply with the rewritten prompt only."
            ),
            "Describe the water cycle for a ten-year-old.",
            ("echoed_template_line",),
        ),
        # Only the template, no rewrite at all: nothing is left
        (
            "I want you to act as a prompt rewriter.\nRewrite the prompt with the following method:",
            "",
            ("echoed_template_line",),
        ),
        # A rewrite close to the instruction is no copy of the prompt, which holds the instruction
        ("Describe the water cycle simply.", "Describe the water cycle simply.", ()),
        # The rewrite keeps the instruction's own sentence although the prompt holds it
        (
            "Describe the water cycle. Use exactly three bullet points.",
            "Describe the water cycle. Use exactly three bullet points.",
            (),
        ),
        # Degenerate repetition
        (
            "Explain the water cycle in detail. Explain the water cycle in detail. explain the water cycle in detail",
            "Explain the water cycle in detail.",
            ("repeated_sentence",),
        ),
        (
            "Describe the water cycle.\nExplain evaporation. Explain evaporation.\nexplain  evaporation.",
            "Describe the water cycle.\nExplain evaporation.",
            ("repeated_sentence",),
        ),
        # All at once, in the order they are cut
        (
            (
                "Rewrite the prompt with the following method:\n#Rewritten Prompt#: Describe the water cycle in "
                "detail. Describe the water cycle in detail."
            ),
            "Describe the water cycle in detail.",
            ("echoed_template_line", "label", "repeated_sentence"),
        ),
    ],
)
def test_echoed_template_lines_and_repeated_sentences_are_cut(answer, cleaned, reasons):
    assert clean_rewrite(answer, prompt=ADD_CONSTRAINTS_PROMPT, keep=KEEP) == (cleaned, reasons)


def test_without_the_prompt_nothing_is_taken_for_an_echo():
    answer = "Rewrite the prompt with the following method:\nDescribe the water cycle."
    assert clean_rewrite(answer) == (answer, ())


def test_a_constraint_to_state_word_for_word_is_kept():
    constraint = "Your response should contain at least 3 sentences."
    prompt = f'{ADD_CONSTRAINTS_PROMPT}\nInclude it word for word in the rewritten prompt: "{constraint}"'
    answer = f"Describe the water cycle. {constraint}"
    assert clean_rewrite(answer, prompt=prompt, keep=(*KEEP, constraint)) == (answer, ())
    assert clean_rewrite(answer, prompt=prompt, keep=KEEP) == ("Describe the water cycle.", ("echoed_template_line",))


@pytest.mark.parametrize(
    "answer, cleaned, reasons",
    [
        (
            "Describe the water cycle in three paragraphs. Mention evaporation, condensation and",
            "Describe the water cycle in three paragraphs.",
            ("truncated",),
        ),
        (
            'Describe the water cycle in "simple words." Then list the four stages:\n1. Evaporation\n2. Conden',
            'Describe the water cycle in "simple words." Then list the four stages:\n1. Evaporation',
            ("truncated",),
        ),
        # Degenerate repetition cut off at the limit: the fragment goes, then the repeats
        (
            "Explain the water cycle. Explain the water cycle. Explain the water cycle. Explain the",
            "Explain the water cycle.",
            ("truncated", "repeated_sentence"),
        ),
        # Nothing complete to keep, or nothing unfinished: left as it is
        ("Describe the water cycle and its four stages in", "Describe the water cycle and its four stages in", ()),
        ("Describe the water cycle. Name its stages.", "Describe the water cycle. Name its stages.", ()),
        # The end was cut already (closing commentary): what is left is not the unfinished part
        (
            "Describe the water cycle. Name its stages\n\nThis rewritten prompt adds a requirement to name the",
            "Describe the water cycle. Name its stages",
            ("commentary",),
        ),
    ],
)
def test_an_unfinished_last_sentence_is_dropped_when_the_generation_hit_its_limit(answer, cleaned, reasons):
    assert clean_rewrite(answer, truncated=True) == (cleaned, reasons)
    # A prompt may end without a full stop: without the finish reason nothing is cut as unfinished
    assert "truncated" not in clean_rewrite(answer)[1]


# SmolLM2-135M-Instruct's answers through the chat prompt, greedy, all stopped at 64 new tokens
SMOLLM2_ANSWERS = [
    (
        "add_constraints",
        "Give three tips for learning a new language.",
        (
            "Rewrite the prompt with the following method:\nAdd one more constraint or requirement that the "
            "answer must satisfy, such as a format, a length, a word to use, or avoid, or a style.\nRewrite the "
            "prompt with the following method:\nAdd one more constraint or requirement that the answer"
        ),
        "",
        ("echoed_template_line",),
    ),
    (  # copies with slips ("the given prompt", "or avoid using a style")
        "add_constraints",
        "Summarize the plot of Romeo and Juliet.",
        (
            "Rewrite the given prompt with the following method:\nAdd one more constraint or requirement that "
            "the answer must satisfy, such as a format, a length, a word to use, or avoid using a style.\n"
            "Rewrite the prompt with the following method:\nAdd one more constraint or requirement that the answer"
        ),
        "",
        ("echoed_template_line",),
    ),
    (
        "deepening",
        "Give three tips for learning a new language.",
        (
            "The rewritten prompt should be:\n\n#Rewritten Prompt#:\nThree Tips for Learning a New Language:\n"
            "1. **Use a Language Learning Bundle**\n2. **Practice Regularly**\n3. **Learn from Your Own Tongue**"
            "\n\nRewrite the prompt with the following"
        ),
        (
            "Three Tips for Learning a New Language:\n1. **Use a Language Learning Bundle**\n"
            "2. **Practice Regularly**\n3. **Learn from Your Own Tongue**"
        ),
        ("echoed_template_line", "label"),
    ),
    (
        "breadth",
        "Give three tips for learning a new language.",
        (
            "The new prompt must belong to the same domain as the given prompt, but it should be about a rare, "
            "less common case.\nThe prompt must be about a rare, less common case.\nThe prompt must be about a "
            "rare, less common case.\n\nThe prompt must be about a rare, less common"
        ),
        "The prompt must be about a rare, less common case.",
        ("echoed_template_line", "truncated", "repeated_sentence"),
    ),
    (
        "add_constraints",
        "Explain how photosynthesis works.",
        (
            "#Rewritten Prompt#:\nPhotosynthesis is a complex process that involves plants, algae, and some "
            "bacteria. It's a vital process that helps plants grow and produce energy. This process takes place "
            "in the leaves of"
        ),
        (
            "Photosynthesis is a complex process that involves plants, algae, and some bacteria. It's a vital "
            "process that helps plants grow and produce energy."
        ),
        ("label", "truncated"),
    ),
]


@pytest.mark.parametrize("operation, instruction, answer, cleaned, reasons", SMOLLM2_ANSWERS)
def test_real_smollm2_rewrites(operation, instruction, answer, cleaned, reasons):
    prompt = shown(operation, instruction)
    assert clean_rewrite(answer, prompt=prompt, keep=(instruction,), truncated=True) == (cleaned, reasons)
