"""The runner bundle: a zipapp of the device package and every package module it needs, found by reading imports.

Roots are the ``device`` package (protocol + runner) and the ``frameworks`` package (the runner imports the job's
framework by name, so no import statement names it). Every ``pytest_aiotbench`` import of a root module (module
level or inside a function, absolute or relative) is followed, and the module-level ones of every module reached,
with the parent packages' ``__init__``: the lazy imports of host-side code (``targets.resolve_target``'s adb/ssh
modules, ``HostTarget.describe``'s machine facts) stay home. An import
that names no module of the package, or a bundled module importing a host-only package at module level, is a
``BundleError`` when the bundle is built, so a wrong import fails a test rather than a device.
"""

from __future__ import annotations

import ast
import atexit
import shutil
import tempfile
import zipfile
from functools import lru_cache
from pathlib import Path

PACKAGE = "pytest_aiotbench"
PACKAGE_DIR = Path(__file__).resolve().parents[1]
ROOT_PACKAGES = ("targets.device", "frameworks")  # shipped whole; everything else only when imported
# Never on a device: importing one of these at module level would break the runner there.
HOST_ONLY = frozenset({"pytest", "_pytest", "pytest_benchmark", "xdist", "paramiko", "adbutils", "PIL", "matplotlib",
                       "jsonschema", "torchvision"})


class BundleError(Exception):
    """The device-side code imports something the bundle cannot carry. One line."""


def _file_of(module: str) -> Path | None:
    parts = module.split(".")[1:]
    base = PACKAGE_DIR.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _module_of(path: Path) -> str:
    rel = path.relative_to(PACKAGE_DIR).with_suffix("")
    parts = [PACKAGE, *rel.parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, everywhere: bool) -> tuple[set[str], set[str]]:
    """(package modules imported at module level, or anywhere in the file when ``everywhere``; top-level names
    imported at module level)."""
    module = _module_of(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    ours: set[str] = set()
    for node in ast.walk(tree) if everywhere else _module_level(tree):
        if isinstance(node, ast.Import):
            ours.update(a.name for a in node.names if a.name.split(".")[0] == PACKAGE)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            if name.split(".")[0] != PACKAGE:
                continue
            ours.add(name)
            # ``from .pkg import mod`` names a module too (when it is one)
            ours.update(f"{name}.{a.name}" for a in node.names if _file_of(f"{name}.{a.name}"))
    top_level = set()
    for node in _module_level(tree):
        if isinstance(node, ast.Import):
            top_level.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            top_level.add(node.module.split(".")[0])
    return ours, top_level


def _module_level(tree: ast.Module):
    """Statements run on import: the module body, including inside module-level if/try blocks."""
    for node in tree.body:
        yield from ast.walk(node) if isinstance(node, (ast.If, ast.Try)) else (node,)


def bundle_files() -> dict[str, Path]:
    """Archive name -> source file of every module the runner may import."""
    todo = [_module_of(f) for root in ROOT_PACKAGES for f in sorted(PACKAGE_DIR.joinpath(*root.split(".")).glob("*.py"))]
    found: dict[str, Path] = {}
    while todo:
        module = todo.pop()
        if module in found:
            continue
        path = _file_of(module)
        if path is None:
            raise BundleError(f"device-side code imports {module}, which is not a module of {PACKAGE}")
        found[module] = path
        in_root = any(module.startswith(f"{PACKAGE}.{root}.") or module == f"{PACKAGE}.{root}" for root in ROOT_PACKAGES)
        ours, top_level = _imports(path, everywhere=in_root)
        host_only = sorted(top_level & HOST_ONLY)
        if host_only:
            raise BundleError(f"{path.relative_to(PACKAGE_DIR.parent)} ships to devices but imports "
                              f"{', '.join(host_only)} at module level")
        parents = [".".join(module.split(".")[:i]) for i in range(1, module.count(".") + 1)]
        todo += [m for m in (*ours, *parents) if m not in found]
    return {f"{PACKAGE}/{p.relative_to(PACKAGE_DIR).as_posix()}": p for p in sorted(found.values())}


def bundle_main() -> str:
    """The zipapp's entry: a missing numpy (imported by the protocol) is the runner's 'runtime missing' exit too."""
    from .device.protocol import ExitCode  # noqa: F401 (host side: numpy is there)

    return ("import sys\n"
            "try:\n"
            f"    from {PACKAGE}.targets.device.runner import main\n"
            "except ImportError as exc:\n"
            "    print(f'aiotbench-runner: {exc} (the device needs numpy and the framework runtime)',\n"
            "          file=sys.stderr)\n"
            f"    sys.exit({int(ExitCode.RUNTIME)})\n"
            "sys.exit(main())\n")


@lru_cache(maxsize=1)
def build_runner_bundle() -> Path:
    """A zipapp of the runner and the modules it needs (stored, not compressed: it is small). Built once."""
    files = bundle_files()
    folder = tempfile.mkdtemp(prefix="aiotbench-bundle-")
    atexit.register(shutil.rmtree, folder, True)
    out = Path(folder) / "runner.pyz"
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("__main__.py", bundle_main())
        for name, path in files.items():
            zf.write(path, name)
    return out
