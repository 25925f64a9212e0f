import json
import random
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from instrl_trl.constraints import (
    SAMPLED_INSTRUCTION_IDS,
    Constraint,
    conflicts,
    ensure_punkt_tab,
    instruction_ids,
    sample_constraint,
)


def test_punkt_tab_offline(tmp_path):
    # A fresh process with a fresh cache folder and no network: the files are written and nothing is downloaded.
    code = (
        "import socket\n"
        "def refuse(*args, **kwargs):\n"
        "    raise RuntimeError('network access attempted')\n"
        "socket.socket.connect = refuse\n"
        "socket.create_connection = refuse\n"
        "from instrl_trl.constraints import ensure_punkt_tab, Constraint\n"
        "ensure_punkt_tab()\n"
        "import nltk\n"
        "from lm_eval.tasks.ifeval import instructions_util\n"
        "print(len(nltk.sent_tokenize('Hello there. How are you?')))\n"
        "print(instructions_util.count_sentences('Dr. Smith went home. He slept. Then he woke up.'))\n"
    )
    env = {"INSTRL_TRL_NLTK_DATA": str(tmp_path / "nltk_data"), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    repo_root = Path(__file__).resolve().parents[1]
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=repo_root, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["2", "3"]
    assert "Downloaded" not in result.stdout + result.stderr
    english = tmp_path / "nltk_data" / "tokenizers" / "punkt_tab" / "english"
    assert sorted(p.name for p in english.iterdir()) == [
        "abbrev_types.txt",
        "collocations.tab",
        "ortho_context.tab",
        "sent_starters.txt",
    ]
    assert all("\t" in line for line in (english / "collocations.tab").read_text().splitlines())
    assert not [p for p in english.parent.parent.iterdir() if p.name.startswith(".punkt_tab")]  # no staging left


def test_ensure_punkt_tab_idempotent():
    import nltk

    first = ensure_punkt_tab()
    assert ensure_punkt_tab() == first
    nltk.data.find("tokenizers/punkt_tab")


def test_constraint_description_and_check():
    constraint = Constraint("punctuation:no_comma")
    assert constraint.description() == "In your entire response, refrain from the use of any commas."
    assert constraint.check("No commas here.")
    assert not constraint.check("Commas, here.")

    bullets = Constraint("detectable_format:number_bullet_lists", {"num_bullets": 2})
    assert "exactly 2 bullet points" in bullets.description()
    assert bullets.check("* first\n* second")
    assert not bullets.check("* only one")

    words = Constraint("length_constraints:number_words", {"num_words": 5, "relation": "less than"})
    assert words.description() == "Answer with less than 5 words."
    assert words.check("Too short.")
    assert not words.check("This answer has far too many words.")


def test_constraint_language_is_deterministic():
    constraint = Constraint("language:response_language", {"language": "fr"})
    french = "Bonjour, je voudrais un café et un croissant, s'il vous plaît. Merci beaucoup."
    assert all(constraint.check(french) for _ in range(5))
    assert not constraint.check("Good morning, I would like a coffee and a croissant, please. Thank you very much.")


def test_constraint_round_trip():
    constraint = Constraint("keywords:existence", {"keywords": ["river", "bridge"]})
    data = constraint.to_dict()
    assert data == {"instruction_id": "keywords:existence", "kwargs": {"keywords": ["river", "bridge"]}}
    assert Constraint.from_dict(json.loads(json.dumps(data))) == constraint
    assert hash(Constraint.from_dict(data)) == hash(constraint)
    # IFEval rows carry `None` for the arguments of other ids: they are dropped
    assert (
        Constraint.from_dict({"instruction_id": "detectable_format:title", "kwargs": {"num_words": None}}).kwargs == {}
    )


def test_constraint_errors():
    with pytest.raises(ValueError, match="Valid ids: .*punctuation:no_comma"):
        Constraint("punctuation:semicolons")
    with pytest.raises(ValueError, match=r"punctuation:no_comma.*unknown \['num_words'\]"):
        Constraint("punctuation:no_comma", {"num_words": 3})
    with pytest.raises(ValueError, match=r"number_bullet_lists.*missing \['num_bullets'\]"):
        Constraint("detectable_format:number_bullet_lists", {})
    with pytest.raises(ValueError, match="language:response_language.*rejects"):
        Constraint("language:response_language", {"language": "xx"})


def test_conflicts_are_symmetric():
    for instruction_id in instruction_ids():
        assert instruction_id in conflicts(instruction_id)
        for other in conflicts(instruction_id):
            assert instruction_id in conflicts(other)
    # lm-eval lists this pair only one way round
    assert "language:response_language" in conflicts("keywords:existence")


def test_sample_constraint_uses_our_rng_only():
    random.seed(123)
    state = random.getstate()
    first = [sample_constraint([], random.Random(7)) for _ in range(3)]
    assert random.getstate() == state  # lm-eval's global random was not used
    assert first[0] == first[1] == first[2]
    samples = {sample_constraint([], random.Random(seed)).instruction_id for seed in range(200)}
    assert samples <= set(SAMPLED_INSTRUCTION_IDS)
    assert len(samples) > 10


def test_sample_constraint_avoids_conflicts_until_exhausted():
    rng = random.Random(0)
    for _ in range(20):
        existing = []
        while (constraint := sample_constraint(existing, rng)) is not None:
            for other in existing:
                assert constraint.instruction_id not in conflicts(other.instruction_id)
                assert other.instruction_id not in conflicts(constraint.instruction_id)
            constraint.description()
            existing.append(constraint)
        assert existing
    json_only = [Constraint("detectable_format:json_format")]
    picks = {sample_constraint(json_only, random.Random(seed)) for seed in range(30)}
    assert {pick.instruction_id for pick in picks} == {"keywords:existence", "keywords:forbidden_words"}
    full = [
        *json_only,
        Constraint("keywords:existence", {"keywords": ["a1"]}),
        Constraint("keywords:forbidden_words", {"forbidden_words": ["b2"]}),
    ]
    assert sample_constraint(full, random.Random(0)) is None


def test_sample_constraint_keeps_keywords_apart():
    existing = [Constraint("keywords:existence", {"keywords": ["thing", "word"]})]
    for seed in range(30):
        constraint = sample_constraint(existing, random.Random(seed))
        if constraint.instruction_id == "keywords:forbidden_words":
            assert not set(constraint.kwargs["forbidden_words"]) & {"thing", "word"}


def test_no_network_in_process(monkeypatch):
    def refuse(*args, **kwargs):
        raise RuntimeError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    assert Constraint("startend:quotation").check('"wrapped"')
