"""The front door at pytest start-up: a project's ini file is never silently ignored because an option value was
written as a separate word, and a conftest declaring the plugin's own names is one clear line (exit 4)."""

from __future__ import annotations

import pytest

from pytest_aiotbench.inputs import options

BY_FLAG = {o.flag: o for o in options.CORE_OPTIONS + options.GATE_OPTIONS}
PATH_FLAGS = [o.flag for o in options.CORE_OPTIONS + options.GATE_OPTIONS if o.path or o.metavar in ("DIR", "FILE")]

INI_TEST = """
def test_ini_is_the_projects(pytestconfig):
    assert pytestconfig.inipath is not None and pytestconfig.inipath.name == "pyproject.toml"
    assert pytestconfig.getini("aiotbench_min_top1") == "0.99"
"""


@pytest.fixture
def project(pytester, tmp_path_factory):
    """A user project with its own ini keys, and a folder outside it (a dataset, a catalog's folder...)."""
    pytester.makepyprojecttoml('[tool.pytest.ini_options]\naiotbench_min_top1 = "0.99"\n')
    pytester.makepyfile(test_ini=INI_TEST)
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    (elsewhere / "file.toml").write_text("")
    return elsewhere


def test_every_path_option_is_declared_here():
    """The parametrization below covers every path option (a new one is covered automatically)."""
    assert {"--aiotbench-dataset", "--aiotbench-catalog", "--aiotbench-json", "--aiotbench-html",
            "--aiotbench-compare", "--aiotbench-baseline", "--aiotbench-models", "--aiotbench-ssh-key",
            "--aiotbench-ssh-known-hosts", "--aiotbench-benchmark-model", "--aiotbench-cache"} <= set(PATH_FLAGS)


@pytest.mark.parametrize("flag", PATH_FLAGS)
def test_space_separated_path_value_never_drops_the_ini(pytester, project, flag):
    folder = BY_FLAG[flag].metavar == "DIR"
    value = str(project if folder else project / "file.toml")
    joined = pytester.runpytest("-p", "no:cacheprovider", f"{flag}={value}", "test_ini.py")
    if joined.ret == pytest.ExitCode.USAGE_ERROR:  # the gate checks its paths even without --aiotbench
        assert flag in {"--aiotbench-compare", "--aiotbench-html"} and f"{flag}:" in joined.stderr.str()
    else:
        joined.assert_outcomes(passed=1)  # the ini is honoured (most values are checked only with --aiotbench)
    spaced = pytester.runpytest("-p", "no:cacheprovider", flag, value)
    assert spaced.ret == pytest.ExitCode.USAGE_ERROR, spaced.stdout.str() + spaced.stderr.str()
    errors = [line for line in spaced.stderr.lines if line.startswith("ERROR")]
    assert len(errors) == 1 and f"write {flag}={value}" in errors[0] and "pyproject.toml" in errors[0]
    assert "Traceback" not in spaced.stderr.str() + spaced.stdout.str()


def test_another_plugins_path_option_is_caught_too(pytester, project):
    """pytest-benchmark's --benchmark-json is read the same wrong way: the same rule applies."""
    spaced = pytester.runpytest("-p", "no:cacheprovider", "--benchmark-json", str(project / "file.toml"))
    assert spaced.ret == pytest.ExitCode.USAGE_ERROR
    assert f"write --benchmark-json={project / 'file.toml'}" in spaced.stderr.str()


def test_space_separated_value_with_test_paths_keeps_the_ini(pytester, project):
    """With an explicit test path in the project pytest finds the project's ini anyway: nothing to refuse."""
    spaced = pytester.runpytest("-p", "no:cacheprovider", "test_ini.py", "--aiotbench-dataset", str(project))
    spaced.assert_outcomes(passed=1)


def test_space_separated_value_inside_the_project_is_fine(pytester, project):
    (pytester.path / "data").mkdir()
    pytester.runpytest("-p", "no:cacheprovider", "--aiotbench-dataset", "data").assert_outcomes(passed=1)


def test_without_an_ini_file_the_rootdir_stays_the_project(pytester, tmp_path_factory):
    """No ini settings to lose: the rootdir is corrected instead (pytest would have used the dataset folder and
    written its .pytest_cache into it)."""
    data = tmp_path_factory.mktemp("data")
    pytester.makepyfile(test_root=f"""
        def test_root(pytestconfig):
            assert str(pytestconfig.rootpath) == {str(pytester.path)!r}
    """)
    result = pytester.runpytest("--aiotbench-dataset", str(data))
    result.assert_outcomes(passed=1)
    assert not (data / ".pytest_cache").exists()


CONFLICTS = {
    "option, other group": 'parser.addoption("--aiotbench-threads", default="64")',
    "option, same group": 'parser.getgroup("aiotbench").addoption("--aiotbench-json")',
    "ini key": 'parser.addini("aiotbench_threads", "mine", default="64")',
    "option dest": 'parser.addoption("--threads", dest="aiotbench_threads", default="64")',
    "main switch": 'parser.addoption("--aiotbench", action="store_true")',
}


@pytest.mark.parametrize("declaration", CONFLICTS.values(), ids=CONFLICTS.keys())
def test_conftest_declaring_the_plugins_names_is_one_line(pytester, declaration):
    pytester.makeconftest(f"def pytest_addoption(parser):\n    {declaration}\n")
    pytester.makepyfile("def test_a(): pass")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    out = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR, out
    assert "Traceback" not in out
    assert "declared twice" in out or "destination of pytest-aiotbench" in out
    assert len([line for line in result.stderr.lines if line.strip()]) == 1, out


def test_conftest_with_its_own_names_is_fine(pytester):
    pytester.makeconftest('def pytest_addoption(parser):\n    parser.addoption("--threads", default="64")\n'
                          '    parser.addini("my_threads", "mine", default="64")\n')
    pytester.makepyfile("def test_a(): pass")
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_relative_space_separated_value_is_caught(pytester, project):
    """The issue's own probe: ``--aiotbench-dataset ../data`` (relative to the invocation folder)."""
    relative = f"../{project.name}"
    assert (pytester.path / relative).resolve() == project.resolve()
    spaced = pytester.runpytest("-p", "no:cacheprovider", "--aiotbench-dataset", relative)
    assert spaced.ret == pytest.ExitCode.USAGE_ERROR
    assert f"write --aiotbench-dataset={relative}" in spaced.stderr.str()
    pytester.runpytest("-p", "no:cacheprovider", f"--aiotbench-dataset={relative}").assert_outcomes(passed=1)
