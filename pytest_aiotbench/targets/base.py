"""Where a case runs: the ``Target`` protocol (describe, run a job, close), what a registered target class offers
the registry (``TargetType``: its scheme, the ``--device`` forms it accepts, the options it takes), its one error
type, and the targets holding a connection, so the session can close them all."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

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


@dataclass(frozen=True)
class DeviceSpec:
    kind: str  # the scheme of the target that accepted the value: "host", "adb", "ssh", or a registered one
    address: str  # "" for host, the adb serial, the ssh host, or whatever the target reads after its scheme
    user: str | None = None
    port: int | None = None
    text: str = field(default="", compare=False)  # the --device value as written


class TargetType(Protocol):
    """A target class as the registry (``targets/__init__.py``, entry-point group ``aiotbench.targets``) sees it.
    Loading one must import only its own thin module: the transport's library (adbutils, paramiko) is imported
    when the target connects."""

    scheme: ClassVar[str]  # "adb": values written "adb:..." (or "adb://...") go to this class first
    forms: ClassVar[str]  # how its --device values are written, for the accepted-forms line: "adb:SERIAL"
    options: ClassVar[frozenset[str]]  # the resolve_target keywords it takes; the others are not its own

    @classmethod
    def accepts(cls, text: str) -> DeviceSpec | None:
        """The parsed value when it is one of this target's forms, None when it is not; a value of its form that is
        wrong (a bad port) is a TargetError saying why, in one line. Never touches the device."""

    @classmethod
    def from_spec(cls, device: DeviceSpec, **options: Any) -> Target:
        """The target, built without connecting; ``options`` holds only names in ``options``."""


class SchemeTarget:
    """Defaults for a target written ``SCHEME:ADDRESS`` (one word after the colon) built as ``cls(address,
    **options)``: a new transport subclasses this, sets ``scheme`` (and ``options``), and implements the
    ``Target`` protocol."""

    scheme: ClassVar[str] = ""
    options: ClassVar[frozenset[str]] = frozenset()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "forms" not in cls.__dict__ and cls.scheme:
            cls.forms = f"{cls.scheme}:ADDRESS"

    @classmethod
    def accepts(cls, text: str) -> DeviceSpec | None:
        prefix = f"{cls.scheme}:"
        address = text[len(prefix):] if text.startswith(prefix) else ""
        if not address or any(c.isspace() for c in address):
            return None
        return DeviceSpec(cls.scheme, address, text=text)

    @classmethod
    def from_spec(cls, device: DeviceSpec, **options: Any):
        return cls(device.address, **options)


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
