"""AIoTBench cases of this checkout: `pytest --aiotbench` collects this folder. The case itself ships with the
plugin (so an installed plugin runs the same cases from any directory); add your own case modules here."""

from pytest_aiotbench.cases import test_aiotbench  # noqa: F401
