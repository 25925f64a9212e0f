import pytest

from instrl_trl.operations import STOP_ACTION, Operation, OperationLibrary


def make(name, **kwargs):
    return Operation(name=name, description="d", prompt_template="Rewrite: {instruction}", **kwargs)


def test_operation_render_prompt_keeps_other_braces():
    operation = Operation("shorten", "d", "Rewrite {instruction} as JSON like {'a': 1}.")
    assert operation.render_prompt("Name a fruit.") == "Rewrite Name a fruit. as JSON like {'a': 1}."


def test_operation_backend_options_and_origin():
    options = {"rules": {"strategy": "append_clause", "texts": ["x"]}}
    operation = Operation("shorten", "d", "{instruction}", backend_options=options, origin="ops.yaml")
    assert operation.backend_options == options and operation.backend_options is not options
    # the origin says where it came from, not what it is
    assert operation == Operation("shorten", "d", "{instruction}", backend_options=options)
    assert hash(operation) == hash(Operation("shorten", "d", "{instruction}"))
    assert operation != Operation("shorten", "d", "{instruction}")
    with pytest.raises(ValueError, match="'shorten'.*`backend_options` must map backend names"):
        Operation("shorten", "d", "{instruction}", backend_options={"rules": "append_clause"})


@pytest.mark.parametrize(
    "name, template, match",
    [
        ("bad name", "{instruction}", "name"),
        (STOP_ACTION, "{instruction}", "reserved"),
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
    replaced = make("b", backend_options={"rules": {"strategy": "append_clause", "texts": ["t"]}})
    merged = library.merged([replaced, make("d")])
    assert merged.names == ["a", "b", "c", "d"]
    assert merged["b"] is replaced
    with pytest.raises(ValueError, match="Valid operations: a, b, c"):
        library.select(["z"])
    with pytest.raises(KeyError, match="Valid operations"):
        library["z"]
    with pytest.raises(ValueError, match="twice"):
        OperationLibrary([make("a"), make("a")])
