"""The package's floor plan: the tree reads as the pipeline, and imports only go down it.

catalog/dataset (inputs) -> framework -> job and timing (run) -> target -> verdicts -> report -> pipeline -> the
pytest adapter (plugin) -> the command line. A module may import from its own stage and the stages before it, never
from a later one (the zoo is a toolchain beside the pipeline: only the command line reaches it)."""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "pytest_aiotbench"
STAGES = [
    {"__init__", "errors", "files"},  # shared by every stage: the version, one-line errors, atomic files
    {"frameworks"},
    {"inputs"},
    {"run"},
    {"targets"},
    {"verdicts"},
    {"report"},
    {"pipeline"},
    {"plugin"},
    {"cli", "__main__"},
]
ZOO_USERS = {"cli", "zoo"}  # the export toolchain: reached from the command line only
TOP_LEVEL = {"__init__.py", "__main__.py", "cli.py", "errors.py", "files.py", "pipeline.py"}


def _stage_of(top: str) -> int | None:
    return next((i for i, names in enumerate(STAGES) if top in names), None)


def _modules():
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        rel = path.relative_to(PACKAGE_DIR).with_suffix("")
        yield path, list(rel.parts)


def _imported(path: Path, parts: list[str]):
    """(line, first component under the package) of every package import in the file, at any depth."""
    package = parts[:-1] if parts[-1] != "__init__" else parts[:-1]
    if parts[-1] == "__init__":
        package = parts[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                if node.level - 1 > len(package):
                    continue
                full = base + (node.module.split(".") if node.module else [])
                if not full:  # ``from .. import x``: x is the top-level name
                    for alias in node.names:
                        yield node.lineno, alias.name
                    continue
                yield node.lineno, full[0]
            elif node.module and node.module.split(".")[0] == "pytest_aiotbench":
                rest = node.module.split(".")[1:]
                for name in ([rest[0]] if rest else [a.name for a in node.names]):
                    yield node.lineno, name
        elif isinstance(node, ast.Import):
            for alias in node.names:
                names = alias.name.split(".")
                if names[0] == "pytest_aiotbench" and len(names) > 1:
                    yield node.lineno, names[1]


def test_the_top_level_holds_the_stages_and_a_handful_of_modules():
    modules = {p.name for p in PACKAGE_DIR.glob("*.py")}
    assert modules == TOP_LEVEL
    packages = {p.name for p in PACKAGE_DIR.iterdir() if (p / "__init__.py").is_file()}
    assert packages == {"frameworks", "inputs", "run", "targets", "verdicts", "report", "plugin", "zoo"}


def test_the_tests_follow_the_tree():
    """One test folder per stage package (tests/inputs/, tests/report/, ...), every test module in one of them."""
    tests = PACKAGE_DIR.parent / "tests"
    stages = {p.name for p in PACKAGE_DIR.iterdir() if (p / "__init__.py").is_file()}
    assert {p.name for p in tests.iterdir() if (p / "__init__.py").is_file()} - {"helpers"} == stages
    assert sorted(p.name for p in tests.glob("test_*.py")) == ["test_contracts.py", "test_floor_plan.py"]


def test_imports_only_go_down_the_pipeline():
    wrong = []
    for path, parts in _modules():
        top = parts[0]
        if top == "zoo":
            continue  # checked below
        mine = _stage_of(top)
        assert mine is not None, f"{path}: not in any stage of the floor plan"
        for line, name in _imported(path, parts):
            if name == "zoo":
                if top not in ZOO_USERS:
                    wrong.append(f"{path.relative_to(PACKAGE_DIR)}:{line} imports the zoo")
                continue
            theirs = _stage_of(name)
            if theirs is not None and theirs > mine:
                wrong.append(f"{path.relative_to(PACKAGE_DIR)}:{line} ({top}) imports {name}, a later stage")
    assert not wrong, "\n".join(wrong)


def test_the_zoo_never_reaches_into_the_pytest_adapter():
    wrong = [f"{path.relative_to(PACKAGE_DIR)}:{line} imports {name}"
             for path, parts in _modules() if parts[0] == "zoo"
             for line, name in _imported(path, parts) if name in {"plugin", "pipeline", "cli"}]
    assert not wrong, "\n".join(wrong)


def test_the_readme_layout_is_the_tree():
    """The README's "Code layout" names every stage package and every module in it, and nothing that is not there."""
    readme = (PACKAGE_DIR.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Code layout", 1)[1].split("```text", 1)[1].split("```", 1)[0]
    named = set(re.findall(r"(?<![\w./])((?:\w+/)*\w+\.py|(?:\w+/)+)(?![\w/])", section))
    tree = {f"{p.relative_to(PACKAGE_DIR).as_posix()}" for p in PACKAGE_DIR.rglob("*.py")
            if p.name != "__init__.py" and "zoo" not in p.parts}
    folders = {f"{p.relative_to(PACKAGE_DIR).as_posix()}/" for p in PACKAGE_DIR.rglob("__init__.py")
               for p in [p.parent] if p != PACKAGE_DIR}
    missing = sorted((tree | folders) - named)
    unknown = sorted(n for n in named - tree if n.endswith(".py") and n != "__init__.py")
    assert not missing, f"README Code layout does not name: {missing}"
    tracked = subprocess.run(["git", "ls-files"], cwd=PACKAGE_DIR.parent, capture_output=True, text=True).stdout.split()
    tops = {path.split("/")[0] + "/" for path in tracked if "/" in path and not path.startswith(".")}
    unnamed = sorted(tops - named - {"pytest_aiotbench/"})
    assert not unnamed, f"README Code layout does not name the top-level folders {unnamed}"
    assert not unknown, f"README Code layout names what is not in the tree: {unknown}"
