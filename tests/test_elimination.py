import pytest

from instrl_trl.elimination import ELIMINATION_REASONS, STOP_WORDS, content_words, elimination_reason


@pytest.mark.parametrize(
    "rewritten, reason",
    [
        ("", "empty"),
        ("   \n ", "empty"),
        ("Sorry, I cannot make this prompt more complex.", "refusal"),
        ("I'm SORRY but no.", "refusal"),
        ("Of the, and: to it! ...", "stopwords_only"),
        ("#Rewritten Prompt#: Name three rivers in Spain.", "template_copy"),
        ("Here is the given prompt made harder: name three rivers.", "template_copy"),
        ("#Created Prompt#:\nWrite a guide to tide pools.", "template_copy"),
        ("Name three rivers in Spain and their lengths.", None),
    ],
)
def test_elimination_reason(rewritten, reason):
    assert elimination_reason("Name three rivers.", rewritten) == reason
    assert reason is None or reason in ELIMINATION_REASONS


def test_long_text_with_sorry_is_not_a_refusal():
    text = "Write a letter that says sorry to a neighbour for the noise, " + "with details " * 40
    assert len(text.split()) >= 80
    assert elimination_reason("Write a letter.", text) is None


def test_content_words():
    assert content_words("The Cat sat on the mat, didn't it?") == {"cat", "sat", "mat"}
    assert 100 <= len(STOP_WORDS) <= 250
