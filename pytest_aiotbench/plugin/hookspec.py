"""Hooks users can implement in a conftest.py or plugin."""

import pytest


@pytest.hookspec(firstresult=False)
def pytest_aiotbench_cases(config, cases):
    """Called once with the list of catalog cases before parametrization; modify it in place to add or drop cases."""


def pytest_aiotbench_case_result(config, result):
    """Called with each case's result dict (the JSON report's case entry) right after it was measured."""


def pytest_aiotbench_report(config, report):
    """Called with the report dict before it is written or shown; add fields in place."""
