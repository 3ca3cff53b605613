"""Every channel end to end: outbox rows → Dispatcher → real notifier → fake vendor server (signatures checked).

Also ``hotline-sla notify test`` and ``config check`` against the same fakes.
"""

from __future__ import annotations

import json
import random
from email.header import decode_header, make_header
from pathlib import Path
from typing import Any

import pytest
import yaml

from daemon.config import Config
from daemon.pipeline.outbox import Dispatcher
from daemon.storage.store import Store
from notifiers.registry import build_notifiers
from notifiers.secrets import SecretResolver
from tests.notifiers.conftest import MOBILE, SECRETS
from tests.notifiers.test_robots_and_gateway import gateway  # noqa: F401 - fixture
from tests.notifiers.test_smtp import smtpd  # noqa: F401 - fixture
from tests.outbox_helpers import at, person, queue, rows, tries

NOW = at("2026-11-20 09:00")
SMS_PARAMS = ["case_no", "due_at"]


def channels(wecom: Any, aliyun: Any, tencent: Any, mas: Any, dingtalk: Any, gw: Any, smtp_port: int) -> dict[str, Any]:
    fast = {"timeout": 2, "connect_timeout": 2}
    return {
        "bot": {"type": "wecom_bot", "key": {"env": "ROBOT_KEY"}, "base_url": wecom.base_url, **fast},
        "app": {"type": "wecom_app", "corpid": "ww0123", "corpsecret": {"env": "CORP_SECRET"}, "agentid": 1000002,
                "base_url": wecom.base_url, **fast},
        "ali": {"type": "sms_aliyun", "access_key_id": "LTAI-id", "access_key_secret": {"env": "ALIYUN_SECRET"},
                "endpoint": aliyun.base_url + "/", "sign_name": "盘锦12345",
                "templates": {"warning": {"code": "SMS_1001", "params": ["case_no", "unit", "due_at"]}}, **fast},
        "tc": {"type": "sms_tencent", "secret_id": {"env": "TENCENT_ID"}, "secret_key": {"env": "TENCENT_KEY"},
               "sms_sdk_app_id": "1400000001", "endpoint": tencent.base_url + "/", "sign_name": "盘锦12345",
               "templates": {"warning": {"code": "2001", "params": SMS_PARAMS}}, **fast},
        "mas": {"type": "sms_cmcc_mas", "base_url": mas.base_url, "ec_name": "盘锦市营商局", "ap_id": "sla",
                "secret_key": {"env": "MAS_KEY"}, "sign_name": "sign01",
                "templates": {"warning": {"code": "tpl-9", "params": SMS_PARAMS}}, **fast},
        "gw": {"type": "sms_http", "url": gw.base_url + "/sms/send", "headers": {"X-Token": "{{ secrets.token }}"},
               "secrets": {"token": {"env": "GATEWAY_TOKEN"}},
               "body": '{"phone": {{ mobile | tojson }}, "content": {{ text | tojson }}, '
                       '"case": {{ params.case_no | tojson }}}',
               "success_field": "result.code", "success_value": "0", **fast},
        "mail": {"type": "smtp", "host": "127.0.0.1", "port": smtp_port, "security": "plain",
                 "from_addr": "sla@example.org"},
        "ding": {"type": "dingtalk", "access_token": {"env": "DING_TOKEN"}, "secret": {"env": "DING_SECRET"},
                 "base_url": dingtalk.base_url, **fast},
        "console": {"type": "console"},
    }


@pytest.fixture
def all_channels(wecom, aliyun, tencent, mas, dingtalk, gateway, smtpd):  # type: ignore[no-untyped-def]  # noqa: F811
    inbox, port = smtpd
    servers = {"wecom": wecom, "aliyun": aliyun, "tencent": tencent, "mas": mas, "dingtalk": dingtalk,
               "gateway": gateway, "inbox": inbox}
    return channels(wecom, aliyun, tencent, mas, dingtalk, gateway, port), servers


def test_every_channel_sends_a_batch_as_one_well_formed_signed_request(
    tmp_path: Path, all_channels: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    chans, s = all_channels
    store = Store(f"sqlite:///{tmp_path / 'e2e.sqlite3'}")
    store.upgrade()
    config = Config.model_validate({"channels": chans, "default_channels": ["console"]})
    notifiers = build_notifiers(config.channels, secrets=SecretResolver(environ=SECRETS))
    zhang = person("张三", MOBILE, wecom_userid="zhangsan", email="zhangsan@example.org")
    for name in chans:
        for number in ("C1", "C2"):
            queue(store, NOW, channel=name, number=number, recipient=zhang)
    result = Dispatcher(store, config, notifiers, owner="e2e", rng=random.Random(1)).dispatch_once(NOW)
    failed = [(r.channel, r.last_error) for r in rows(store) if r.status != "sent"]
    assert failed == [] and result.messages == len(chans) and result.sent == 2 * len(chans)

    (robot,) = s["wecom"].sent("/cgi-bin/webhook/send")[:1]
    assert robot["msgtype"] == "markdown" and "张三：您单位有**2件**诉求即将超期" in robot["markdown"]["content"]
    (app,) = s["wecom"].sent()
    assert app["touser"] == "zhangsan" and "2件诉求即将超期" in app["markdown"]["content"]
    (ali,) = s["aliyun"].sent()
    assert json.loads(ali["TemplateParam"]) == {"case_no": "C1等2件", "unit": "兴隆台区住建局",
                                                "due_at": "11月21日 00:00"}
    assert ali["PhoneNumbers"] == MOBILE and ali["TemplateCode"] == "SMS_1001"
    (tc,) = s["tencent"].sent()
    assert tc["TemplateParamSet"] == ["C1等2件", "11月21日 00:00"] and tc["PhoneNumberSet"] == [f"+86{MOBILE}"]
    (mas_body,) = s["mas"].sent()
    assert mas_body["templateId"] == "tpl-9" and mas_body["mobiles"] == MOBILE
    (gw_req,) = s["gateway"].requests
    assert gw_req.json()["case"] == "C1等2件" and "您单位有2件诉求即将超期" in gw_req.json()["content"]
    (ding,) = s["dingtalk"].sent()
    assert ding["markdown"]["title"] == "2件诉求即将超期"
    ((_, mail),) = s["inbox"].messages
    subject = str(make_header(decode_header(str(mail["Subject"]))))
    assert mail["To"] == "zhangsan@example.org" and subject == "2件诉求即将超期"
    assert {p.get_content_type() for p in mail.walk()} >= {"text/plain", "text/html"}
    assert "[console] → 张三(尾号6654): 2件诉求即将超期" in capsys.readouterr().out
    stored = json.dumps([r._asdict() for r in tries(store)], default=str, ensure_ascii=False)
    assert not any(secret in stored for secret in SECRETS.values())
    store.close()


def _write_config(tmp_path: Path, chans: dict[str, Any]) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({
        "database": {"url": f"sqlite:///{tmp_path / 'cli.sqlite3'}"}, "rules_dir": str(Path.cwd() / "sla_rules"),
        "channels": chans, "default_channels": ["console"],
    }, allow_unicode=True), "utf-8")
    return path


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in SECRETS.items():
        monkeypatch.setenv(key, value)


def test_notify_test_prints_the_provider_answer_without_secrets_or_full_mobiles(
    tmp_path: Path, all_channels: Any, cli: Any, secret_env: None
) -> None:
    chans, s = all_channels
    cfg = str(_write_config(tmp_path, chans))
    outputs = []
    r = cli("--config", cfg, "notify", "test", "ali", MOBILE, "--now", "2026-11-20 09:00")
    outputs.append(r)
    assert r.code == 1  # no 'test' SMS template configured: a permanent failure that names the key
    assert "permanent failure" in r.out and "channels.ali.templates.test" in r.out
    chans["ali"]["templates"]["test"] = {"code": "SMS_1001", "params": {"case_no": "case_no", "unit": "channel",
                                                                         "due_at": "time"}}
    cfg = str(_write_config(tmp_path, chans))
    r = cli("--config", cfg, "notify", "test", "ali", MOBILE, "--json")
    outputs.append(r)
    doc = json.loads(r.out)
    assert r.code == 0 and doc["ok"] and doc["provider_message_id"].startswith("biz-")
    assert doc["to"] == "测试接收人(尾号6654)"
    r = cli("--config", cfg, "notify", "test", "app", "zhangsan")
    assert r.code == 0 and "app (wecom_app) → 测试接收人: sent; provider message id msg-" in r.out
    r = cli("--config", cfg, "notify", "test", "app", "nobody")
    assert r.code == 1 and "permanent failure" in r.out and "81013" in r.out
    r = cli("--config", cfg, "notify", "test", "bot", MOBILE)
    outputs.append(r)
    assert r.code == 0 and s["wecom"].sent("/cgi-bin/webhook/send")[0]["msgtype"] == "markdown"
    r = cli("--config", cfg, "notify", "test", "nosuch", MOBILE)
    assert r.code == 2 and "'nosuch' is not configured" in r.err
    for text in [c.out + c.err for c in [*outputs, r]]:
        assert MOBILE not in text and not any(v in text for v in SECRETS.values())


def test_config_check_builds_every_channel_and_names_the_broken_ones(
    tmp_path: Path, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROBOT_KEY", SECRETS["ROBOT_KEY"])
    chans = {
        "bot": {"type": "wecom_bot", "key": {"env": "ROBOT_KEY"}},
        "app": {"type": "wecom_app", "corpid": "ww1", "corpsecret": {"env": "UNSET_CORP_SECRET"}, "agentid": 1},
        "ali": {"type": "sms_aliyun", "access_key_id": "id", "access_key_secret": "inline-secret-LEAKCHECK",
                "sign_name": "x"},
        "odd": {"type": "pager"},
        "console": {"type": "console"},
    }
    r = cli("--config", str(_write_config(tmp_path, chans)), "config", "check", "--json")
    doc = json.loads(r.out)
    assert r.code == 1 and not doc["ok"]
    text = "\n".join(doc["errors"])
    assert "channels.app.corpsecret: environment variable UNSET_CORP_SECRET is not set" in text
    assert "channels.ali.access_key_secret: a secret must not be written inline" in text
    assert "channels.odd.type: unknown channel type 'pager'" in text
    assert "channels.bot" not in text  # it built
    assert doc["summary"]["channels"]["bot"] == "wecom_bot"
    assert SECRETS["ROBOT_KEY"] not in r.out + r.err and "inline-secret-LEAKCHECK" not in r.out + r.err
