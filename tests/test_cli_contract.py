"""Issue 14, item 5: every sub-command's ``--help`` has a description and an example, ``--config`` is
accepted after the sub-command, and ``sync`` reports rejected rows like ``import``, with the same exit code."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from daemon.cli import build_parser
from tests.daemon_proc import write_config


def _commands() -> Iterator[tuple[str, ...]]:
    def walk(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield (*path, name)
                    yield from walk(sub, (*path, name))

    return walk(build_parser(), ())  # no argv: the whole tree (with argv, only the named command is imported)


@pytest.mark.parametrize("command", [" ".join(c) for c in _commands()])
def test_every_subcommand_help_has_a_description_and_an_example(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as done:
        build_parser(command.split()).parse_args([*command.split(), "--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    usage, _, rest = text.partition("\n\n")  # the usage may wrap; the description follows a blank line
    assert usage.startswith("usage: ") and rest.strip() and not rest.startswith(("options:", "positional")), text
    assert "\nexample: hotline-sla " in text and command.split(maxsplit=1)[0] in text.split("example:")[1], text


def test_config_is_accepted_after_the_subcommand(tmp_path: Path, cli: Any) -> None:
    cfg = write_config(tmp_path / "config.yaml", database_url=f"sqlite:///{tmp_path / 'db.sqlite3'}",
                       extra="health: {listen: '0.0.0.0:1'}\n")  # a problem only this file has
    after = cli("config", "check", "--json", "--config", str(cfg))
    before = cli("--config", str(cfg), "config", "check", "--json")
    assert after.code == before.code == 1
    assert json.loads(after.out) == json.loads(before.out)
    assert json.loads(after.out)["summary"]["config"] == str(cfg)


def test_sync_and_import_report_rejected_rows_alike(tmp_path: Path, cli: Any) -> None:
    cases = tmp_path / "cases.csv"
    cases.write_text("工单编号,来源,诉求类型,承办单位,受理时间,问题摘要\n"
                     "2611100001,市级,投诉,兴隆台区住建局,2026-11-05 09:00,正常\n"
                     "2611100002,市级,投诉,兴隆台区住建局,不是时间,坏行\n", encoding="utf-8")
    cfg = write_config(tmp_path / "config.yaml", database_url=f"sqlite:///{tmp_path / 'db.sqlite3'}",
                       extra=f"sources: [{{name: s, type: files, path: {cases}}}]\n")
    imported = cli("--config", str(cfg), "import", str(cases), "--now", "2026-11-20 09:00")
    synced = cli("--config", str(cfg), "sync", "--now", "2026-11-20 09:00")
    assert imported.code == synced.code == 1
    row_lines = [line for line in imported.out.splitlines() if line.startswith("  row ")]
    assert len(row_lines) == 1 and row_lines[0].startswith("  row 3: ")
    assert [line for line in synced.out.splitlines() if line.startswith("  row ")] == row_lines
    doc_import = json.loads(cli("--config", str(cfg), "import", str(cases), "--json").out)
    doc_sync = json.loads(cli("--config", str(cfg), "sync", "--json").out)
    assert doc_sync["sources"]["s"]["rejected"] == doc_import["rejected"]


def test_init_writes_a_config_that_checks_and_never_overwrites(
    tmp_path: Path, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    etc, state = tmp_path / "etc", tmp_path / "state"
    assert cli("init", "--config-dir", str(etc), "--state-dir", str(state)).code == 0
    text = (etc / "config.yaml").read_text(encoding="utf-8")
    assert "samples/" not in text and "# wecom:" in text and "{credential: wecom-bot-key}" in text
    assert (etc / "sla_rules" / "default.yaml").read_bytes() == (Path(__file__).parent.parent / "sla_rules"
                                                                  / "default.yaml").read_bytes()
    assert (etc / "sla_rules" / "holidays").is_dir() and (etc / "credentials").stat().st_mode & 0o077 == 0
    before = (etc / "config.yaml").read_bytes()
    again = cli("init", "--config-dir", str(etc), "--state-dir", str(state))
    assert again.code == 1 and "already exist" in again.err and (etc / "config.yaml").read_bytes() == before
    state.mkdir()
    monkeypatch.setenv("STATE_DIRECTORY", str(state))
    check = cli("config", "check", "--json", "--config", str(etc / "config.yaml"))
    doc = json.loads(check.out)
    assert check.code == 0, doc
    assert all(path.startswith(str(state)) for path in doc["summary"]["writable_paths"].values())
