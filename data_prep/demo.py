"""The demo dataset: a small CAD1 Task 1-shaped tree that the main job uses when no data is given.

``ensure_demo_dataset()`` generates it on first use (3 validation and 2 test songs of 10 s, 3 listeners
per split) and returns its ``cad1/task1`` folder. Generation goes into a hidden sibling folder that is
renamed into place when complete, with ``demo.json`` written last inside it, so an interrupted run never
leaves something that looks like a finished dataset.

    python -m data_prep.demo            # generate (if needed); prints the cad1/task1 folder on stdout
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from data_prep.config import DEMO_PRESET, GENERATOR_VERSION, DatasetPreset
from xumx_slicq_v2._optional import exit_if_missing
from xumx_slicq_v2.locking import exclusive_lock

#: Environment variable that moves the demo dataset.
DEMO_ROOT_VARIABLE = "XUMX_DEMO_DATA"

#: Default location under the working directory (``data/`` is git-ignored in a checkout).
WORKING_DIR_ROOT = Path("data") / "demo"

#: Written last into a complete demo tree.
MARKER = "demo.json"


def default_demo_root() -> Path:
    """``$XUMX_DEMO_DATA`` if set, else ``data/demo`` under the working directory (absolute)."""
    configured = os.environ.get(DEMO_ROOT_VARIABLE)
    return Path(configured).absolute() if configured else Path.cwd() / WORKING_DIR_ROOT


#: The demo dataset folder at import time (see :func:`default_demo_root`).
DEFAULT_DEMO_ROOT: Path = default_demo_root()


def _default_folder_mode() -> int:
    """Permissions ``mkdir`` would give a new folder under the current umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o777 & ~umask


def _task_root(root: Path) -> Path:
    return root / "cad1" / "task1"


def _marker_content(preset: DatasetPreset) -> dict:
    return {"generator": "data_prep.demo", "version": GENERATOR_VERSION, "preset": dataclasses.asdict(preset)}


def _read_marker(root: Path) -> dict | None:
    try:
        return json.loads((root / MARKER).read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError):
        return None


def is_complete(root: Path, preset: DatasetPreset = DEMO_PRESET) -> bool:
    """Whether ``root`` holds a finished demo dataset of ``preset`` and of this generator version."""
    return _read_marker(root) == _marker_content(preset)


def _generate(root: Path, preset: DatasetPreset) -> None:
    """Generate the demo tree into a hidden sibling of ``root`` and rename it into place."""
    from data_prep.layouts import write_cad1_tree
    from xumx_slicq_v2.audio import write_text_atomic

    stale = _read_marker(root) is not None
    if root.exists() and not stale:
        if not root.is_dir() or any(root.iterdir()):
            raise FileExistsError(
                f"{root}: exists but is not a complete demo dataset (no valid {MARKER}); remove it or "
                f"point {DEMO_ROOT_VARIABLE} elsewhere"
            )
        root.rmdir()
    print(f"demo dataset: generating {preset} into {root}", file=sys.stderr)
    partial = Path(tempfile.mkdtemp(prefix=f".{root.name}.", suffix=".partial", dir=root.parent))
    partial.chmod(_default_folder_mode())  # mkdtemp makes it private; the renamed root is an ordinary folder
    try:
        write_cad1_tree(
            partial,
            n_train=preset.n_train,
            n_valid=preset.n_valid,
            n_test=preset.n_test,
            seconds=preset.seconds,
            seed=preset.seed,
            listeners_per_split=preset.listeners_per_split,
        )
        write_text_atomic(partial / MARKER, json.dumps(_marker_content(preset), indent=2) + "\n")
        if stale:  # a demo tree of another preset or version (ours, recognised by its marker)
            retired = Path(tempfile.mkdtemp(prefix=f".{root.name}.", suffix=".old", dir=root.parent))
            os.replace(root, retired / root.name)
            shutil.rmtree(retired)
        try:
            os.rename(partial, root)
        except OSError:
            if not is_complete(root, preset):  # else another process finished first: use its tree
                raise
    finally:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(partial)


def ensure_demo_dataset(root: Path | None = None, preset: DatasetPreset = DEMO_PRESET) -> Path:
    """Return the ``cad1/task1`` folder of the demo dataset under ``root``, generating it first if absent.

    ``root`` defaults to :func:`default_demo_root`. A demo tree of another preset or generator version
    (recognised by its ``demo.json``) is regenerated; a non-empty folder without ``demo.json`` is refused.
    Safe to call from parallel processes: one generates, the others wait and reuse its tree.
    """
    root = Path(root) if root is not None else default_demo_root()
    if not is_complete(root, preset):
        # serialise the processes that generate the same root (lock on a hidden sibling file)
        with exclusive_lock(root.parent / f".{root.name}.generate.lock"):
            if not is_complete(root, preset):  # another process may have finished it meanwhile
                _generate(root, preset)
    print(f"demo dataset: {_task_root(root)}", file=sys.stderr)
    return _task_root(root)


@exit_if_missing()
def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m data_prep.demo",
        description=(
            "Generate the demo dataset (CAD1 Task 1 layout: 3 validation and 2 test songs of 10 s, 3 synthetic "
            f"listeners per split) if it is absent, and print its cad1/task1 folder on stdout (progress and "
            f"status go to stderr). Default location: "
            f"${DEMO_ROOT_VARIABLE} if set, else data/demo under the working directory."
        ),
    )
    parser.add_argument("--root", type=Path, default=None, help="demo dataset folder (default: see above)")
    args = parser.parse_args(argv)
    try:
        print(ensure_demo_dataset(args.root))
    except (FileExistsError, ValueError) as err:
        raise SystemExit(str(err)) from err


if __name__ == "__main__":
    main()
