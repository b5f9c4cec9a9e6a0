"""One-line messages: every error the harness shows (a runtime's exception, a transport's, a device shell's output)
goes through ``one_line``, so a failed case reads as one line, never a traceback. Standard library only: it ships in
the runner bundle."""

from __future__ import annotations

import re

_NAMED_ERROR = re.compile(r"^\w*(Error|Exception)\b")
MAX_CHARS = 300


def one_line(what: BaseException | str | None, *, last: bool = False, with_type: bool = False,
             limit: int | None = MAX_CHARS) -> str:
    """``what`` (an exception or command output) as one line.

    Exceptions: runtimes wrap the real cause in multi-line reports (TorchScript prints its own traceback first), so
    the last line that names an error wins, else the first line; ``with_type`` prefixes the exception's type.
    Output (``last=True``): the last non-blank line, where a failing command says why."""
    lines = [line.strip() for line in str(what if what is not None else "").strip().splitlines() if line.strip()]
    if not lines:
        text = type(what).__name__ if isinstance(what, BaseException) else "no output"
    elif last:
        text = lines[-1]
    else:
        named = [line for line in lines if _NAMED_ERROR.match(line)]
        text = named[-1] if named else lines[0]
    if with_type and isinstance(what, BaseException) and lines:
        text = f"{type(what).__name__}: {text}"
    return text[:limit] if limit else text
