"""
README.md, run as written (issue 16): a new user's path, command by command, must work and leave what it promises.

The rules, for whoever edits README.md:

- Every ```bash block runs, in the README's order, each command line (backslash continuations joined) in its own
  `bash -eo pipefail -c`, from the root of a temporary copy of the repository (its tracked and
  untracked-but-not-ignored files), offline (tests/conftest.py points HF_ENDPOINT at a closed port and HF_HOME at a
  fresh folder).
- A block is skipped only when the line just before it (blank lines aside) is an HTML comment
  `<!-- not run in tests: REASON -->`, with a reason. The install block carries one (the suite runs in the installed
  environment), and so must any command that needs a GPU, the network or more than a minute of CPU.
- ```python blocks run after all the bash blocks, in order, in one Python process (a snippet sees the names an earlier
  one defined), in the same copy, so they may read what the commands wrote; the same comment skips one. Other blocks
  (yaml, text) are shown, not run.
- Each `instrl-trl STAGE` or `-m instrl_trl.cli STAGE` command must leave the outputs listed in `check_outputs` under
  its `--output_dir` (or its recipe's `output_dir`); a stage not listed there fails the test until it is added.
- Placeholders (`<NAME>`, `PATH/TO/...`) in a run block are refused unless `PLACEHOLDERS` gives their value, and the
  README's text must say what to put there.
- The run blocks must stay cheap: both tests together take a few minutes on 2 CPU cores.
"""

import json
import os
import re
import resource
import shlex
import shutil
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml


REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
SKIP_COMMENT = re.compile(r"^<!--\s*not run in tests:\s*(?P<reason>\S.*?)\s*-->$")
# Placeholder -> the value the test puts there. Keep the README's text saying what a user puts in its place.
PLACEHOLDERS: dict[str, str] = {}
PLACEHOLDER_PATTERN = re.compile(r"<[A-Za-z][\w' -]*>|\b[A-Z][A-Z0-9_]*(?:/[A-Z][A-Z0-9_.-]*)+")
COMMAND_TIMEOUT = 900  # seconds, one command; the whole file has its own timeouts below


@dataclass
class Block:
    language: str
    code: str
    line: int  # 1-based line of the opening fence
    skip_reason: str | None


def readme_blocks(text: str) -> list[Block]:
    """The fenced code blocks of `text`, in order, each with the reason it is not run (or `None`)."""
    blocks, lines, index = [], text.splitlines(), 0
    previous = ""  # the last non-blank line outside a block
    while index < len(lines):
        fence = re.match(r"^```(\w*)\s*$", lines[index])
        if fence is None:
            if lines[index].strip():
                previous = lines[index].strip()
            index += 1
            continue
        end = next((i for i in range(index + 1, len(lines)) if lines[i].strip() == "```"), None)
        assert end is not None, f"README.md line {index + 1}: code block never closed"
        skip = SKIP_COMMENT.match(previous)
        blocks.append(
            Block(fence.group(1), "\n".join(lines[index + 1 : end]), index + 1, skip.group("reason") if skip else None)
        )
        previous, index = "", end + 1
    return blocks


def command_lines(code: str) -> list[str]:
    """The commands of a bash block: continuation lines joined, comments and blank lines dropped."""
    joined = re.sub(r"\\\n\s*", " ", code)
    return [line.strip() for line in joined.splitlines() if line.strip() and not line.strip().startswith("#")]


def fill_placeholders(command: str) -> str:
    for placeholder, value in PLACEHOLDERS.items():
        command = command.replace(placeholder, value)
    unknown = PLACEHOLDER_PATTERN.findall(command)
    assert not unknown, (
        f"README command {command!r} has placeholders {unknown} that tests/test_readme.py does not fill: write a real "
        "value, or add the placeholder to PLACEHOLDERS and say in the README what to put there."
    )
    return command


def stage_and_arguments(command: str) -> tuple[str | None, list[str]]:
    """`instrl-trl generate --x 1` or `... -m instrl_trl.cli generate --x 1` -> `("generate", ["--x", "1"])`."""
    words = shlex.split(command)
    for index, word in enumerate(words):
        if word == "instrl-trl" or (word == "instrl_trl.cli" and index > 0 and words[index - 1] == "-m"):
            return words[index + 1], words[index + 2 :]
    return None, []


def option_values(arguments: list[str], name: str) -> list[str] | None:
    """The values after `--name` (up to the next option), or `None` when it is not given."""
    if f"--{name}" not in arguments:
        return None
    values = []
    for word in arguments[arguments.index(f"--{name}") + 1 :]:
        if word.startswith("--"):
            break
        values.append(word)
    return values


def setting(arguments: list[str], name: str, cwd: Path):
    """A stage's setting as the command gives it, else as its `--config` recipe does."""
    values = option_values(arguments, name)
    if values is not None:
        return values if len(values) > 1 or name == "models" else values[0]
    recipe = option_values(arguments, "config")
    return yaml.safe_load((cwd / recipe[0]).read_text()).get(name) if recipe else None


def check_model_folder(folder: Path, causal_lm: bool) -> None:
    assert (folder / "config.json").is_file() and (folder / "model.safetensors").is_file(), f"no model in {folder}"
    if causal_lm:
        from transformers import AutoModelForCausalLM

        AutoModelForCausalLM.from_pretrained(folder)  # it loads (ZeRO-3 saved a whole model)


def check_outputs(stage: str, arguments: list[str], cwd: Path) -> None:
    """Asserts that what a stage's command promises in the README is on disk."""
    output_dir = cwd / setting(arguments, "output_dir", cwd)
    if stage == "train-policy":
        check_model_folder(output_dir, causal_lm=False)
        assert (output_dir / "README.md").is_file(), f"no policy card in {output_dir}"
    elif stage == "generate":
        assert sorted((output_dir / "data").glob("*.parquet")), f"no parquet shards in {output_dir}/data"
        assert (output_dir / "README.md").is_file(), f"no dataset card in {output_dir}"
    elif stage == "sft":
        check_model_folder(output_dir, causal_lm=True)
        assert (output_dir / "README.md").is_file(), f"no model card in {output_dir}"
    elif stage == "evaluate":
        models = setting(arguments, "models", cwd)
        for model in models:
            results = output_dir / Path(model).name / "eval_results.json"
            assert json.loads(results.read_text())["benchmarks"], f"{results} scores no benchmark"
    elif stage == "pipeline":
        check_outputs("train-policy", ["--output_dir", str(output_dir / "policy")], cwd)
        check_outputs("generate", ["--output_dir", str(output_dir / "dataset")], cwd)
        check_outputs("sft", ["--output_dir", str(output_dir / "sft")], cwd)
        check_outputs("evaluate", ["--output_dir", str(output_dir / "eval"), "--models", "sft"], cwd)
    else:
        pytest.fail(f"The README runs `instrl-trl {stage}`: add what it promises to `check_outputs` in {__file__}.")


def copy_repository(destination: Path) -> Path:
    """The repository's tracked and untracked-but-not-ignored files (no `data/`, no caches) in `destination`."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=False,
    )
    if listed.returncode != 0:
        pytest.skip("README test needs a git checkout, to copy its files")
    for name in filter(None, listed.stdout.decode().split("\0")):
        source = REPO / name
        if source.is_file():  # a file deleted but not yet staged is still listed
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    return destination


def run_environment(copy: Path) -> dict[str, str]:
    # The copy's package is imported, whichever way `instrl-trl` was installed
    python_path = os.pathsep.join(filter(None, [str(copy), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": python_path, "PYTHONUNBUFFERED": "1"}


@pytest.fixture(scope="module")
def readme_run(tmp_path_factory):
    """Runs the README's bash blocks in a fresh copy; returns the copy and each command's duration."""
    blocks = readme_blocks(README.read_text())
    copy = copy_repository(tmp_path_factory.mktemp("readme-run"))
    env = run_environment(copy)
    durations = []
    for block in blocks:
        if block.language != "bash" or block.skip_reason is not None:
            continue
        for command in command_lines(block.code):
            command = fill_placeholders(command)
            start, children = time.monotonic(), resource.getrusage(resource.RUSAGE_CHILDREN)
            result = subprocess.run(
                ["bash", "-eo", "pipefail", "-c", command],
                cwd=copy,
                env=env,
                capture_output=True,
                text=True,
                timeout=COMMAND_TIMEOUT,
                check=False,
            )
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
            durations.append((command, time.monotonic() - start, cpu))
            assert result.returncode == 0, (
                f"README.md line {block.line}: `{command}` failed ({result.returncode}):\n"
                f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            )
            stage, arguments = stage_and_arguments(command)
            if stage is not None:
                check_outputs(stage, arguments, copy)
    for command, seconds, cpu in durations:
        # The README states these times; `-s` shows them (CPU: all processes of the command, both cores)
        print(f"{seconds:7.1f}s wall {cpu:7.1f}s CPU  {command}")  # noqa: T201
    return copy, durations


def test_readme_block_rules():
    blocks = readme_blocks(README.read_text())
    bash = [block for block in blocks if block.language == "bash"]
    assert bash and bash[0].skip_reason is not None, "the install block comes first and is not run"
    assert any(block.skip_reason is None for block in bash), "the README runs no command"
    with pytest.raises(AssertionError, match="placeholders"):
        fill_placeholders("instrl-trl sft --model_name_or_path PATH/TO/BASE")
    with pytest.raises(AssertionError, match="placeholders"):
        fill_placeholders("instrl-trl sft --dataset_name <your shards>")
    text = "<!-- not run in tests: needs a GPU -->\n\n```bash\nnvidia-smi\n```\n\n```bash\nls\n```\n"
    assert [block.skip_reason for block in readme_blocks(text)] == ["needs a GPU", None]


@pytest.mark.slow
@pytest.mark.timeout(2400)  # far above what it takes (a few minutes on 2 cores): a hang fails instead of eating CI
def test_readme_commands_run_as_written(readme_run):
    _, durations = readme_run
    # Each stage the README teaches ran at least once, standalone as well as in the pipeline
    stages = {stage_and_arguments(command)[0] for command, _, _ in durations}
    assert stages >= {"pipeline", "train-policy", "generate", "sft", "evaluate"}, stages


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_readme_python_snippets_run_as_written(readme_run):
    copy, _ = readme_run
    snippets = [
        block
        for block in readme_blocks(README.read_text())
        if block.language == "python" and block.skip_reason is None
    ]
    assert snippets, "the README shows no Python"
    # One process, one namespace, in order; a failure names the snippet's line in README.md
    runner = textwrap.dedent(
        """
        import json, sys, traceback
        namespace = {"__name__": "__main__"}
        for line, code in json.load(open(sys.argv[1])):
            try:
                exec(compile(code, f"README.md:{line}", "exec"), namespace)
            except BaseException:
                traceback.print_exc()
                sys.exit(f"README.md line {line}: this Python snippet failed")
        """
    )
    (copy / "readme_snippets.json").write_text(json.dumps([[block.line, block.code] for block in snippets]))
    result = subprocess.run(
        [sys.executable, "-c", runner, "readme_snippets.json"],
        cwd=copy,
        env=run_environment(copy),
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
