import logging
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from instrl_trl.backends.base import Generation, TextGenerator, Usage
from instrl_trl.backends.cache import ResponseCache, cache_key
from instrl_trl.backends.cached_generator import CachedGenerator


IDENTITY = {"backend": "fake", "model": "fake-model"}


class CountingGenerator(TextGenerator):
    """Answers every prompt with a fixed text and records each call; prompts containing "FAIL" fail."""

    backend = "fake"

    def __init__(self, model_name="fake-model"):
        self.model_name = model_name
        self.calls = []
        self.seeds = []

    def generate(self, prompts, seeds=None, **generation_kwargs):
        self.calls.append((list(prompts), generation_kwargs))
        self.seeds.append(seeds)
        seeds = seeds if seeds is not None else [None] * len(prompts)
        return [
            Generation(None, Usage(failed=True))
            if "FAIL" in prompt
            else Generation(
                f"answer to {prompt}" + ("" if seed is None else f" (sample {seed})"),
                Usage(prompt_tokens=len(prompt), completion_tokens=3, seconds=0.5),
            )
            for prompt, seed in zip(prompts, seeds, strict=True)
        ]

    def samples(self, generation_kwargs):
        return generation_kwargs.get("temperature", 1.0) > 0

    @property
    def num_prompts_asked(self):
        return sum(len(prompts) for prompts, _ in self.calls)


@pytest.fixture
def cache_path(tmp_path):
    return tmp_path / "cache" / "responses.sqlite"


def test_cache_key_is_a_stable_sha256():
    key = cache_key(IDENTITY, "Name a river.", {"temperature": 0.7, "max_new_tokens": 16})
    assert len(key) == 64 and int(key, 16) >= 0
    # dict order does not matter
    assert key == cache_key(
        dict(reversed(IDENTITY.items())), "Name a river.", {"max_new_tokens": 16, "temperature": 0.7}
    )


@pytest.mark.parametrize(
    "identity, prompt, generation_kwargs",
    [
        ({"backend": "fake", "model": "other-model"}, "Name a river.", {"temperature": 0.7}),
        ({"backend": "endpoint", "model": "fake-model"}, "Name a river.", {"temperature": 0.7}),
        (IDENTITY, "Name a lake.", {"temperature": 0.7}),
        (IDENTITY, "Name a river.", {"temperature": 0.8}),
        (IDENTITY, "Name a river.", {"temperature": 0.7, "max_new_tokens": 16}),
        (IDENTITY, "Name a river.", {}),
    ],
)
def test_cache_key_differs_when_model_prompt_or_any_kwarg_differs(identity, prompt, generation_kwargs):
    assert cache_key(identity, prompt, generation_kwargs) != cache_key(IDENTITY, "Name a river.", {"temperature": 0.7})


def test_cache_key_refuses_kwargs_that_are_not_json():
    with pytest.raises(TypeError, match="generation_kwargs"):
        cache_key(IDENTITY, "Name a river.", {"stop": object()})


def test_second_identical_run_makes_no_new_calls(cache_path):
    generator = CountingGenerator()
    prompts = ["Name a river.", "Name a lake.", "Name a sea."]
    with CachedGenerator(generator, cache_path) as cached:
        first = cached.generate(prompts, temperature=0.7)
        assert generator.calls == [(prompts, {"temperature": 0.7})]
        second = cached.generate(prompts, temperature=0.7)
    assert len(generator.calls) == 1
    assert [generation.text for generation in second] == [generation.text for generation in first]
    assert not any(generation.usage.cached for generation in first)


def test_hits_report_cached_usage_with_stored_tokens(cache_path):
    generator = CountingGenerator()
    with CachedGenerator(generator, cache_path) as cached:
        (miss,) = cached.generate(["Name a river."])
        (hit,) = cached.generate(["Name a river."])
    assert miss.usage == Usage(prompt_tokens=13, completion_tokens=3, seconds=0.5)
    assert hit == Generation("answer to Name a river.", Usage(cached=True, prompt_tokens=13, completion_tokens=3))


def test_only_misses_are_sent_in_one_call_in_order(cache_path):
    generator = CountingGenerator()
    with CachedGenerator(generator, cache_path) as cached:
        cached.generate(["b", "d"])
        results = cached.generate(["a", "b", "c", "d", "e"])
    assert generator.calls[1] == (["a", "c", "e"], {})
    assert [generation.text for generation in results] == [f"answer to {p}" for p in "abcde"]
    assert [generation.usage.cached for generation in results] == [False, True, False, True, False]


def test_a_different_kwarg_or_model_is_a_miss(cache_path):
    generator, other_model = CountingGenerator(), CountingGenerator(model_name="other-model")
    with ResponseCache(cache_path) as cache:
        CachedGenerator(generator, cache).generate(["Name a river."], temperature=0.7)
        CachedGenerator(generator, cache).generate(["Name a river."], temperature=0.8)
        CachedGenerator(other_model, cache).generate(["Name a river."], temperature=0.7)
        assert len(cache) == 3
    assert generator.num_prompts_asked == 2 and other_model.num_prompts_asked == 1


def test_in_batch_duplicates_are_asked_once(cache_path):
    generator = CountingGenerator()
    with CachedGenerator(generator, cache_path) as cached:
        results = cached.generate(["Name a river.", "Name a lake.", "Name a river.", "FAIL", "FAIL"])
    assert generator.calls == [(["Name a river.", "Name a lake.", "FAIL"], {})]
    assert [generation.text for generation in results] == [
        "answer to Name a river.",
        "answer to Name a lake.",
        "answer to Name a river.",
        None,
        None,
    ]
    # the repeat was not paid for: it counts as a cache hit; a repeated failure stays a failure
    assert [generation.usage.cached for generation in results] == [False, False, True, False, True]
    assert [generation.usage.failed for generation in results] == [False, False, False, True, True]
    assert results[2].usage == Usage(cached=True, prompt_tokens=13, completion_tokens=3)


def test_failures_are_not_stored(cache_path):
    generator = CountingGenerator()
    with CachedGenerator(generator, cache_path) as cached:
        first = cached.generate(["Name a river.", "FAIL please"])
        assert first[1] == Generation(None, Usage(failed=True))
        assert len(cached.cache) == 1
        second = cached.generate(["Name a river.", "FAIL please"])
    # the failure is asked again, alone
    assert generator.calls[1] == (["FAIL please"], {})
    assert second[1].text is None and not second[1].usage.cached


def test_wrapper_keeps_the_identity_of_the_wrapped_generator(cache_path):
    generator = CountingGenerator(model_name="org/model")
    with CachedGenerator(generator, cache_path) as cached:
        assert isinstance(cached, TextGenerator)
        assert cached.backend == "fake"
        assert cached.model_name == "org/model"
        assert cached.cache_identity() == generator.cache_identity() == {"backend": "fake", "model": "org/model"}
        assert cached.generate([]) == []
    assert generator.calls == []


def test_wrong_number_of_generations_raises(cache_path):
    class ShortGenerator(CountingGenerator):
        def generate(self, prompts, seeds=None, **generation_kwargs):
            return super().generate(prompts, seeds, **generation_kwargs)[:-1]

    with CachedGenerator(ShortGenerator(), cache_path) as cached, pytest.raises(RuntimeError, match="one per prompt"):
        cached.generate(["a", "b"])


def test_cache_persists_across_objects_on_the_same_file(cache_path):
    with CachedGenerator(CountingGenerator(), cache_path) as cached:
        cached.generate(["Name a river.", "Name a lake."])
    generator = CountingGenerator()
    with CachedGenerator(generator, ResponseCache(cache_path)) as cached:
        results = cached.generate(["Name a river.", "Name a lake."])
        cached.cache.close()  # a cache passed in is not closed by the wrapper
    assert generator.calls == []
    assert all(generation.usage.cached for generation in results)


def test_put_many_get_many_and_len(cache_path):
    keys = [f"key-{i}" for i in range(1200)]  # more than one `IN (...)` chunk
    with ResponseCache(cache_path) as cache:
        assert len(cache) == 0 and cache.get_many(keys) == {}
        cache.put_many([(key, Generation(key.upper(), Usage(prompt_tokens=1))) for key in keys])
        # a stored key keeps its first answer
        cache.put_many({"key-0": Generation("changed")})
        found = cache.get_many([*keys, "missing", "key-0"])
        assert len(cache) == 1200
    assert set(found) == set(keys)
    assert found["key-0"] == Generation("KEY-0", Usage(cached=True, prompt_tokens=1))


def test_finish_reason_is_stored_and_old_caches_get_the_column(cache_path):
    cache_path.parent.mkdir(parents=True)
    # A cache written before `finish_reason` existed
    with sqlite3.connect(cache_path) as connection:
        connection.execute(
            "CREATE TABLE responses (key TEXT PRIMARY KEY, text TEXT NOT NULL, prompt_tokens INTEGER NOT NULL, "
            "completion_tokens INTEGER NOT NULL, created REAL NOT NULL) WITHOUT ROWID"
        )
        connection.execute("INSERT INTO responses VALUES ('old', 'Name a river.', 4, 3, 0.0)")
    connection.close()
    with ResponseCache(cache_path) as cache:
        cache.put_many({"cut": Generation("Name a river in", Usage(completion_tokens=4), "length")})
        found = cache.get_many(["old", "cut"])
    assert found["old"] == Generation("Name a river.", Usage(cached=True, prompt_tokens=4, completion_tokens=3))
    assert found["cut"].finish_reason == "length" and found["old"].finish_reason is None
    # A repeat within one batch keeps it too
    generator = CountingGenerator()
    generator.generate = lambda prompts, seeds=None, **kwargs: [Generation("Name a", Usage(), "length")]
    with CachedGenerator(generator, cache_path) as cached:
        assert [g.finish_reason for g in cached.generate(["p", "p"])] == ["length", "length"]
        assert cached.generate(["p"])[0].finish_reason == "length"


def test_put_many_refuses_failed_generations(cache_path):
    with ResponseCache(cache_path) as cache:
        with pytest.raises(ValueError, match="failed"):
            cache.put_many({"key": Generation(None, Usage(failed=True))})
        assert len(cache) == 0


@pytest.mark.parametrize("text", ["", "  \n\t "])
def test_put_many_refuses_empty_answers(cache_path, text):
    with ResponseCache(cache_path) as cache:
        with pytest.raises(ValueError, match="is empty"):
            cache.put_many({"key": Generation(text, Usage(completion_tokens=0))})
        assert len(cache) == 0


def test_empty_answers_are_neither_stored_nor_read_back(cache_path):
    cache_path.parent.mkdir(parents=True)
    # What an older version stored for a server that answered `200` with no text
    with ResponseCache(cache_path) as cache, cache._connection() as connection, connection:  # commits
        connection.execute(
            "INSERT INTO responses (key, text, prompt_tokens, completion_tokens, created) VALUES (?, '', 4, 0, 0.0)",
            (cache_key(IDENTITY, "Name a river.", {}),),
        )
    generator = CountingGenerator()
    generator.generate = lambda prompts, seeds=None, **kwargs: [Generation(" ", Usage()) for _ in prompts]
    with CachedGenerator(generator, cache_path) as cached:
        assert cached.cache.get_many([cache_key(IDENTITY, "Name a river.", {})]) == {}
        first = cached.generate(["Name a river.", "Name a lake."])
        assert [g.text for g in first] == [" ", " "] and not any(g.usage.cached for g in first)
        assert len(cached.cache) == 1  # the old empty row only
    # Once the server answers, the answers are stored and read back
    with CachedGenerator(CountingGenerator(), cache_path) as cached:
        assert [g.text for g in cached.generate(["Name a river."])] == ["answer to Name a river."]
        assert cached.generate(["Name a river."])[0].usage.cached


def test_answers_cached_with_their_thinking_come_back_without_it(cache_path):
    # What an older version stored for a reasoning model: its thinking kept, or nothing but (cut) thinking
    river, lake, sea = (cache_key(IDENTITY, prompt, {}) for prompt in ("Name a river.", "Name a lake.", "Name a sea."))
    with ResponseCache(cache_path) as cache:
        cache.put_many([
            (river, Generation("<think>A long one.</think>\n\nThe Nile.", Usage(completion_tokens=9))),
            (lake, Generation("<think>Which lakes are", Usage(completion_tokens=5))),
            (sea, Generation("The Baltic.", Usage(completion_tokens=3))),
        ])  # fmt: skip
    generator = CountingGenerator()
    with CachedGenerator(generator, cache_path) as cached:
        answers = cached.generate(["Name a river.", "Name a lake.", "Name a sea."])
    assert [answer.text for answer in answers] == ["The Nile.", "answer to Name a lake.", "The Baltic."]
    assert [answer.usage.cached for answer in answers] == [True, False, True]
    assert answers[0].usage.completion_tokens == 9  # what was paid for it
    assert generator.num_prompts_asked == 1  # only the answer that was all thinking is asked again


def test_closed_cache_raises_and_close_is_idempotent(cache_path):
    cache = ResponseCache(cache_path)
    cache.close()
    cache.close()
    with pytest.raises(RuntimeError, match="closed"):
        cache.get_many(["key"])


def test_concurrent_readers_while_one_writes(cache_path):
    cache = ResponseCache(cache_path)
    cache.put_many({f"seed-{i}": Generation(f"seed {i}") for i in range(50)})
    all_keys = [f"seed-{i}" for i in range(50)] + [f"new-{i}" for i in range(200)]
    writer_done = threading.Event()

    def read():
        num_reads = 0
        while not writer_done.is_set() or num_reads == 0:
            assert len(cache.get_many(all_keys)) >= 50
            assert len(cache) >= 50
            num_reads += 1
        return num_reads

    def write():
        try:
            for i in range(200):
                cache.put_many({f"new-{i}": Generation(f"new {i}")})
        finally:
            writer_done.set()

    # `result()` re-raises whatever a thread raised
    with ThreadPoolExecutor(max_workers=5) as pool:
        readers = [pool.submit(read) for _ in range(4)]
        pool.submit(write).result()
        assert all(reader.result() > 0 for reader in readers)
    assert cache.get_many(all_keys)["new-199"].text == "new 199"
    assert len(cache) == 250
    # No more connections than calls at once: the opening one, and one per thread that overlapped another
    assert 2 <= len(cache._connections) <= 6
    cache.close()


def test_threads_that_come_and_go_reuse_connections_instead_of_opening_one_each(cache_path):
    # A pipelined rollout makes a new pool of request threads every rollout; a connection per thread leaked two file
    # descriptors per thread and rollout, until sqlite could not open the file any more
    cache = CachedGenerator(CountingGenerator(), ResponseCache(cache_path))
    for rollout in range(50):
        with ThreadPoolExecutor(max_workers=4) as pool:
            answers = list(pool.map(lambda i, r=rollout: cache.generate([f"prompt {r}-{i}"]), range(4)))
        assert all(answer.text for [answer] in answers)
    assert len(cache.cache) == 200
    assert len(cache.cache._connections) <= 4  # at most the calls that ran at once, not 50 x 4 threads
    cache.close()


def test_corrupted_file_is_moved_aside_and_a_fresh_cache_created(cache_path, caplog):
    with ResponseCache(cache_path) as cache:
        cache.put_many({"key": Generation("answer")})
    garbage = b"this is not an sqlite file \x00\xff" * 200
    cache_path.write_bytes(garbage)

    with caplog.at_level(logging.WARNING, logger="instrl_trl.backends.cache"):
        cache = ResponseCache(cache_path)
    moved = list(cache_path.parent.glob("responses.sqlite.corrupt-*"))
    assert len(moved) == 1 and moved[0].read_bytes() == garbage
    assert "corrupted" in caplog.text and str(moved[0]) in caplog.text
    with cache:
        assert len(cache) == 0
        cache.put_many({"key": Generation("fresh answer")})
        assert cache.get_many(["key"])["key"].text == "fresh answer"
    # the fresh cache is a healthy file: reopening it moves nothing
    with ResponseCache(cache_path) as cache:
        assert len(cache) == 1
    assert len(list(cache_path.parent.glob("responses.sqlite.corrupt-*"))) == 1


def test_damaged_pages_are_detected_too(cache_path, caplog):
    with ResponseCache(cache_path) as cache:
        cache.put_many({f"key-{i}": Generation("x" * 200) for i in range(200)})
    # keep the 100-byte header (the file still looks like a database) and scribble over the pages after it
    data = bytearray(cache_path.read_bytes())
    data[100:4096] = b"\xa5" * (4096 - 100)
    data[4096 * 2 : 4096 * 6] = b"\x5a" * (4096 * 4)
    cache_path.write_bytes(bytes(data))

    with caplog.at_level(logging.WARNING, logger="instrl_trl.backends.cache"), ResponseCache(cache_path) as cache:
        assert len(cache) == 0
    assert len(list(cache_path.parent.glob("responses.sqlite.corrupt-*"))) == 1
    assert "corrupted" in caplog.text


def test_an_unopenable_path_is_an_error_not_a_corruption(tmp_path):
    folder = tmp_path / "a-folder"
    folder.mkdir()
    with pytest.raises(sqlite3.OperationalError):
        ResponseCache(folder)
    assert folder.is_dir() and not list(tmp_path.glob("*.corrupt-*"))


def test_sampling_seed_is_part_of_the_key(cache_path):
    generator = CountingGenerator()
    with CachedGenerator(generator, cache_path) as cached:
        first = cached.generate(["Name a river."], seeds=[0], temperature=0.7)[0]
        retry = cached.generate(["Name a river."], seeds=[1], temperature=0.7)[0]
        again = cached.generate(["Name a river."], seeds=[0], temperature=0.7)[0]
    assert (first.text, retry.text) == ("answer to Name a river. (sample 0)", "answer to Name a river. (sample 1)")
    assert not retry.usage.cached  # a retry with a new seed is a new query, not the cached first answer
    assert again.text == first.text and again.usage.cached
    assert generator.seeds == [[0], [1]]


def test_seeds_are_left_out_under_greedy_decoding(cache_path):
    generator = CountingGenerator()
    with CachedGenerator(generator, cache_path) as cached:
        first = cached.generate(["Name a river."], seeds=[0], temperature=0.0)[0]
        retry = cached.generate(["Name a river."], seeds=[1], temperature=0.0)[0]
    # every seed gives the greedy answer: the retry is a cache hit and no seed is sent
    assert retry.usage.cached and retry.text == first.text == "answer to Name a river."
    assert generator.seeds == [None]


def test_one_seed_per_prompt(cache_path):
    with CachedGenerator(CountingGenerator(), cache_path) as cached, pytest.raises(ValueError, match="one seed"):
        cached.generate(["a", "b"], seeds=[1])
