"""Suites: shipped, added by path, added through $SOLGYM_SUITES; names unique across suites."""

from __future__ import annotations

import pytest
from conftest import add_definition, add_workload, write_problem

import solgym
from solgym import suite


@pytest.fixture(autouse=True)
def clean_registry(monkeypatch):
    monkeypatch.setattr(suite, "_registered", {})
    monkeypatch.delenv(suite.SUITES_ENV, raising=False)


def test_shipped_data_directories_are_found():
    assert (solgym.data_dir("envs") / "core" / "rmsnorm_llama3_8b" / "definition.json").is_file()
    assert solgym.data_dir("rewards").is_dir()
    assert "core" in suite.shipped_suites()


def test_problems_are_found_by_name_and_by_path():
    entry = suite.problems()["rmsnorm_llama3_8b"]
    assert entry.suite == "core"
    assert suite.find_problem("rmsnorm_llama3_8b").name == "rmsnorm_llama3_8b"
    assert suite.find_problem(str(entry.path)).name == "rmsnorm_llama3_8b"


def test_unknown_problem_suggests_close_names():
    with pytest.raises(KeyError, match=r"did you mean .*rmsnorm_llama3_8b"):
        suite.find_problem("rmsnorm_llama3")


def test_register_suite_by_path(tmp_path):
    write_problem(tmp_path / "mine" / "p1", add_definition(name="my_add"), [add_workload()])
    assert suite.register_suite(tmp_path / "mine") == "mine"
    assert suite.problems("mine")["my_add"].path == (tmp_path / "mine" / "p1").resolve()
    assert "rmsnorm_llama3_8b" in suite.problems()


def test_suites_from_environment_variable(tmp_path, monkeypatch):
    write_problem(tmp_path / "a" / "p", add_definition(name="from_a"), [add_workload()])
    write_problem(tmp_path / "b" / "p", add_definition(name="from_b"), [add_workload()])
    monkeypatch.setenv(suite.SUITES_ENV, f"{tmp_path / 'a'}:{tmp_path / 'b'}")
    assert {"from_a", "from_b"} <= set(suite.problems())


def test_name_collision_is_an_error_naming_both(tmp_path):
    write_problem(tmp_path / "dup" / "copy", add_definition(name="rmsnorm_llama3_8b"), [add_workload()])
    with pytest.raises(ValueError, match=r"defined twice: .*rmsnorm_llama3_8b \(core\) and .*copy \(dup\)"):
        suite.register_suite(tmp_path / "dup")


def test_missing_suite_folder_is_explained(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError):
        suite.register_suite(tmp_path / "absent")
    monkeypatch.setenv(suite.SUITES_ENV, str(tmp_path / "absent"))
    with pytest.raises(FileNotFoundError, match="SOLGYM_SUITES"):
        suite.problems()
