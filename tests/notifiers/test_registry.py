"""What each channel class declares (formats, quiet hours) is what the dispatcher does: no name conventions."""

from __future__ import annotations

import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

import pytest

from daemon.pipeline.outbox import Dispatcher
from daemon.pipeline.recipients import sync_config_contacts
from daemon.pipeline.render import FAMILIES
from daemon.storage.store import Store
from notifiers.base import Clock
from notifiers.registry import CHANNEL_CLASSES, CHANNEL_TYPES, build_notifiers, channel_class
from notifiers.secrets import SecretResolver
from notifiers.testing import FakeNotifier
from tests.outbox_helpers import at, config, queue, rows

SMS_TYPES = {"sms_aliyun", "sms_tencent", "sms_cmcc_mas", "sms_http"}


def test_every_channel_type_declares_its_formats_and_quiet_hours() -> None:
    assert len(CHANNEL_TYPES) == len(CHANNEL_CLASSES)  # type names are unique
    for cls in CHANNEL_CLASSES:
        assert cls.formats[0] == "txt" and set(cls.formats) <= set(FAMILIES), cls.type_name
        assert cls.quiet_hours_by_default == (cls.type_name in SMS_TYPES), cls.type_name
        assert channel_class(cls.type_name) is cls
    assert channel_class("sms_unknown") is None
    assert CHANNEL_TYPES["smtp"].formats == ("txt", "html")
    assert CHANNEL_TYPES["wecom_bot"].formats == ("txt", "md")


class PagerNotifier(FakeNotifier):
    """A new vendor, named without any 'sms_' prefix, that pages people at night unless held back."""

    type_name = "pager"
    formats = ("txt",)
    quiet_hours_by_default = True

    @classmethod
    def from_options(
        cls, name: str, options: Mapping[str, Any], *, secrets: SecretResolver, clock: Clock = lambda: 0.0
    ) -> Self:
        return cls(name)


@pytest.fixture
def sqlite_store(tmp_path: Path):  # type: ignore[no-untyped-def]
    s = Store(f"sqlite:///{tmp_path / 'registry.sqlite3'}")
    s.upgrade()
    yield s
    s.close()


def test_a_new_vendor_is_one_class_and_one_registry_entry(
    sqlite_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(CHANNEL_TYPES, "pager", PagerNotifier)
    cfg = config()
    cfg.channels["beeper"] = {"type": "pager"}
    built = build_notifiers({"beeper": {"type": "pager"}}, secrets=SecretResolver(environ={}))
    pager = built["beeper"]
    assert isinstance(pager, PagerNotifier)
    with sqlite_store.engine.begin() as conn:
        sync_config_contacts(conn, cfg)
    d = Dispatcher(sqlite_store, cfg, {"beeper": pager}, owner="d1", rng=random.Random(7), monotonic=lambda: 0.0)
    night = at("2026-11-20 23:10")
    queue(sqlite_store, night, channel="beeper", number="C1")
    result = d.dispatch_once(night)  # held by the class's declaration, not by its name
    assert (result.sent, result.quiet) == (0, 1)
    assert rows(sqlite_store)[0].not_before == at("2026-11-21 07:30")
    assert d.dispatch_once(at("2026-11-21 07:30")).sent == 1
    [message] = pager.sent
    assert message.text and message.markdown is None and message.html is None  # only the formats it declares
