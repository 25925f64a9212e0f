import socket
import subprocess
import sys
from pathlib import Path

import pytest

from instrl_trl.constraints import Constraint, check_row, ensure_punkt_tab, instruction_ids


# langdetect's verdict on this text, unseeded, is Swahili about half the time and Portuguese otherwise.
AMBIGUOUS_TEXT = "Te amo"


@pytest.mark.slow
@pytest.mark.timeout(180)
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
    repo_root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=repo_root, timeout=150, check=False
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


def test_registry_is_lm_evals():
    from lm_eval.tasks.ifeval.instructions_registry import INSTRUCTION_DICT

    assert instruction_ids() == list(INSTRUCTION_DICT)


def test_language_detection_is_seeded():
    # Unseeded, langdetect reseeds from the OS at every call: 30 checks of this text would not all agree (the chance
    # is below 1e-7). Seeded, they do, and they give the verdict of seed 0.
    constraint = Constraint("language:response_language", {"language": "sw"})
    assert [constraint.check(AMBIGUOUS_TEXT) for _ in range(30)] == [True] * 30
    verdicts = [check_row(AMBIGUOUS_TEXT, ["language:response_language"], [{"language": "pt"}]) for _ in range(30)]
    assert [verdict.strict for verdict in verdicts] == [[False]] * 30


def test_language_verdicts_are_clear_cut():
    constraint = Constraint("language:response_language", {"language": "fr"})
    assert constraint.check("Bonjour, je voudrais un café et un croissant, s'il vous plaît. Merci beaucoup.")
    assert not constraint.check("Good morning, I would like a coffee and a croissant, please. Thank you very much.")


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_importing_the_registry_keeps_the_random_stream():
    # nltk and lm-eval draw from the global generator at import: the first check in a (fresh) process must not move it.
    code = (
        "import random\n"
        "random.seed(5)\n"
        "expected = [random.random() for _ in range(3)]\n"
        "random.seed(5)\n"
        "from instrl_trl.constraints import Constraint\n"
        "Constraint('punctuation:no_comma').check('No commas.')\n"
        "assert [random.random() for _ in range(3)] == expected\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=150, check=False)
    assert result.returncode == 0, result.stderr


def test_no_network_in_process(monkeypatch):
    def refuse(*args, **kwargs):
        raise RuntimeError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    assert Constraint("startend:quotation").check('"wrapped"')
