"""Secrets in channel configuration, and the options base model that resolves them.

A secret (webhook key, corp secret, access key secret, password) is never written into ``config.yaml``
itself. It is given as one of::

    corpsecret: {env: WECOM_CORPSECRET}          # an environment variable
    corpsecret: {file: /etc/hotline-sla/wecom}   # a file (trailing newline stripped)
    corpsecret: {credential: wecom}              # systemd LoadCredential= (see below)

A credential ``NAME`` is read from ``$CREDENTIALS_DIRECTORY/secret_NAME`` (how the shipped unit's
``LoadCredential=secret:/etc/hotline-sla/credentials`` names each file of that folder, and the name a
``SetCredentialEncrypted=secret_NAME:`` drop-in uses), else ``$CREDENTIALS_DIRECTORY/NAME`` (a unit that
loads the credential under its own name, ``LoadCredential=NAME:PATH``).

Errors name the config key and where we looked, never the value.

Every value a :class:`SecretResolver` resolves is remembered (in this process only) so that
:func:`redact_secrets` can cut it out of any text, wherever it appears: a provider's reply that echoes a
key, an exception message, a log line. The outbox applies it to every delivery error it stores and the
log set-up to every log event.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Self
from urllib.parse import quote

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError, ValidationInfo

from notifiers.base import ChannelConfigError, Secret

_FORMS = "{env: NAME}, {file: PATH} or {credential: NAME}"
#: how ``LoadCredential=secret:DIR`` names each file of DIR (systemd appends ``_<file name>`` to the ID)
CREDENTIAL_PREFIX = "secret_"
#: shorter values are not redacted: cutting every "abc" out of a text would hide more than it protects
MIN_REDACTED_LENGTH = 4
REDACTED = "<redacted>"


class _KnownSecrets:
    """The resolved secret values of this process and one regex that finds any of them."""

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._lock = threading.Lock()
        self._pattern: re.Pattern[str] | None = None

    def add(self, value: str) -> None:
        if len(value) < MIN_REDACTED_LENGTH:
            return
        forms = {value, quote(value, safe=""), quote(value, safe="/"), quote(value)}
        with self._lock:
            if forms <= self._values:
                return
            self._values |= forms
            alternatives = sorted(self._values, key=len, reverse=True)  # the longest form wins
            self._pattern = re.compile("|".join(re.escape(v) for v in alternatives))

    def redact(self, text: str) -> str:
        pattern = self._pattern
        return text if pattern is None else pattern.sub(REDACTED, text)


_known = _KnownSecrets()


def remember_secret(value: str) -> None:
    """Have :func:`redact_secrets` cut ``value`` (and its URL-encoded forms) out of every text from now on."""
    _known.add(value)


def redact_secrets(text: str) -> str:
    """``text`` with every secret value resolved in this process replaced by ``<redacted>``."""
    return _known.redact(text)


class SecretResolver:
    """Turns a secret spec from config into a :class:`Secret`.

    ``environ`` and ``credentials_dir`` default to the process environment and
    ``$CREDENTIALS_DIRECTORY``; tests pass their own.
    """

    def __init__(
        self, environ: Mapping[str, str] | None = None, credentials_dir: str | Path | None = None
    ) -> None:
        self._environ = os.environ if environ is None else environ
        self._credentials_dir = credentials_dir

    def resolve(self, key: str, spec: object) -> Secret:
        """``key`` is the dotted config key (``channels.wecom.corpsecret``), used only in errors.

        The value is remembered for :func:`redact_secrets`.
        """
        secret = self._resolve(key, spec)
        remember_secret(secret.reveal())
        return secret

    def _resolve(self, key: str, spec: object) -> Secret:
        if isinstance(spec, Secret):
            return spec
        if isinstance(spec, str):
            raise ChannelConfigError(f"{key}: a secret must not be written inline; give it as {_FORMS}")
        if not isinstance(spec, Mapping) or len(spec) != 1:
            raise ChannelConfigError(f"{key}: a secret must be given as {_FORMS}")
        ((form, name),) = spec.items()
        if not isinstance(name, str) or not name:
            raise ChannelConfigError(f"{key}: {form}: expected a non-empty string")
        if form == "env":
            value = self._environ.get(name)
            if value is None:
                raise ChannelConfigError(f"{key}: environment variable {name} is not set")
            return Secret(value, f"env:{name}")
        if form == "file":
            return Secret(self._read(key, Path(name)), f"file:{name}")
        if form == "credential":
            directory = self._credentials_dir or self._environ.get("CREDENTIALS_DIRECTORY")
            if not directory:
                raise ChannelConfigError(
                    f"{key}: credential {name}: $CREDENTIALS_DIRECTORY is not set "
                    "(add LoadCredential= to the systemd unit)"
                )
            if "/" in name or name in {".", ".."}:
                raise ChannelConfigError(f"{key}: credential: expected a plain name such as 'wecom-secret', not a path")
            candidates = [Path(directory) / f"{CREDENTIAL_PREFIX}{name}", Path(directory) / name]
            for path in candidates:
                if path.is_file():
                    return Secret(self._read(key, path), f"credential:{name}")
            raise ChannelConfigError(
                f"{key}: credential {name}: neither {candidates[0]} nor {candidates[1]} exists "
                f"(put the file in /etc/hotline-sla/credentials/{name} or add a SetCredentialEncrypted= drop-in)"
            )
        raise ChannelConfigError(f"{key}: unknown secret source {form!r}; use {_FORMS}")

    @staticmethod
    def _read(key: str, path: Path) -> str:
        try:
            return path.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise ChannelConfigError(f"{key}: cannot read secret file {path} ({exc.strerror})") from None


def _resolve_field(value: object, info: ValidationInfo) -> Secret:
    context = info.context or {}
    resolver = context.get("secrets")
    if not isinstance(resolver, SecretResolver):
        if isinstance(value, Secret):
            return value
        raise ChannelConfigError("no SecretResolver given to resolve secrets")
    return resolver.resolve(f"{context.get('prefix', '')}.{info.field_name}", value)


SecretValue = Annotated[Secret, BeforeValidator(_resolve_field)]
"""An options field holding a secret: resolved from its spec while the options are validated."""


class ChannelOptions(BaseModel):
    """Base of every channel's options: unknown keys are errors, values are frozen after validation."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    @classmethod
    def parse(cls, channel: str, options: Mapping[str, Any], secrets: SecretResolver) -> Self:
        """Validate ``options`` of ``channels.<channel>``; every problem becomes a :class:`ChannelConfigError`.

        Pydantic's own message would echo the input (possibly a secret), so only the key path and the
        reason are kept.
        """
        prefix = f"channels.{channel}"
        try:
            return cls.model_validate(dict(options), context={"secrets": secrets, "prefix": prefix})
        except ValidationError as exc:
            problems = []
            for err in exc.errors(include_input=False, include_url=False):
                loc = ".".join(str(part) for part in err["loc"])
                msg = err["msg"].removeprefix("Value error, ")
                if msg.startswith(f"{prefix}."):
                    problems.append(msg)  # a secret's own message already names its key
                elif err["type"] == "extra_forbidden":
                    valid = ", ".join(sorted(cls.model_fields))
                    problems.append(f"{prefix}.{loc}: unknown key; valid keys: {valid}")
                else:
                    problems.append(f"{prefix}.{loc}: {msg}")
            raise ChannelConfigError("; ".join(problems)) from None
