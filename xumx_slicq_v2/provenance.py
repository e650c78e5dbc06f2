"""What produced a set of outputs: a small JSON record of the settings that determine them, kept beside them.

A resumable run writes the record with its outputs and, when it finds outputs already there, compares their
record with its own settings before it keeps them: outputs of other settings (another model, weights, rate,
seed...) are redone or refused, never silently mixed with new ones. Settings are JSON values (nested mappings,
lists, strings, numbers, booleans, null); tuples compare equal to lists.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .audio import write_text_atomic


class ProvenanceError(RuntimeError):
    """Outputs were made with other settings, or their record is unreadable (the message names the file, the
    settings that differ and what to do)."""


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 hex digest of a file (cached per path, size and modification time)."""
    stat = os.stat(path)
    return _sha256(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=32)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while block := file.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def differences(recorded: Any, current: Any, key: str = "") -> list[str]:
    """``"key: recorded X, now Y"`` for every setting that differs (nested keys joined with dots)."""
    if isinstance(recorded, Mapping) and isinstance(current, Mapping):
        found = []
        for name in sorted({*recorded, *current}, key=str):
            inner = f"{key}.{name}" if key else str(name)
            if name not in recorded:
                found.append(f"{inner}: not recorded, now {json.dumps(current[name])}")
            elif name not in current:
                found.append(f"{inner}: recorded {json.dumps(recorded[name])}, not set now")
            else:
                found += differences(recorded[name], current[name], inner)
        return found
    if recorded != current:
        return [f"{key or 'settings'}: recorded {json.dumps(recorded)}, now {json.dumps(current)}"]
    return []


def read_record(path: str | os.PathLike) -> dict | None:
    """The settings recorded in ``path``, or ``None`` if there is no record."""
    path = Path(path)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        raise ProvenanceError(f"{path}: unreadable record of settings ({err}); delete it and its outputs") from err
    if not isinstance(record, dict):
        raise ProvenanceError(f"{path}: expected a JSON object of settings; delete it and its outputs")
    return record


def recorded_differences(path: str | os.PathLike, settings: Mapping[str, Any]) -> list[str] | None:
    """How the settings recorded in ``path`` differ from ``settings``: ``None`` without a record, ``[]`` if
    they are the same."""
    recorded = read_record(path)
    if recorded is None:
        return None
    return differences(recorded, json.loads(json.dumps(settings)))


def require_same_settings(path: str | os.PathLike, settings: Mapping[str, Any], remedy: str) -> bool:
    """Whether ``path`` records ``settings`` (``False`` without a record).

    Raises:
        ProvenanceError: naming ``path`` and every setting that differs, followed by ``remedy`` (how to go on:
            another output folder, or which files to delete to redo the work).
    """
    found = recorded_differences(path, settings)
    if found:
        raise ProvenanceError(f"{path}: its outputs were made with other settings ({'; '.join(found)}). {remedy}")
    return found is not None


def record_text(settings: Mapping[str, Any]) -> str:
    """The content of a record of ``settings`` (JSON, keys sorted)."""
    return json.dumps(settings, indent=2, sort_keys=True) + "\n"


def write_record(path: str | os.PathLike, settings: Mapping[str, Any]) -> None:
    """Record ``settings`` in ``path`` (atomically)."""
    write_text_atomic(path, record_text(settings))
