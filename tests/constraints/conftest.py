"""Fixtures shared by the constraint tests that compare our checkers with reference verdicts."""

import nltk
import pytest


@pytest.fixture
def no_download(monkeypatch):
    """Makes any `nltk.download` call fail the test: checking constraints must stay offline."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"nltk.download{args} called: checking constraints must stay offline")

    monkeypatch.setattr(nltk, "download", refuse)
