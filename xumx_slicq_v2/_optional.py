"""Optional dependencies: import them where they are needed, and tell the user which extra installs them.

    onnx = require("onnx", extra="onnx", purpose="ONNX export")

raises `MissingDependency` (an ``ImportError``) whose message is one line naming the package extra to install,
e.g. ``ONNX export needs onnx, which is not installed: pip install 'xumx-slicq-v2[onnx]'``. Command-line entry
points wrap their work in `exit_if_missing` (a context manager, or a decorator), which prints that line as
``error: ...`` on stderr and exits with status 2, without a traceback.
"""

from __future__ import annotations

import contextlib
import importlib
import shutil
import sys
from collections.abc import Iterator, Sequence
from types import ModuleType

#: The distribution name that ``pip install`` takes.
DISTRIBUTION = "xumx-slicq-v2"

#: Exit status of a command that lacks an optional dependency (as for other usage errors).
EXIT_STATUS = 2


def install_command(extra: str) -> str:
    """``pip install 'xumx-slicq-v2[<extra>]'``."""
    return f"pip install '{DISTRIBUTION}[{extra}]'"


class MissingDependency(ImportError):
    """An optional dependency cannot be imported; ``str()`` is one line that names the extra to install.

    Attributes:
        module: the module that failed to import (``name`` of ``ImportError`` too).
        extra: the package extra that installs it.
        purpose: what needs it (e.g. ``"the onnx-cpu runtime backend"``).
        reason: why the import failed (the original error, one line).
        remedy: what to do, at the end of the message (default: the ``pip install`` of ``extra``).
    """

    def __init__(
        self, module: str, extra: str, purpose: str | None = None, reason: str = "", remedy: str | None = None
    ) -> None:
        self.module, self.extra, self.purpose, self.reason = module, extra, purpose, reason
        self.remedy = remedy or install_command(extra)
        needs = f"{purpose} needs {module}" if purpose else f"{module} is needed"
        detail = f", which cannot be imported ({reason})" if reason else ", which is not installed"
        super().__init__(f"{needs}{detail}: {self.remedy}", name=module)


def require(
    module: str,
    extra: str,
    purpose: str | None = None,
    executables: Sequence[str] = (),
    executables_remedy: str | None = None,
    remedy: str | None = None,
) -> ModuleType:
    """Import ``module`` (dotted name) or raise `MissingDependency` naming ``extra``.

    A module that is not installed gives "... which is not installed: pip install ..."; one that is installed
    but fails while importing (e.g. ``musdb`` without an ``ffmpeg`` executable raises ``RuntimeError``) gives
    the error it raised in the same line. ``executables``: programs the module needs on ``PATH`` when it is
    imported; if its import fails while any of them is missing, the message names those instead, with
    ``executables_remedy`` (how to install them) as the remedy. ``remedy``: how to install ``module`` where the
    ``pip install`` of ``extra`` does not (default: that command).
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as err:
        missing = err.name or module
        if module == missing or module.startswith(f"{missing}."):
            raise MissingDependency(module, extra, purpose, remedy=remedy) from err
        raise MissingDependency(module, extra, purpose, f"{missing} is not installed", remedy) from err
    except Exception as err:  # any failure at import time makes the feature unavailable
        absent = [name for name in executables if shutil.which(name) is None]
        if absent:
            programs = " and ".join(absent)
            reason = f"it needs the {programs} executable{'s' if len(absent) > 1 else ''}, not found on PATH"
            raise MissingDependency(
                module, extra, purpose, reason, executables_remedy or f"install {programs}"
            ) from err
        reason = " ".join(f"{type(err).__name__}: {err}".split())
        raise MissingDependency(module, extra, purpose, reason, remedy) from err


@contextlib.contextmanager
def exit_if_missing() -> Iterator[None]:
    """Turn a `MissingDependency` raised inside into ``error: <message>`` on stderr and exit status 2."""
    try:
        yield
    except MissingDependency as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(EXIT_STATUS) from None
