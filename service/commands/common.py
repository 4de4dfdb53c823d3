"""What every `atelier` command shares: the settings, argument types, and the usage error.

Owns: `UsageError` (exit 2), reading `Settings` for a command (a settings error is a usage
error), and the argument types (days, instants, comma-separated names). Must never print or
exit: `service.cli` does.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re

from service.config import ConfigError, Settings


class UsageError(Exception):
    """Bad input that argparse cannot see (a missing key file, S3 support absent): exit 2."""


def load_settings() -> Settings:
    try:
        return Settings.from_env()
    except ConfigError as exc:
        raise UsageError(str(exc)) from None


def parse_day(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected YYYY-MM-DD, got {text!r}") from None


def parse_instant(text: str) -> dt.datetime:
    """An ISO 8601 timestamp with a timezone (`Z` accepted); a bare date is midnight UTC."""
    text = text.strip()
    wrong = argparse.ArgumentTypeError(f"expected YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS][Z|+HH:MM], got {text!r}")
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return dt.datetime.combine(dt.date.fromisoformat(text), dt.time(), tzinfo=dt.timezone.utc)
        if not re.match(r"\d{4}-\d{2}-\d{2}[Tt ]\d", text):  # else "2025-01-01+02:00" would read as 02:00
            raise wrong
        value = dt.datetime.fromisoformat(text[:-1] + "+00:00" if text[-1:] in ("Z", "z") else text)
    except ValueError:
        raise wrong from None
    if value.tzinfo is None or value.utcoffset() is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no timezone: add Z or an offset such as +02:00")
    return value


def parse_names(text: str) -> list[str]:
    """A comma-separated list of one or more values."""
    values = [value.strip() for value in text.split(",")]
    if not all(values):
        raise argparse.ArgumentTypeError(f"expected comma-separated values, got {text!r}")
    return values
