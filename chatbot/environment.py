"""The one way the server reads its environment: every variable is parsed strictly
and checked against its range, so a typo or an impossible value stops the start
with a sentence saying what to set, instead of being read as a default or as "off"."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")


def _raw(name: str) -> str | None:
    """The variable's text, or None when it is unset or blank (blank means "default")."""
    value = os.environ.get(name)
    if value is None or not value.strip():
        return None
    return value.strip()


def _fail(name: str, value: str, problem: str, hint: str) -> ImproperlyConfigured:
    return ImproperlyConfigured(f"{name} is not valid: {value!r} {problem}. {hint}")


def env_str(
    name: str, default: str, *, choices: Sequence[str] | None = None, lower: bool = False, upper: bool = False
) -> str:
    value = _raw(name)
    if value is None:
        return default
    if lower:
        value = value.lower()
    if upper:
        value = value.upper()
    if choices is not None and value not in choices:
        raise _fail(name, value, "is not one of the choices", f"Set {name} to {_one_of(choices)}.")
    return value


def _one_of(choices: Sequence[str]) -> str:
    return ", ".join(choices[:-1]) + " or " + choices[-1] if len(choices) > 1 else choices[0]


def env_bool(name: str, default: bool) -> bool:
    value = _raw(name)
    if value is None:
        return default
    if value.lower() in TRUE_WORDS:
        return True
    if value.lower() in FALSE_WORDS:
        return False
    raise _fail(name, value, "is not a yes/no value", f"Set {name} to 1 or 0.")


def _number(name: str, default, cast, minimum, maximum, unit: str):
    value = _raw(name)
    if value is None:
        return default
    try:
        number = cast(value)
    except ValueError:
        raise _fail(
            name,
            value,
            f"is not {'an integer' if cast is int else 'a number'}",
            _range_hint(name, minimum, maximum, unit),
        ) from None
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        raise _fail(name, value, "is out of range", _range_hint(name, minimum, maximum, unit))
    return number


def _range_hint(name: str, minimum, maximum, unit: str) -> str:
    if minimum is not None and maximum is not None:
        where = f"between {minimum} and {maximum}"
    elif minimum is not None:
        where = f"at least {minimum}"
    elif maximum is not None:
        where = f"at most {maximum}"
    else:
        where = "a number"
    return f"Set {name} to {where}{' ' + unit if unit else ''}."


def env_int(name: str, default: int, *, minimum: int | None = None, maximum: int | None = None, unit: str = "") -> int:
    return _number(name, default, int, minimum, maximum, unit)


def env_float(
    name: str, default: float, *, minimum: float | None = None, maximum: float | None = None, unit: str = ""
) -> float:
    return _number(name, default, float, minimum, maximum, unit)


def env_list(name: str, default: Sequence[str]) -> list[str]:
    value = _raw(name)
    if value is None:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


def env_path(name: str, default: Path) -> Path:
    value = _raw(name)
    return Path(value).expanduser() if value is not None else default


RATE_PATTERN = r"(\d+)/(\d*)([smhd])"


def env_rate(name: str, default: str) -> str:
    """A rate as django-ratelimit reads it: "10/m", "600/h", "5/30s" (count per period)."""
    value = _raw(name)
    if value is None:
        return default
    match = re.fullmatch(RATE_PATTERN, value)
    if match is None or int(match.group(1)) < 1 or match.group(2) == "0":
        raise _fail(name, value, "is not a rate", f"Set {name} like 10/m, 600/h or 5/30s (at least 1 per period).")
    return value


def env_rates(name: str, default: dict[str, str], *, keys: Sequence[str]) -> dict[str, str]:
    """Rates by name, "identify=5/m,typing=60/m": each named one replaces its default."""
    value = _raw(name)
    rates = dict(default)
    if value is None:
        return rates
    for item in (part.strip() for part in value.split(",") if part.strip()):
        key, _, rate = (piece.strip() for piece in item.partition("="))
        match = re.fullmatch(RATE_PATTERN, rate)
        if key not in keys or match is None or int(match.group(1)) < 1 or match.group(2) == "0":
            raise _fail(
                name,
                value,
                f"has an entry {item!r} that is not NAME=RATE",
                f"Set {name} like identify=5/m,typing=60/m with NAME one of {_one_of(list(keys))}.",
            )
        rates[key] = rate
    return rates


def env_database(name: str, default: str) -> dict:
    """A database URL parsed by django-environ, refused unless Django knows the engine."""
    value = _raw(name) or default
    hint = f"Set {name} like postgres://user:password@host:5432/name or sqlite:////path/to/file.sqlite3."
    try:
        config = environ.Env.db_url_config(value)
    except (ValueError, KeyError, environ.ImproperlyConfigured) as exc:
        raise _fail(name, value, f"is not a database URL ({exc})", hint) from None
    if not str(config.get("ENGINE", "")).startswith("django.db.backends."):
        raise _fail(name, value, "names an unknown database", hint)
    return config


def env_redis_url(name: str) -> str:
    value = _raw(name) or ""
    if value and not value.startswith(("redis://", "rediss://", "unix://")):
        raise _fail(name, value, "is not a Redis URL", f"Set {name} like redis://127.0.0.1:6379/0.")
    return value


def local_secret_key(path: Path) -> str:
    """The install's own random key for debug runs: read from `path`, or made and
    written there (owner-only) the first time. Starts racing for it agree on one file:
    the key is written in full to a private file, then linked into place."""
    import secrets
    import tempfile

    if path.exists():
        return path.read_text(encoding="ascii").strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, draft = tempfile.mkstemp(dir=path.parent, prefix=".secret_key.")  # mode 0600
    try:
        with os.fdopen(descriptor, "w", encoding="ascii") as file:
            file.write(secrets.token_urlsafe(64) + "\n")
        try:
            os.link(draft, path)
        except FileExistsError:
            pass  # another start won; use its key
    finally:
        os.unlink(draft)
    return path.read_text(encoding="ascii").strip()
