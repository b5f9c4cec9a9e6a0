"""Where a case runs: the ``Target`` protocol (describe, run a job, close), its one error type, and the registry of
targets holding a connection, so the session can close them all."""

from __future__ import annotations

from typing import Any, Protocol

from ..run.job import Job, Measurement, Timing


class TargetError(Exception):
    """The target could not run the job (device gone, transport frozen, runner crashed...). One clear line."""


class Target(Protocol):
    """Built from a ``--device`` spec without touching the device; connects on first use (``describe``/``run``)
    and lets go of the device in ``close`` (which never raises; a later use connects again)."""

    name: str

    def describe(self) -> dict[str, Any]:
        """Facts for the report: model, ABI, OS, CPU, cores, governor... whatever is readable."""

    def run(self, job: Job, timing: "Timing") -> Measurement: ...

    def close(self) -> None: ...


# Targets holding a connection in this process (controller or xdist worker), so the session can close them all.
_open_targets: dict[int, Target] = {}


def register_open(target: Target) -> None:
    _open_targets[id(target)] = target


def unregister_open(target: Target) -> None:
    _open_targets.pop(id(target), None)


def close_all() -> None:
    """Close every connected target of this process (session end). One device failing to close stops no other."""
    for target in list(_open_targets.values()):
        try:
            target.close()
        except Exception:  # a link already gone: nothing left to release
            pass
        unregister_open(target)
