"""One declaration per option (``inputs/options.py``) feeds both the pytest option and its ``aiotbench`` twin:
the same help, metavar, kind and value parser, and the same refusal of a bad value."""

from __future__ import annotations

import argparse

import pytest

from pytest_aiotbench import cli
from tests.helpers.reports import run_cli
from pytest_aiotbench.inputs import options as declared
from pytest_aiotbench.plugin import options as plugin_options


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = cli.build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


def _cli_twins():
    """(subcommand, argparse action, declaration) for every subcommand flag that has a pytest twin."""
    for command, parser in _subcommands().items():
        for action in parser._actions:
            for flag in action.option_strings:
                if flag in declared.BY_CLI:
                    yield command, action, declared.BY_CLI[flag]


def _pytest_options() -> dict[str, object]:
    parser = pytest.Parser(_ispytest=True)
    plugin_options.register(parser, declared.CORE_OPTIONS + declared.GATE_OPTIONS)
    group = parser.getgroup(*plugin_options.GROUP)
    return {option.names()[0]: option for option in group.options}


def test_every_twin_is_used_and_named_after_its_pytest_flag():
    twins = list(_cli_twins())
    assert {opt.cli for _, _, opt in twins} == set(declared.BY_CLI)  # no declared twin left unbuilt
    assert {(command, opt.cli) for command, _, opt in twins} >= {
        ("compare", "--fail-on"), ("compare", "--allow-not-judged"), ("compare", "--fail-invalid"),
        ("compare", "--require-all"), ("report", "--fail-on")}
    for opt in declared.BY_CLI.values():
        assert opt.cli == "--" + opt.flag.removeprefix("--aiotbench-")


def test_cli_flags_and_pytest_options_share_help_metavar_kind_and_parser():
    pytest_side = _pytest_options()
    for command, action, opt in _cli_twins():
        ours = pytest_side[opt.flag].attrs()
        assert ours["help"] == opt.help.replace("%", "%%")
        assert action.help.startswith(ours["help"]), (command, opt.cli)  # a subcommand may add a note after it
        assert action.metavar == ours.get("metavar") == opt.metavar
        if opt.kind == "flag":
            assert isinstance(action, argparse._StoreTrueAction) and ours["nargs"] == 0 and ours["const"] is True
        else:
            assert action.option is opt  # parsed by the declaration's own parser, as plugin_options.value does
            assert ours["nargs"] is None and action.nargs is None  # one value per flag, repeatable if a list
            assert action.default == ([] if opt.kind == "list" else opt.default)


@pytest.mark.parametrize("spec, message", [
    ("p90:-5%", "bad limit 'p90:-5%': a regression of p90 is a rise, write p90:+5%"),
    (",", "empty limit ',': expected METRIC:[+-]NUMBER(pt|%), e.g. top1:-0.5pt, p90:+10%"),
    ("top1:-1%", "bad limit 'top1:-1%': top1 is limited in 'pt', e.g. top1:-0.5pt"),
])
@pytest.mark.parametrize("command", ["compare", "report"])
def test_a_bad_limit_is_refused_by_the_one_parser_on_both_sides(capsys, command, spec, message):
    opt = declared.BY_CLI["--fail-on"]
    with pytest.raises(declared.ValueNamed) as refused:
        opt.parse(spec)  # what --aiotbench-fail-on refuses (as "--aiotbench-fail-on: <message>", exit 4)
    assert str(refused.value) == message
    assert cli.main([command, "a.json", "b.json", "--fail-on", spec]) == 2
    assert capsys.readouterr().err == f"aiotbench {command}: error: {message}\n"


def test_good_limits_reach_the_subcommand_as_given():
    args = cli.build_parser().parse_args(["compare", "a.json", "b.json", "--fail-on", "top1:-0.5pt,p90:+10%",
                                          "--fail-on=vips:-5%", "--allow-not-judged"])
    assert args.fail_on == ["top1:-0.5pt,p90:+10%", "vips:-5%"] and args.allow_not_judged and not args.require_all


def test_a_new_twin_is_one_declaration(monkeypatch):
    """A value option declared with ``cli`` becomes a subcommand flag with its range check and message."""
    opt = declared.Option("--aiotbench-top", "aiotbench_top", "rows shown, 1..5", parse=declared.integer(1, 5),
                          metavar="N", cli="--top", default=3)
    monkeypatch.setitem(declared.BY_CLI, "--top", opt)
    parser = argparse.ArgumentParser()
    declared.add_cli_flag(parser, "rank", "--top")
    assert parser.parse_args([]).top == 3 and parser.parse_args(["--top", "4"]).top == 4
    with pytest.raises(declared.CliValueError) as refused:
        parser.parse_args(["--top", "9"])
    assert str(refused.value) == "aiotbench rank: error: --top 9: expected an integer in [1, 5]"
    with pytest.raises(declared.CliValueError, match=r"--top '': expected an integer"):
        parser.parse_args(["--top="])


def test_version_is_the_installed_distributions():
    from importlib.metadata import version

    import pytest_aiotbench

    done = run_cli("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"aiotbench (pytest-aiotbench) {pytest_aiotbench.__version__}"
    assert pytest_aiotbench.__version__ == version("pytest-aiotbench")
