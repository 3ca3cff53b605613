"""``hotline-sla dispatch`` (send what is due in the outbox) and ``hotline-sla notify test CHANNEL RECIPIENT``."""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import socket
import sys
from typing import Any

from daemon.commands.args import add_now, now_arg
from daemon.core.timeutil import iso_local
from daemon.errors import UsageError
from daemon.output import print_json

_MOBILE = re.compile(r"^(\+?86)?1[3-9]\d{9}$")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    d = sub.add_parser("dispatch", help="send the queued messages that are due (发送待发消息)")
    add_now(d)
    d.add_argument("--limit", type=int, default=500, help="rows claimed per round (default 500)")
    d.add_argument("--json", action="store_true")
    d.set_defaults(func=run_dispatch)

    n = sub.add_parser("notify", help="notification channels (通知渠道)")
    nsub = n.add_subparsers(dest="notify_command", metavar="SUBCOMMAND", required=True)
    t = nsub.add_parser("test", help="send a test message through one channel and print the provider's answer")
    t.add_argument("channel", metavar="CHANNEL", help="a channel name from config.yaml channels:")
    t.add_argument("recipient", metavar="RECIPIENT",
                   help="a mobile (SMS, robots' @), a WeCom user id, or an email address, as the channel needs")
    add_now(t)
    t.add_argument("--json", action="store_true")
    t.set_defaults(func=run_notify_test)


def _owner() -> str:
    return f"{socket.gethostname()[:32]}:{os.getpid()}"


def run_dispatch(args: argparse.Namespace) -> int:
    from daemon.pipeline.outbox import Dispatcher, notifiers_for

    now = now_arg(args)
    ctx = args.ctx
    if args.limit < 1:
        raise UsageError("--limit: must be at least 1")
    notifiers = notifiers_for(ctx.config)

    def _close_all() -> None:
        for notifier in notifiers.values():
            notifier.close()

    ctx.on_close(_close_all)
    dispatcher = Dispatcher(ctx.store, ctx.config, notifiers, owner=_owner())
    stop = {"requested": False}

    def _on_term(_sig: int, _frame: Any) -> None:  # finish the message in flight, then stop
        stop["requested"] = True

    previous = signal.signal(signal.SIGTERM, _on_term)
    # the console channel prints to stdout, which belongs to the JSON document with --json
    redirect = contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext()
    try:
        with redirect:  # until nothing due is left unclaimed (several dispatchers split the rows)
            total = dispatcher.dispatch_due(now, should_stop=lambda: stop["requested"], limit=args.limit)
    finally:
        signal.signal(signal.SIGTERM, previous)
    if args.json:
        print_json({"now": iso_local(now), **total.to_json(), "rows_sent": total.sent})
    else:
        print(f"dispatch at {iso_local(now)}: sent {_plural(total.messages_sent, 'message')} "
              f"({_plural(total.sent, 'row')}), retry later {total.retried}, "
              f"deferred {total.deferred}" + (f" (quiet hours {total.quiet})" if total.quiet else "")
              + f", failed {total.failed}, dead {total.dead}" + (" (stopped early)" if total.stopped else ""))
        for f in total.failures:
            print(f"  failed #{f['id']} {f['kind']} {f['channel']} → {f['to']}: {f['error']}")
    return 1 if total.failed or total.dead else 0


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def test_recipient(text: str) -> Any:
    """A mobile, an email address or a WeCom user id, told apart by their shape."""
    from notifiers.base import Recipient

    value = text.strip()
    if not value:
        raise UsageError("RECIPIENT: empty; give a mobile, a WeCom user id or an email address")
    if _MOBILE.match(value):
        return Recipient("测试接收人", mobile=value)
    if "@" in value:
        return Recipient("测试接收人", email=value)
    return Recipient("测试接收人", wecom_userid=value)


def run_notify_test(args: argparse.Namespace) -> int:
    from daemon.errors import ConfigError
    from daemon.pipeline.render import Renderer
    from notifiers.base import ChannelConfigError, Message, NotifierError, mask_mobiles_in
    from notifiers.registry import build_notifier
    from notifiers.secrets import SecretResolver

    now = now_arg(args)
    config = args.ctx.config
    if args.channel not in config.channels:
        raise UsageError(f"CHANNEL: {args.channel!r} is not configured; channels: {', '.join(sorted(config.channels))}")
    recipient = test_recipient(args.recipient)
    try:
        notifier = build_notifier(args.channel, config.channels[args.channel], secrets=SecretResolver())
    except ChannelConfigError as exc:
        raise ConfigError(str(exc)) from None
    templates = config.dispatch.templates_dir
    renderer = Renderer(config.path(templates) if templates else None)
    out = renderer.render("test", {"channel": args.channel, "now": iso_local(now)})
    message = Message(
        recipient=recipient, subject=out.subject, text=out.text, markdown=out.markdown, html=out.html, kind="test",
        params={"name": recipient.name, "channel": args.channel, "time": iso_local(now)[:16].replace("T", " "),
                "case_no": "TEST", "count": "1"},
        dedupe_key=f"test:{now.timestamp():.0f}",
    )
    doc: dict[str, Any] = {"channel": args.channel, "type": config.channels[args.channel].get("type"),
                           "to": recipient.masked}
    redirect = contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext()
    try:
        with redirect:
            receipt = notifier.send(message)
    except NotifierError as exc:
        doc.update(ok=False, outcome="permanent" if exc.permanent else "deferred" if exc.deferred else "transient",
                   error=mask_mobiles_in(exc.reason), provider_code=exc.provider_code, retry_after=exc.retry_after)
    else:
        doc.update(ok=True, provider_message_id=receipt.provider_message_id, parts=receipt.parts,
                   detail={k: mask_mobiles_in(str(v)) for k, v in receipt.detail.items()})
    finally:
        notifier.close()
    if args.json:
        print_json(doc)
    elif doc["ok"]:
        print(f"{args.channel} ({doc['type']}) → {doc['to']}: sent; provider message id "
              f"{doc['provider_message_id'] or '-'}, parts {doc['parts']}"
              + (f", detail {doc['detail']}" if doc["detail"] else ""))
    else:
        print(f"{args.channel} ({doc['type']}) → {doc['to']}: {doc['outcome']} failure: {doc['error']}"
              + (f" (provider code {doc['provider_code']})" if doc["provider_code"] else "")
              + (f", retry after {doc['retry_after']:g}s" if doc["retry_after"] else ""))
    return 0 if doc["ok"] else 1
