"""``--help`` of the hydra commands without hydra: the same text, in a tenth of the time.

Hydra composes the configuration and prints its help in about half a second of CPU on its own, before the
command's own imports (numpy, the recipe modules). A plain ``python -m cadenza.<command> --help`` (or ``-h``,
and nothing else) is answered here instead, from the same YAML files and hydra's own help template, with
OmegaConf only: the text equals hydra's (tested). Anything else on the command line (overrides, ``--resolve``,
``--hydra-help``, ``--cfg``) goes to hydra, as does a configuration this composition does not cover (a defaults
entry that is not a plain file name, config groups, a template using hydra's flag or group lists).

Each command calls :func:`exit_if_plain_help` first, before importing hydra.
"""

from __future__ import annotations

import importlib.util
import string
import sys
from collections.abc import Sequence
from pathlib import Path

#: Folder of the recipe's YAML files (``config.yaml``, ``config_test.yaml``, ``cad1_task1.yaml``).
CONFIG_DIR = Path(__file__).resolve().parent

#: The arguments this module answers: exactly one of these.
HELP_FLAGS = ("--help", "-h")


def is_plain_help(argv: Sequence[str]) -> bool:
    """Whether the arguments (without the program name) are a lone ``--help`` or ``-h``."""
    return len(argv) == 1 and argv[0] in HELP_FLAGS


def _hydra_help_defaults() -> Path | None:
    """hydra's ``conf/hydra/help/default.yaml`` (located without importing hydra), or ``None``."""
    spec = importlib.util.find_spec("hydra")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "conf" / "hydra" / "help" / "default.yaml"
    return path if path.is_file() else None


def _has_config_groups(folder: Path) -> bool:
    """Whether ``folder`` has a sub-folder of YAML files other than ``hydra/`` (a config group hydra would list)."""
    return any(child.is_dir() and child.name != "hydra" and any(child.glob("*.yaml")) for child in folder.iterdir())


def help_text(config_name: str, config_dir: Path = CONFIG_DIR) -> str | None:
    """The text hydra's ``--help`` prints for the primary config ``config_name`` of ``config_dir`` (without its
    final newline), or ``None`` where this composition cannot stand in for hydra's."""
    from omegaconf import DictConfig, OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    template_file = _hydra_help_defaults()
    if template_file is None or _has_config_groups(config_dir):
        return None
    try:
        primary = OmegaConf.load(config_dir / f"{config_name}.yaml")
        defaults = primary.pop("defaults", ["_self_"])
        composed = OmegaConf.create()
        if "_self_" not in defaults:
            defaults = [*defaults, "_self_"]  # hydra's default: the primary config last
        for entry in defaults:
            if not isinstance(entry, str):
                return None  # group entries, optional or override entries: hydra's job
            part = primary if entry == "_self_" else OmegaConf.load(config_dir / f"{entry}.yaml")
            if not isinstance(part, DictConfig):
                return None
            if entry != "_self_" and "defaults" in part:
                return None
            composed = OmegaConf.merge(composed, part)
        hydra_node = composed.pop("hydra", OmegaConf.create())
        help_cfg = OmegaConf.merge(OmegaConf.load(template_file), hydra_node.get("help", {}))
        # the template interpolates hydra.help.header/footer (and those may use hydra.help.app_name)
        resolved = OmegaConf.create({"hydra": {"help": help_cfg}})
        template = string.Template(resolved.hydra.help.template)
        if any(name in template.template for name in ("$FLAGS_HELP", "$HYDRA_CONFIG_GROUPS")):
            return None
        text = template.substitute(APP_CONFIG_GROUPS="", CONFIG=OmegaConf.to_yaml(composed))
    except (OSError, OmegaConfBaseException, KeyError, ValueError):
        return None
    return text


def exit_if_plain_help(config_name: str, argv: Sequence[str] | None = None) -> None:
    """Print hydra's help for ``config_name`` and exit 0 when the arguments (default ``sys.argv[1:]``) are a lone
    ``--help``/``-h`` and :func:`help_text` can build it; otherwise return (hydra then parses the arguments)."""
    argv = sys.argv[1:] if argv is None else argv
    if not is_plain_help(argv):
        return
    text = help_text(config_name)
    if text is not None:
        print(text)
        raise SystemExit(0)
