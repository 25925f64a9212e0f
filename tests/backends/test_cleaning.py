import pytest

from instrl_trl.backends.cleaning import CLEANUP_REASONS, clean_rewrite
from instrl_trl.elimination import elimination_reason


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
