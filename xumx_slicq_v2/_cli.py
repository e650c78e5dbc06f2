"""Shared pieces of the command lines (standard library only: they run before anything heavy is imported)."""

from __future__ import annotations

import argparse


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Appends ``(default: X)`` to an option's help, unless the help already states its default or the option
    has none to show (``None``, ``False`` of a flag, or a suppressed default)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text or action.default is None or action.default is False:
            return text
        if action.default == argparse.SUPPRESS:
            return text
        return super()._get_help_string(action)
