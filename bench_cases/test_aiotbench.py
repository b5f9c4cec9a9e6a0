"""AIoTBench cases of this checkout: `pytest --aiotbench bench_cases` runs them alone (plain `pytest --aiotbench`
runs them beside tests/, as in any project). The case itself ships with the plugin, so an installed plugin runs
the same cases from any directory; a module here that uses the `aiotbench` fixture replaces the packaged one."""

from pytest_aiotbench.plugin.cases import test_aiotbench  # noqa: F401
