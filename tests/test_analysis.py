"""Static analysis: the corpus of cheats and look-alikes, policies, C++ scanning, robustness (fuzzing)."""

from __future__ import annotations

import ast
import json
import random
import re
import time
from pathlib import Path

import pytest

from solgym.action import Action, InvalidAction, decode
from solgym.analysis import POLICIES, RULES, Verdict, analyze, check
from solgym.analysis import cxx as cxx_scanner
from solgym.analysis.tables import NAMES
from solgym.result import Status

CORPUS = Path(__file__).resolve().parent / "corpus"
ROOT = Path(__file__).resolve().parents[1]
SOLEXECBENCH = Path(__file__).resolve().parents[2] / "shared" / "solexecbench-dev"


def load_case(path: Path) -> tuple[object, list[str], str, list[str], list[str]]:
    """(raw action, expected rule ids, policy, inputs, outputs) from a corpus file's header."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        raw = json.loads(text)
        meta = raw["_corpus"]
        return raw, meta.get("expect", []), meta.get("policy", "strict"), meta["inputs"], meta["outputs"]
    header = dict(re.findall(r"^# (expect|policy|inputs|outputs): (.*)$", text, re.MULTILINE))

    def names(key: str, default: str) -> list[str]:
        return header.get(key, default).replace(",", " ").split()

    return (
        text,
        names("expect", ""),
        header.get("policy", "strict"),
        names("inputs", "x"),
        names("outputs", "out"),
    )


CHEATS = sorted((CORPUS / "cheat").glob("*"))
LEGIT = sorted((CORPUS / "legit").glob("*"))


@pytest.mark.parametrize("path", CHEATS, ids=lambda p: p.stem)
def test_cheat_is_rejected_by_the_expected_rules(path):
    raw, expected, policy, inputs, outputs = load_case(path)
    assert expected, f"{path.name} has no '# expect:' header"
    status, _action, verdict, message = check(raw, inputs=inputs, outputs=outputs, policy=policy)
    assert status is Status.REJECTED, message
    found = {v.rule for v in verdict.violations}
    assert set(expected) <= found, f"expected {expected}, got {sorted(found)}:\n{message}"
    for v in verdict.violations:
        assert v.line is not None and v.line >= 1 and v.message, v


@pytest.mark.parametrize("path", LEGIT, ids=lambda p: p.stem)
def test_look_alike_is_accepted(path):
    raw, expected, policy, inputs, outputs = load_case(path)
    assert not expected
    status, action, verdict, message = check(raw, inputs=inputs, outputs=outputs, policy=policy)
    assert status is None, message
    assert verdict.ok and verdict.policy == policy and action is not None
    if policy == "strict":
        assert analyze(action, policy="permissive").ok


def test_corpus_is_large_enough_and_covers_every_family():
    assert len(CHEATS) >= 40 and len(LEGIT) >= 20
    families = {RULES[rule].family for path in CHEATS for rule in load_case(path)[1]}
    expected = {rule.family for rule in RULES.values()} - {"analysis"}
    assert families == expected


def test_every_rule_has_a_rationale_and_a_backing_defence():
    for rule in RULES.values():
        assert rule.id.startswith(rule.family + ".")
        assert rule.rationale.endswith(".") and rule.backed_by
        assert set(rule.policies) <= set(POLICIES) and rule.policies


def test_every_rule_the_tables_and_scanner_report_is_in_the_catalogue():
    reported = {rule for rule in NAMES.values() if rule} | cxx_scanner.rule_ids()
    assert reported <= set(RULES)


def test_every_rule_is_documented():
    doc = (ROOT / "docs" / "analysis.md").read_text(encoding="utf-8")
    missing = [rule for rule in RULES if f"`{rule}`" not in doc]
    assert not missing


def analyze_source(source: str, policy: str = "strict", inputs=("x",), outputs=("out",)) -> Verdict:
    return analyze(decode(source, inputs=inputs, outputs=outputs), policy=policy)


def rules_of(verdict: Verdict) -> set[str]:
    return {v.rule for v in verdict.violations}


def test_violations_carry_the_line_of_the_offending_code():
    verdict = analyze_source((CORPUS / "cheat" / "timing_stream_naive.py").read_text())
    stream = [v for v in verdict.violations if v.rule == "timing.stream"]
    assert [v.line for v in stream] == [15, 20]
    assert "torch.cuda.Stream" in stream[0].message and "current stream" in stream[0].message


def test_repeated_offences_are_reported_on_their_own_lines():
    source = "import os\n\ndef run(x):\n    os.system('a')\n    y = 1\n    os.system('b')\n    return x\n"
    lines = [v.line for v in analyze_source(source).violations if v.rule == "escape.process"]
    assert lines == [4, 6]


def test_policy_is_reported_and_strict_only_rules_drop_under_permissive():
    raw, _, _, inputs, outputs = load_case(CORPUS / "cheat" / "subst_torch_matmul.py")
    action = decode(raw, inputs=inputs, outputs=outputs)
    strict, permissive = analyze(action), analyze(action, policy="permissive")
    assert (strict.ok, strict.policy) == (False, "strict")
    assert (permissive.ok, permissive.policy) == (True, "permissive")


def test_escape_rules_apply_under_both_policies():
    raw, _, _, inputs, outputs = load_case(CORPUS / "cheat" / "escape_os_system.py")
    action = decode(raw, inputs=inputs, outputs=outputs)
    assert rules_of(analyze(action, policy="permissive")) == {"escape.process"}


def test_unknown_policy_is_a_caller_error():
    with pytest.raises(ValueError, match="unknown policy"):
        analyze(Action(source="def run(x):\n    return x\n"), policy="lenient")


def test_dynamic_attribute_on_own_object_is_only_refused_under_strict():
    source = "class C:\n    k = 1\n\ndef run(x):\n    name = 'k' * int(x.numel() > 0)\n    getattr(C, name)\n    return x\n"
    assert "obfuscation.dynamic-attribute" in rules_of(analyze_source(source))
    assert analyze_source(source, policy="permissive").ok


def test_dynamic_attribute_on_a_module_is_refused_under_permissive():
    source = "import torch\n\ndef run(x):\n    n = ''.join(['S', 't'])[::-1]\n    getattr(torch, n)\n    return x\n"
    assert "obfuscation.dynamic-attribute" in rules_of(analyze_source(source, policy="permissive"))


def test_a_synchronised_side_stream_is_still_refused():
    source = (
        "import torch\n\ndef run(x):\n    s = torch.cuda.Stream()\n    with torch.cuda.stream(s):\n"
        "        y = torch.empty_like(x)\n    torch.cuda.current_stream().wait_stream(s)\n    return y\n"
    )
    assert "timing.stream" in rules_of(analyze_source(source, policy="permissive"))


def test_the_current_stream_is_allowed():
    source = "import torch\n\ndef run(x):\n    h = torch.cuda.current_stream().cuda_stream\n    assert h >= 0\n    return x\n"
    assert analyze_source(source).ok


def test_main_guard_is_skipped_when_name_is_not_rebound():
    source = "def run(x):\n    return x\n\nif __name__ == '__main__':\n    print(run(1))\n"
    assert analyze_source(source).ok


def test_strict_refuses_imports_outside_its_list_permissive_allows_them():
    source = "import somekernels\n\ndef run(x):\n    return somekernels.op(x)\n"
    assert "substitution.library" in rules_of(analyze_source(source))
    assert analyze_source(source, policy="permissive").ok


def test_cxx_violation_in_a_solution_file_names_the_file_and_line():
    raw, _, _, inputs, outputs = load_case(CORPUS / "cheat" / "solution_cxx_system.json")
    _, _, verdict, _ = check(raw, inputs=inputs, outputs=outputs)
    hits = [v for v in verdict.violations if v.rule == "escape.process"]
    assert [(v.file, v.line) for v in hits] == [("kernel.cu", 8)]


def test_cxx_violation_in_an_embedded_string_maps_to_the_python_line():
    verdict = analyze_source((CORPUS / "cheat" / "timing_stream_cxx.py").read_text())
    hits = [v for v in verdict.violations if v.rule == "timing.stream"]
    assert [v.line for v in hits] == [18] and "embedded C++" in hits[0].message


def test_cxx_unused_paste_macro_is_still_scanned():
    found = cxx_scanner.scan(
        [("k.cu", "#define MK cuda ## StreamCreate\nint main() { return 0; }\n")], strict=True
    )
    assert [f.rule for _, f in found] == ["timing.stream"]


def test_cxx_exponential_macros_are_unanalysable_not_slow():
    lines = ["#define M0 x"] + [f"#define M{i} M{i - 1} M{i - 1}" for i in range(1, 40)] + ["int y = M39;"]
    start = time.perf_counter()
    found = cxx_scanner.scan([("k.cu", "\n".join(lines))], strict=True)
    assert time.perf_counter() - start < 5.0
    assert "analysis.unanalysable" in {f.rule for _, f in found}


def test_cxx_comments_and_strings_are_not_code():
    source = '// cudaStreamCreate(&s);\n/* system("x"); */\nconst char* s = "fopen(";\n'
    assert cxx_scanner.scan([("k.cu", source)], strict=True) == []


def test_check_returns_invalid_action_without_verdict():
    status, action, verdict, message = check("def main(x):\n    return x\n", inputs=["x"], outputs=["out"])
    assert (status, action, verdict) == (Status.INVALID_ACTION, None, None)
    assert "no top-level function run" in message


def test_check_accepts_and_says_so():
    status, action, verdict, message = check("def run(x):\n    return x\n", inputs=["x"], outputs=["out"])
    assert status is None and verdict.ok and message == "accepted under the strict policy"
    assert verdict.elapsed_ms > 0 and action.style == "return"


def test_analyze_never_raises_on_a_pathological_action_built_directly():
    for source in ("x = " + " and ".join(["a"] * 20_000), "(" * 5_000, "\x00\xff", "def run(:\n"):
        verdict = analyze(Action(source=source))
        assert not verdict.ok
        assert {v.rule for v in verdict.violations} == {"analysis.unanalysable"}


MUTATION_TOKENS = [
    "(",
    ")",
    "[",
    "]",
    ":",
    "\n",
    "    ",
    "\\",
    '"""',
    "'",
    "lambda",
    "@",
    "def ",
    "#define",
    "##",
    "{",
    "}",
    "\x00",
    "\udcff",
    "__global__",
    "import ",
    " and ",
    "getattr(",
    "torch.cuda.",
]


def test_fuzzed_actions_never_crash_the_analyser():
    rng = random.Random(1234)
    seeds = [p.read_text(encoding="utf-8") for p in (CHEATS + LEGIT) if p.suffix == ".py"]
    deadline = time.perf_counter() + 20.0
    runs = 0
    while runs < 300 and time.perf_counter() < deadline:
        if runs % 5 == 0:
            source = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 400))).decode("utf-8", "replace")
        else:
            source = rng.choice(seeds)
            for _ in range(rng.randint(1, 6)):
                at = rng.randrange(len(source) + 1)
                op = rng.randrange(3)
                if op == 0:
                    source = source[:at] + rng.choice(MUTATION_TOKENS) + source[at:]
                elif op == 1:
                    source = source[:at] + source[at + rng.randint(1, 40) :]
                else:
                    end = min(len(source), at + rng.randint(1, 200))
                    source = source[:end] + source[at:end] * rng.randint(1, 5) + source[end:]
        try:
            action = decode(source, inputs=["x"], outputs=["out"])
        except InvalidAction:
            action = Action(source=source)
        verdict = analyze(action, policy=rng.choice(POLICIES))
        assert isinstance(verdict, Verdict)
        cxx_scanner.scan([("f.cu", source)], strict=True)
        runs += 1
    assert runs >= 50


def test_every_solexecbench_reference_passes_permissive_and_fails_strict():
    if not SOLEXECBENCH.is_dir():
        pytest.skip("shared/solexecbench-dev is absent")
    for definition in sorted(SOLEXECBENCH.glob("*/definition.json")):
        data = json.loads(definition.read_text())
        action = decode(data["reference"], inputs=list(data["inputs"]), outputs=list(data["outputs"]))
        permissive = analyze(action, policy="permissive")
        assert permissive.ok, (definition.parent.name, permissive.summary())
        assert "substitution.torch-compute" in rules_of(analyze(action)), definition.parent.name


def test_analysis_modules_do_not_import_torch_or_triton():
    files = [ROOT / "solgym" / "action.py", *sorted((ROOT / "solgym" / "analysis").glob("*.py"))]
    for file in files:
        for node in ast.walk(ast.parse(file.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else ([node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            )
            assert not any(n.split(".")[0] in ("torch", "triton") for n in names), file.name


@pytest.mark.parametrize("path", sorted((CORPUS / "gaps").glob("*.py")), ids=lambda p: p.stem)
def test_known_false_negatives_are_documented_and_still_accepted(path):
    # A gap that starts being caught should move to the cheat corpus (and out of docs/analysis.md).
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# gap: ")
    assert analyze_source(text).ok
    doc = (ROOT / "docs" / "analysis.md").read_text(encoding="utf-8")
    assert "tests/corpus/gaps/" in doc


def test_cli_check_accepts_and_rejects_with_exit_codes(capsys):
    from solgym.cli import main

    assert main(["check", str(CORPUS / "legit" / "triton_add.py")]) == 0
    assert capsys.readouterr().out.strip() == "ACCEPTED (strict)"
    assert main(["check", str(CORPUS / "cheat" / "escape_os_system.py"), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["status"] == "REJECTED" and report["violations"][0]["rule"] == "escape.process"


def test_cli_check_against_a_problem_uses_its_signature(tmp_path, capsys):
    if not SOLEXECBENCH.is_dir():
        pytest.skip("shared/solexecbench-dev is absent")
    from solgym.cli import main

    problem = SOLEXECBENCH / "025_rmsnorm_h4096"
    action = tmp_path / "action.py"
    action.write_text(json.loads((problem / "definition.json").read_text())["reference"])
    assert main(["check", str(action), "--problem", str(problem), "--policy", "permissive"]) == 0
    assert capsys.readouterr().out.strip() == "ACCEPTED (permissive)"
    action.write_text("def run(x):\n    return x\n")
    assert main(["check", str(action), "--problem", str(problem)]) == 1
    assert "INVALID_ACTION: run takes 1 parameters" in capsys.readouterr().out


def test_verdicts_are_cached_by_content_not_by_the_digest_field():
    source = (CORPUS / "cheat" / "escape_os_system.py").read_text()
    first = analyze_source(source)
    again = analyze_source(source)
    assert again.violations == first.violations and again.ok is False
    benign = decode("def run(x):\n    return x\n", inputs=["x"], outputs=["out"])
    assert analyze(benign).ok
    forged = Action(source=source, digest=benign.digest)
    assert not analyze(forged).ok


def test_shipped_example_solutions_pass_both_policies():
    solutions = sorted(p for p in (ROOT / "envs").glob("*/*/solutions/*") if p.suffix in (".py", ".json"))
    if not solutions:
        pytest.skip("no shipped solutions in envs/")
    for path in solutions:
        definition = json.loads((path.parent.parent / "definition.json").read_text())
        for policy in POLICIES:
            status, _, _, message = check(
                path.read_bytes(),
                inputs=list(definition["inputs"]),
                outputs=list(definition["outputs"]),
                policy=policy,
            )
            assert status is None, (path.relative_to(ROOT), policy, message)
