import pytest

from instrl_trl.operations import Operation, OperationLibrary


def make(name, **kwargs):
    return Operation(name=name, description="d", prompt_template="Rewrite: {instruction}", **kwargs)


def test_operation_render_prompt_keeps_other_braces():
    operation = Operation("shorten", "d", "Rewrite {instruction} as JSON like {'a': 1}.", rule_texts=["x"])
    assert operation.render_prompt("Name a fruit.") == "Rewrite Name a fruit. as JSON like {'a': 1}."
    assert operation.rule_texts == ("x",)


@pytest.mark.parametrize(
    "name, template, match",
    [
        ("bad name", "{instruction}", "name"),
        ("stop", "{instruction}", "reserved"),
        ("ok", "  ", "prompt_template"),
        ("ok", "no placeholder", "placeholder"),
    ],
)
def test_operation_errors(name, template, match):
    with pytest.raises(ValueError, match=match):
        Operation(name=name, description="d", prompt_template=template)


def test_library_order_select_merge():
    library = OperationLibrary([make("a"), make("b"), make("c")])
    assert library.names == ["a", "b", "c"]
    assert library.select(["c", "a"]).names == ["c", "a"]
    replaced = make("b", rule="append_clause", rule_texts=("t",))
    merged = library.merged([replaced, make("d")])
    assert merged.names == ["a", "b", "c", "d"]
    assert merged["b"] is replaced
    with pytest.raises(ValueError, match="Valid operations: a, b, c"):
        library.select(["z"])
    with pytest.raises(KeyError, match="Valid operations"):
        library["z"]
    with pytest.raises(ValueError, match="twice"):
        OperationLibrary([make("a"), make("a")])
