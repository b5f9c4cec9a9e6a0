"""Which process of a run this is: under pytest-xdist, workers run cases and the controller owns the run (it checks
the files, writes and gates the reports, prints the summary). The one place that tells them apart."""

from __future__ import annotations


def is_worker(config) -> bool:
    """True in an xdist worker (xdist gives a worker's config ``workerinput``); False in the controller or a run
    without xdist."""
    return hasattr(config, "workerinput")
