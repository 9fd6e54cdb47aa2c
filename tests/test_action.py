"""Action intake: decoding, INVALID_ACTION reasons, solution.json, and extracting code from a chat reply."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from solgym.action import MAX_ACTION_BYTES, Action, InvalidAction, decode, extract_code

ADD = """
import torch

def run(x, y):
    return x + y
"""
ADD_DPS = """
def run(x, y, out):
    out.copy_(x)
"""
SOLEXECBENCH = Path(__file__).resolve().parents[2] / "shared" / "solexecbench-dev"


def invalid(raw, inputs=("x", "y"), outputs=("out",)) -> str:
    with pytest.raises(InvalidAction) as info:
        decode(raw, inputs=inputs, outputs=outputs)
    assert info.value.reason == str(info.value)
    return info.value.reason


def test_return_style_is_detected_by_arity():
    action = decode(ADD, inputs=["x", "y"], outputs=["out"])
    assert (action.style, action.entry_point, dict(action.files)) == ("return", "run", {})
    assert action.source == ADD


def test_destination_style_is_detected_by_arity():
    assert decode(ADD_DPS, inputs=["x", "y"], outputs=["out"]).style == "destination"


def test_digest_is_a_stable_content_key():
    a = decode(ADD, inputs=["x", "y"], outputs=["out"])
    b = decode(ADD.encode(), inputs=["x", "y"], outputs=["out"])
    c = decode(ADD + "\n# changed\n", inputs=["x", "y"], outputs=["out"])
    assert a.digest == b.digest and len(a.digest) == 64
    assert c.digest != a.digest
    assert hash(a) == hash(b) and a == b


def test_action_is_immutable():
    action = decode(ADD, inputs=["x", "y"], outputs=["out"])
    with pytest.raises(AttributeError):
        action.source = ""  # type: ignore[misc]
    with pytest.raises(TypeError):
        action.files["x.cu"] = ""  # type: ignore[index]


@pytest.mark.parametrize("raw", ["", "   \n\t"])
def test_empty_action_is_invalid(raw):
    assert "empty" in invalid(raw)


def test_bytes_that_are_not_utf8_are_invalid():
    assert "UTF-8" in invalid(b"def run(x, y):\n    return x\xff\n")


def test_action_over_the_size_cap_is_invalid():
    reason = invalid("def run(x, y):\n    return x\n" + "#" * MAX_ACTION_BYTES)
    assert str(MAX_ACTION_BYTES) in reason


def test_nul_bytes_are_invalid():
    assert "NUL" in invalid("def run(x, y):\n    return x\x00\n")


def test_syntax_error_names_the_line():
    reason = invalid("import torch\n\ndef run(x, y)\n    return x\n")
    assert "syntax error at line 3" in reason


def test_missing_run_is_invalid():
    assert "no top-level function run" in invalid("def main(x, y):\n    return x\n")


def test_run_nested_in_a_block_is_not_top_level():
    assert "no top-level function run" in invalid("if True:\n    def run(x, y):\n        return x\n")


def test_run_that_is_not_a_function_is_invalid():
    assert "not a function" in invalid("def run(x, y):\n    return x\n\nrun = 3\n")
    assert "not a function" in invalid("class run:\n    pass\n")


def test_async_run_is_invalid():
    assert "async" in invalid("async def run(x, y):\n    return x\n")


def test_wrong_arity_names_both_accepted_arities():
    reason = invalid("def run(x):\n    return x\n")
    assert "takes 1 parameters" in reason
    assert "2 for return style `run(x, y) -> out`" in reason
    assert "3 for destination style `run(x, y, out)`" in reason


def test_star_args_run_is_invalid():
    assert "*args" in invalid("def run(*args):\n    return args[0]\n")
    assert "*args" in invalid("def run(x, y, **kwargs):\n    return x\n")


def test_keyword_only_parameter_without_default_is_invalid():
    assert "keyword-only" in invalid("def run(x, y, *, out):\n    return x\n")


def test_keyword_only_parameter_with_default_is_allowed():
    assert (
        decode("def run(x, y, *, eps=1e-6):\n    return x\n", inputs=["x", "y"], outputs=["o"]).style
        == "return"
    )


@pytest.mark.parametrize(
    "raw",
    [
        "x = " + "(" * 10_000 + "1" + ")" * 10_000,
        "x = " + "-" * 10_000 + "1",
        "x = a" + ".b" * 10_000,
        "x = " + " + ".join(["a"] * 10_000),
        "x = " + " and ".join(["a"] * 10_000),
        "x = " + "[" * 150 + "]" * 150,
        "if a:\n    pass\n" + "elif a:\n    pass\n" * 2_000,
    ],
    ids=["parens", "unary", "attributes", "binop", "boolop", "lists", "elif"],
)
def test_pathological_nesting_is_invalid_quickly(raw):
    start = time.perf_counter()
    reason = invalid("def run(x, y):\n    return x\n" + raw + "\n")
    assert time.perf_counter() - start < 1.0
    assert "nest" in reason or "chain" in reason or "too" in reason


def test_ten_megabytes_is_invalid_quickly():
    start = time.perf_counter()
    assert "limit" in invalid("x = 1\n" * (10 * 1024 * 1024 // 6))
    assert time.perf_counter() - start < 1.0


def test_unsupported_type_is_invalid():
    assert "not int" in invalid(42)  # type: ignore[arg-type]


def solution(**spec):
    return {
        "name": "add",
        "definition": "add",
        "author": "test",
        "spec": {"languages": ["triton"], "target_hardware": ["H100"], "entry_point": "main.py::run", **spec},
        "sources": [
            {
                "path": "main.py",
                "content": "from helpers import twice\n\ndef run(x, y):\n    return twice(x)\n",
            },
            {"path": "helpers.py", "content": "def twice(x):\n    return x + x\n"},
            {"path": "kernel.cu", "content": "__global__ void k() {}\n"},
        ],
    }


def test_solution_json_object_is_decoded():
    action = decode(solution(), inputs=["x", "y"], outputs=["out"])
    assert action.source.startswith("from helpers")
    assert sorted(action.files) == ["helpers.py", "kernel.cu"]
    assert (action.entry_point, action.style) == ("run", "return")


def test_solution_json_text_and_bytes_decode_the_same():
    obj = decode(solution(), inputs=["x", "y"], outputs=["out"])
    text = decode(json.dumps(solution()), inputs=["x", "y"], outputs=["out"])
    raw = decode(json.dumps(solution()).encode(), inputs=["x", "y"], outputs=["out"])
    assert obj.digest == text.digest == raw.digest


def test_solution_entry_point_names_the_function():
    sol = solution(entry_point="main.py::forward")
    sol["sources"][0]["content"] = "def forward(x, y):\n    return x\n"
    assert decode(sol, inputs=["x", "y"], outputs=["out"]).entry_point == "forward"


def test_solution_declared_style_must_match_the_arity():
    reason = invalid(solution(destination_passing_style=True))
    assert "destination_passing_style=true" in reason


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("../main.py", "plain relative path"),
        ("/etc/x.py", "plain relative path"),
        ("notes.txt", "not a source"),
    ],
)
def test_solution_paths_are_checked(path, expected):
    sol = solution()
    sol["sources"].append({"path": path, "content": "x = 1\n"})
    assert expected in invalid(sol)


def test_solution_duplicate_paths_are_invalid():
    sol = solution()
    sol["sources"].append({"path": "helpers.py", "content": "y = 2\n"})
    assert "twice" in invalid(sol)


def test_solution_helper_module_with_syntax_error_is_invalid():
    sol = solution()
    sol["sources"][1]["content"] = "def twice(x) return x\n"
    assert "helpers.py has a syntax error" in invalid(sol)


def test_solution_entry_file_must_be_among_sources():
    assert "not a .py file among the sources" in invalid(solution(entry_point="other.py::run"))


def test_solution_without_sources_is_invalid():
    assert "sources" in invalid({"spec": {"entry_point": "main.py::run"}, "sources": []})


def test_solution_without_entry_point_uses_its_only_python_file():
    sol = solution()
    del sol["spec"]["entry_point"]
    sol["sources"] = [sol["sources"][0] | {"path": "kernel.py"}]
    sol["sources"][0]["content"] = "def run(x, y):\n    return x\n"
    assert decode(sol, inputs=["x", "y"], outputs=["out"]).source.startswith("def run")


def test_python_source_starting_with_a_brace_is_still_python():
    action = decode("{'a': 1}\ndef run(x, y):\n    return x\n", inputs=["x", "y"], outputs=["out"])
    assert action.source.startswith("{'a'")


def test_extract_code_takes_the_last_block_that_defines_run():
    reply = (
        "First try:\n```python\ndef run(x):\n    return x\n```\n"
        "A helper:\n```python\ndef helper():\n    pass\n```\n"
        "Final:\n```py\nimport torch\n\ndef run(x):\n    return x * 2\n```\nDone."
    )
    assert extract_code(reply) == "import torch\n\ndef run(x):\n    return x * 2\n"


def test_extract_code_ignores_other_languages_and_replies_without_run():
    assert extract_code("```cpp\ndef run(x):\n```\n") is None
    assert extract_code("no code here") is None
    assert extract_code("```\ndef run(x):\n    return x\n```") == "def run(x):\n    return x\n"


def test_every_solexecbench_reference_decodes_as_a_return_style_action():
    if not SOLEXECBENCH.is_dir():
        pytest.skip("shared/solexecbench-dev is absent")
    count = 0
    for definition in sorted(SOLEXECBENCH.glob("*/definition.json")):
        data = json.loads(definition.read_text())
        action = decode(data["reference"], inputs=list(data["inputs"]), outputs=list(data["outputs"]))
        assert action.style == "return", definition.parent.name
        count += 1
    assert count == 41


def test_action_constructed_directly_has_defaults():
    action = Action(source="def run(x):\n    return x\n")
    assert (action.style, action.entry_point, dict(action.files)) == ("return", "run", {})
