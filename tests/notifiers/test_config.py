"""Secrets, option validation, the registry, the console channel and FakeNotifier."""

from __future__ import annotations

import io

import pytest

from notifiers.base import ChannelConfigError, NotifierError, Secret
from notifiers.console import ConsoleNotifier, ConsoleOptions
from notifiers.registry import CHANNEL_TYPES, build_notifier
from notifiers.secrets import SecretResolver
from notifiers.testing import FakeNotifier
from notifiers.wecom_bot import WecomBotNotifier
from tests.notifiers.conftest import SECRETS, message


def test_env_file_and_credential_sources(tmp_path):
    (tmp_path / "key").write_text("from-file\n")
    (tmp_path / "creds").mkdir()
    (tmp_path / "creds" / "wecom").write_text("from-credential")
    resolver = SecretResolver(environ={"K": "from-env", "CREDENTIALS_DIRECTORY": str(tmp_path / "creds")})
    assert resolver.resolve("a", {"env": "K"}).reveal() == "from-env"
    assert resolver.resolve("a", {"file": str(tmp_path / "key")}).reveal() == "from-file"
    assert resolver.resolve("a", {"credential": "wecom"}).reveal() == "from-credential"


def test_credential_loaded_from_the_units_folder_has_the_secret_prefix(tmp_path):
    """`LoadCredential=secret:/etc/hotline-sla/credentials` names each file `secret_<file name>`."""
    (tmp_path / "secret_wecom").write_text("via-load-credential-dir\n")
    (tmp_path / "wecom").write_text("plain-id")
    resolver = SecretResolver(environ={"CREDENTIALS_DIRECTORY": str(tmp_path)})
    assert resolver.resolve("a", {"credential": "wecom"}).reveal() == "via-load-credential-dir"
    with pytest.raises(ChannelConfigError) as exc:
        resolver.resolve("channels.sms.key", {"credential": "missing"})
    assert "channels.sms.key" in str(exc.value) and "secret_missing" in str(exc.value)
    with pytest.raises(ChannelConfigError):
        resolver.resolve("a", {"credential": "../etc/shadow"})


def test_inline_secret_is_refused_without_echoing_it():
    with pytest.raises(ChannelConfigError) as exc:
        SecretResolver(environ={}).resolve("channels.g.key", SECRETS["ROBOT_KEY"])
    assert "channels.g.key" in str(exc.value) and "{env: NAME}" in str(exc.value)
    assert SECRETS["ROBOT_KEY"] not in str(exc.value)


@pytest.mark.parametrize(
    ("spec", "named"),
    [
        ({"env": "NOPE"}, "NOPE"),
        ({"file": "/nonexistent/hotline/key"}, "/nonexistent/hotline/key"),
        ({"credential": "wecom"}, "CREDENTIALS_DIRECTORY"),
        ({"vault": "x"}, "unknown secret source"),
        ({"env": "A", "file": "B"}, "{env: NAME}"),
    ],
)
def test_unresolvable_secret_names_the_key_and_the_source(spec, named):
    with pytest.raises(ChannelConfigError) as exc:
        SecretResolver(environ={}).resolve("channels.sms.access_key_secret", spec)
    assert "channels.sms.access_key_secret" in str(exc.value) and named in str(exc.value)


def test_options_errors_name_the_channel_key_and_hide_the_input(secrets):
    with pytest.raises(ChannelConfigError) as exc:
        WecomBotNotifier.from_options("g", {"key": SECRETS["ROBOT_KEY"], "timeout": -1}, secrets=secrets)
    text = str(exc.value)
    assert "channels.g.key" in text and "channels.g.timeout" in text
    assert SECRETS["ROBOT_KEY"] not in text and exc.value.__cause__ is None


def test_unknown_option_lists_the_valid_keys(secrets):
    with pytest.raises(ChannelConfigError) as exc:
        ConsoleNotifier.from_options("c", {"colour": "red"}, secrets=secrets)
    assert "channels.c.colour: unknown key; valid keys: stream" in str(exc.value)


def test_registry_builds_every_type_by_name(secrets):
    notifier = build_notifier("g", {"type": "wecom_bot", "key": {"env": "ROBOT_KEY"}}, secrets=secrets)
    assert isinstance(notifier, WecomBotNotifier) and notifier.name == "g"
    assert set(CHANNEL_TYPES) == {
        "console", "wecom_bot", "wecom_app", "sms_aliyun", "sms_tencent", "sms_cmcc_mas", "sms_http", "smtp",
        "dingtalk",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("options", "expected"), [({"type": "pager"}, "unknown channel type 'pager'"), ({}, "missing")]
)
def test_registry_rejects_bad_type_listing_valid_ones(secrets, options, expected):
    with pytest.raises(ChannelConfigError) as exc:
        build_notifier("x", options, secrets=secrets)
    assert "channels.x.type" in str(exc.value) and expected in str(exc.value)
    assert "console, dingtalk, sms_aliyun" in str(exc.value)


def test_secret_repr_hides_value():
    secret = Secret("s3cr3t-value", "env:X")
    assert "s3cr3t-value" not in repr(secret) and "s3cr3t-value" not in str({"k": secret})


def test_console_prints_text_with_masked_recipient():
    out = io.StringIO()
    ConsoleNotifier("console", ConsoleOptions(), stream=out).send(message())
    assert message().text in out.getvalue() and "张三(尾号6654)" in out.getvalue()
    assert "13812346654" not in out.getvalue()


def test_fake_notifier_scripts_failures_in_order():
    fake = FakeNotifier()
    fake.fail_next(1)
    fake.fail_next(1, retry_after=30)
    fake.fail_next(1, permanent=True)
    outcomes = []
    for _ in range(4):
        try:
            fake.send(message())
            outcomes.append("sent")
        except NotifierError as exc:
            outcomes.append("permanent" if exc.permanent else "deferred" if exc.deferred else "transient")
    assert outcomes == ["transient", "deferred", "permanent", "sent"]
    assert len(fake.attempts) == 4 and len(fake.sent) == 1
