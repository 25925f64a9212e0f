import textwrap

import pytest

from instrl_trl.operations import DEFAULT_OPERATIONS, Operation, build_operation_library, load_operations


USER_OPERATIONS = [
    Operation(
        "add_humor",
        "Ask for a light tone.",
        "Make it funny: {instruction}",
        backend_options={"rules": {"strategy": "append_clause", "texts": ["Keep it light."]}},
    )
]


def write(tmp_path, text, name="ops.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_load_yaml(tmp_path):
    (tmp_path / "prompt.txt").write_text("Shorten this: {instruction}")
    path = write(
        tmp_path,
        """
        - name: add_humor
          description: Ask for a light tone.
          prompt_template: "Make it funny: {instruction}"
          backend_options:
            rules: {strategy: append_clause, texts: ["Keep the tone light and playful."]}
        - name: shorten
          description: Make it shorter.
          prompt_file: prompt.txt
        """,
    )
    library = load_operations(path)
    assert library.names == ["add_humor", "shorten"]
    # passed through unread: the backend named in it validates it
    assert library["add_humor"].backend_options == {
        "rules": {"strategy": "append_clause", "texts": ["Keep the tone light and playful."]}
    }
    assert library["shorten"].prompt_template == "Shorten this: {instruction}"
    assert library["shorten"].backend_options == {}
    assert {operation.origin for operation in library.values()} == {str(path)}
    assert load_operations(str(path)).names == library.names


@pytest.mark.parametrize(
    "body, match",
    [
        ("  colour: red\n", r"operation 'x'.*unknown key\(s\) \['colour'\]"),
        ("", r"operation 'x'.*give exactly one of the keys `prompt_template`"),
        ("  prompt_template: '  '\n", r"operation 'x'.*key `prompt_template`.*empty"),
        ("  prompt_template: no placeholder\n", r"operation 'x'.*key `prompt_template`.*\{instruction\}"),
        ("  prompt_template: '{instruction}'\n  rule: magic\n", r"operation 'x'.*unknown key\(s\) \['rule'\]"),
        ("  prompt_template: '{instruction}'\n  backend_options: [rules]\n", r"operation 'x'.*key `backend_options`"),
        (
            "  prompt_template: '{instruction}'\n  backend_options: {rules: append_clause}\n",
            r"operation 'x'.*`backend_options` must map backend names to mappings",
        ),
        ("  prompt_file: missing.txt\n", r"operation 'x'.*key `prompt_file`.*missing.txt"),
    ],
)
def test_load_yaml_errors_name_file_operation_key(tmp_path, body, match):
    path = write(tmp_path, "- name: x\n  description: d\n" + body)
    with pytest.raises(ValueError, match=match) as error:
        load_operations(path)
    assert str(path) in str(error.value)


def test_load_yaml_missing_key(tmp_path):
    path = write(tmp_path, "- name: x\n  prompt_template: '{instruction}'\n")
    with pytest.raises(ValueError, match=r"ops.yaml: operation 'x': missing or empty key `description`"):
        load_operations(path)
    path = write(tmp_path, "- description: d\n  prompt_template: '{instruction}'\n")
    with pytest.raises(ValueError, match=r"operation '#0': missing or empty key `name`"):
        load_operations(path)
    path = write(tmp_path, "name: x\n")
    with pytest.raises(ValueError, match="ops.yaml: expected a non-empty list"):
        load_operations(path)


def test_load_dotted_path():
    loaded = load_operations(f"{__name__}:USER_OPERATIONS")
    assert loaded.names == ["add_humor"]
    assert loaded["add_humor"].origin == f"{__name__}:USER_OPERATIONS"
    assert load_operations("instrl_trl.operations:default_operations").names == DEFAULT_OPERATIONS.names
    assert load_operations("instrl_trl.operations:DEFAULT_OPERATIONS").names == DEFAULT_OPERATIONS.names
    with pytest.raises(ValueError, match="pkg.module:ATTR"):
        load_operations("instrl_trl.operations:NOPE")
    with pytest.raises(ValueError, match="neither a YAML file"):
        load_operations("not_a_path")


def test_build_operation_library():
    assert build_operation_library().names == DEFAULT_OPERATIONS.names
    replaced = Operation(
        "deepening", "Mine.", "Deeper: {instruction}", {"rules": {"strategy": "append_clause", "texts": ["Deeper."]}}
    )
    library = build_operation_library(extra=[*USER_OPERATIONS, replaced])
    assert library.names == [*DEFAULT_OPERATIONS.names, "add_humor"]
    assert library["deepening"] is replaced
    selected = build_operation_library(names=["add_humor", "breadth"], extra=USER_OPERATIONS)
    assert selected.names == ["add_humor", "breadth"]
    with pytest.raises(ValueError, match="Valid operations"):
        build_operation_library(names=["nope"])
