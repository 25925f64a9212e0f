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


ANSWER = (
    "The Amazon, the Ucayali and the Maranon are well known. The Amazon starts in the Andes and flows east across "
    "Brazil to the Atlantic Ocean, carrying more water than any other on Earth. The Ucayali joins the Maranon near "
    "Nauta, and together they form the main stem. Boats carry goods and people between towns that have no roads, "
    "and the floods of each season feed the forests and the fish that local families depend on."
)


def test_an_answer_instead_of_a_rewrite_is_eliminated():
    # SmolLM2-135M-Instruct's habit: it answers "Name three rivers in Peru." instead of rewriting it
    assert len(ANSWER.split()) >= 60
    assert elimination_reason("Name three rivers in Peru.", ANSWER) == "answered"
    assert "answered" in ELIMINATION_REASONS


def test_a_long_rewrite_that_keeps_the_request_is_not_an_answer():
    rewrite = "Name three rivers in Peru, " + ANSWER
    assert elimination_reason("Name three rivers in Peru.", rewrite) is None


def test_a_short_answer_is_not_caught_by_the_answer_rule():
    # Under 60 words, however far from the request: left to the reviewer
    assert elimination_reason("Name three rivers in Peru.", "The Amazon and the Ucayali flow east.") is None


def test_the_answer_rule_scales_with_the_original():
    original = " ".join(f"word{i}" for i in range(40)) + "."
    text = " ".join(f"other{i}" for i in range(100))  # 100 words: over 60 but under 3 x 41
    assert elimination_reason(original, text) is None
    assert elimination_reason(original, text + " " + text) == "answered"
