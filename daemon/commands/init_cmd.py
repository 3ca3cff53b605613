"""``hotline-sla init``: write a production configuration (config.yaml, the rules, the holiday folder and
the credentials folder) into the config directory, pointing every writable path into the state directory.

The rules come from the package itself (``daemon/sla_rules``, shipped in the wheel), so an install from a
wheel needs nothing from the source tree. Nothing existing is ever overwritten: ``init`` refuses (exit 1)
and names what is already there.
"""

from __future__ import annotations

import argparse
import sys
from importlib import resources
from pathlib import Path

CONFIG_TEMPLATE = """\
# hotline-sla production configuration, written by `hotline-sla init`.
# Check after every edit: sudo -u hotline-sla hotline-sla --config {config_dir}/config.yaml config check
# The service may only write under {state_dir} (the unit's StateDirectory); this folder is read-only to it.

database:
  url: sqlite:///{state_dir}/hotline-sla.sqlite3
  # PostgreSQL or MariaDB instead (the password is a secret, never written here):
  # url: postgresql+psycopg://hotline@db.example/hotline
  # password: {{credential: db-password}}      # the file {config_dir}/credentials/db-password

rules_dir: {config_dir}/sla_rules             # SLA rules; operator holiday overrides in sla_rules/holidays/

sources:
  - name: inbox                               # drop platform exports here; they move to done/ or failed/
    type: inbox
    path: {state_dir}/inbox

reports:
  output_dir: {state_dir}/reports

# Secrets are given as {{credential: NAME}} (the file {config_dir}/credentials/NAME, root-only, loaded by
# the unit's LoadCredential=), {{env: VARIABLE}} or {{file: PATH}}; never inline.
channels:
  console:
    type: console
  # wecom:
  #   type: wecom_bot
  #   key: {{credential: wecom-bot-key}}
  # sms:
  #   type: sms_aliyun
  #   access_key_id: {{credential: aliyun-access-key-id}}
  #   access_key_secret: {{credential: aliyun-access-key-secret}}
  #   sign_name: 某市12345热线
  #   template_code: SMS_000000000

default_channels: [console]

contacts:
  supervisors: []
  units: []
  # units:
  #   - name: 兴隆台区住建局
  #     contacts:
  #       - {{name: 王承办, role: handler, mobile: "13800001234", channels: [sms]}}

# health:
#   listen: 127.0.0.1:9817                    # /healthz and /metrics, loopback only
"""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "init", help="write a production config, the rules and the holiday folder (初始化配置)",
        description="Write config.yaml, sla_rules/ and credentials/ into the config directory, with every "
                    "writable path under the state directory. Refuses to overwrite anything.",
        epilog="example: hotline-sla init --config-dir /etc/hotline-sla --state-dir /var/lib/hotline-sla",
    )
    p.add_argument("--config-dir", type=Path, default=Path("/etc/hotline-sla"), metavar="DIR")
    p.add_argument("--state-dir", type=Path, default=Path("/var/lib/hotline-sla"), metavar="DIR")
    p.set_defaults(func=run_init)


def packaged_rules() -> list[tuple[str, bytes]]:
    """The default rule files shipped in the package (name, content)."""
    folder = resources.files("daemon").joinpath("sla_rules")
    return sorted((entry.name, entry.read_bytes()) for entry in folder.iterdir()
                  if entry.is_file() and entry.name.endswith((".yaml", ".yml")))


def run_init(args: argparse.Namespace) -> int:
    config_dir: Path = args.config_dir.absolute()
    state_dir: Path = args.state_dir.absolute()
    config_file, rules_dir = config_dir / "config.yaml", config_dir / "sla_rules"
    existing = [p for p in (config_file, rules_dir) if p.exists()]
    if existing:
        print(f"hotline-sla: init: {', '.join(map(str, existing))} already exist(s); nothing was written "
              "(move them away to start afresh)", file=sys.stderr)
        return 1
    rules = packaged_rules()
    if not rules:
        print("hotline-sla: init: the package ships no rules (daemon/sla_rules); reinstall the wheel",
              file=sys.stderr)
        return 1
    (rules_dir / "holidays").mkdir(parents=True)
    for name, content in rules:
        (rules_dir / name).write_bytes(content)
    (rules_dir / "holidays" / "README.txt").write_text(
        "Operator calendar overrides (YAML), e.g. a year the State Council has not yet published.\n", "utf-8")
    credentials = config_dir / "credentials"
    credentials.mkdir(mode=0o700, exist_ok=True)
    config_file.write_text(CONFIG_TEMPLATE.format(config_dir=config_dir, state_dir=state_dir), encoding="utf-8")
    print(f"wrote {config_file}, {rules_dir}/ ({len(rules)} rule file(s)), {credentials}/")
    print(f"next: edit {config_file}, then run `hotline-sla --config {config_file} config check` as the service user")
    return 0
