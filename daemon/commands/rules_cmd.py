"""``hotline-sla rules check|test``: validate the rule files; run the operator's rule tests."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import yaml

from daemon.core.holidays import load_overrides
from daemon.core.rules import Deadline, RuleSet, check_rules, load_rules
from daemon.core.timeutil import TimeFormatError, iso_local, parse_time
from daemon.errors import ConfigError
from daemon.output import print_json


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("rules", help="SLA rules (办理时限规则)")
    rsub = p.add_subparsers(dest="rules_command", metavar="SUBCOMMAND", required=True)
    c = rsub.add_parser("check", help="validate sla_rules/*.yaml and sla_rules/holidays/*.yaml")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=run_check)
    t = rsub.add_parser("test", help="run the rule tests in sla_rules/tests/*.yaml")
    t.add_argument("--json", action="store_true")
    t.set_defaults(func=run_test)


def run_check(args: argparse.Namespace) -> int:
    config = args.ctx.config
    errors = check_rules(config.rules_path)
    try:
        load_overrides(config.holidays_path)
    except ConfigError as exc:
        errors.append(str(exc))
    rules: list[dict[str, Any]] = []
    if not errors:
        rs: RuleSet = args.ctx.rules
        rules = [
            {"id": r.id, "name": r.name, "purpose": r.purpose, "limit": r.describe_limit(), "file": r.file}
            for r in rs.rules
        ]
    if args.json:
        print_json({"ok": not errors, "errors": errors, "rules": rules})
    elif errors:
        for e in errors:
            print(f"error: {e}")
        print(f"{len(errors)} error(s) in {config.rules_path}")
    else:
        for r in rules:
            print(f"ok  {r['id']:<22} {r['purpose']:<8} {r['limit']:<10} {r['name']}")
        print(f"{len(rules)} rules valid in {config.rules_path}")
    return 1 if errors else 0


def run_test(args: argparse.Namespace) -> int:
    config = args.ctx.config
    try:
        rs: RuleSet = args.ctx.rules
    except ConfigError as exc:
        print(f"error: {exc}")
        return 1
    results: list[dict[str, Any]] = []
    test_dir = config.rules_path / "tests"
    files = sorted([*test_dir.glob("*.yaml"), *test_dir.glob("*.yml")]) if test_dir.is_dir() else []
    for path in files:
        results.extend(_run_file(path, rs))
    failed = [r for r in results if not r["ok"]]
    if args.json:
        print_json({"passed": len(results) - len(failed), "failed": len(failed), "results": results})
    else:
        for r in results:
            print(f"{'PASS' if r['ok'] else 'FAIL'}  {r['file']}: {r['name']}")
            for problem in r["problems"]:
                print(f"      {problem}")
        print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed or not results else 0


def _run_file(path: Path, rs: RuleSet) -> list[dict[str, Any]]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
        return [{"file": str(path), "name": "(file)", "ok": False, "problems": [f"cannot read: {exc}"]}]
    tests = data.get("tests") if isinstance(data, dict) else None
    if not isinstance(tests, list):
        return [{"file": str(path), "name": "(file)", "ok": False, "problems": ["expected 'tests:' with a list"]}]
    if isinstance(data, dict) and data.get("rules_dir") is not None:
        # the file's tests run against another rule directory (relative to the file), e.g. example rules
        directory = path.parent / str(data["rules_dir"])
        try:
            rs = load_rules(directory, rs.rules[0].calendar)
        except ConfigError as exc:
            return [{"file": str(path), "name": "(file)", "ok": False, "problems": [f"rules_dir: {exc}"]}]
    return [_run_one(path, i, t, rs) for i, t in enumerate(tests)]


def _window_problems(test: dict[str, Any], d: Deadline) -> list[str]:
    """A test's expected ``sign_by`` (签收时限) and ``contact_by`` (先行联系) against the deadline's; null: none."""
    problems = []
    for key, got in (("sign_by", d.sign_by), ("contact_by", d.contact_by)):
        if key in test:
            want = None if test[key] is None else parse_time(str(test[key]))
            if got != want:
                problems.append(f"{key}: expected {test[key]}, got {iso_local(got) if got else None}")
    return problems


def _run_one(path: Path, index: int, test: Any, rs: RuleSet) -> dict[str, Any]:
    name = str(test.get("name", f"tests[{index}]")) if isinstance(test, dict) else f"tests[{index}]"
    problems: list[str] = []
    result = {"file": str(path), "name": name, "ok": False, "problems": problems}
    if not isinstance(test, dict):
        problems.append("a test is a mapping with rule/received/due (sign_by, contact_by) or case/expect_rule")
        return result
    try:
        if "case" in test:
            got = rs.match(test["case"]).id
            if got != test.get("expect_rule"):
                problems.append(f"expected rule {test.get('expect_rule')!r}, got {got!r}")
        else:
            rule = rs.get(str(test["rule"]))
            d = rule.deadline(parse_time(str(test["received"])))
            if "due" in test and d.due_at != parse_time(str(test["due"])):
                problems.append(f"due: expected {test['due']}, got {iso_local(d.due_at)}")
            if "provisional" in test and d.provisional != bool(test["provisional"]):
                problems.append(f"provisional: expected {test['provisional']}, got {d.provisional}")
            problems.extend(_window_problems(test, d))
            if "warnings" in test:
                want = [parse_time(str(w)) for w in test["warnings"]]
                if [w.at for w in d.warnings] != want:
                    problems.append(
                        f"warnings: expected {test['warnings']}, got {[iso_local(w.at) for w in d.warnings]}"
                    )
    except KeyError as exc:
        problems.append(f"missing key {exc}; a test needs rule, received and due (or case and expect_rule)")
    except (TimeFormatError, ConfigError, ValueError) as exc:
        problems.append(str(exc))
    result["ok"] = not problems
    return result
