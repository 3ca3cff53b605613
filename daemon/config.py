"""``config.yaml``: load and validate, with errors that name the file and key and say what is valid.

Relative paths in the file are relative to the file's own folder, so the same config works wherever
the daemon is started from. ``$HOTLINE_SLA_DATABASE_URL`` overrides ``database.url``.
"""

from __future__ import annotations

import os
from datetime import time
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from daemon.errors import ConfigError
from daemon.glossary import ALERT_KINDS

Role = Literal["handler", "leader", "supervisor"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DatabaseConfig(_Strict):
    url: str = "sqlite:///var/hotline-sla.sqlite3"
    echo: bool = False
    # the password of `url`'s user, kept out of the file: {env: NAME}, {file: PATH} or {credential: NAME}
    password: dict[str, str] | None = None


class SourceConfig(BaseModel):
    """One case source; type-specific keys are validated by the source itself."""

    model_config = ConfigDict(extra="allow")
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    type: Literal["files", "inbox", "sql", "http"]
    enabled: bool = True
    #: files/inbox: the longest CSV field (characters) a row may have; a longer one rejects its row. The
    #: default is what Python's csv module allowed before (daemon.sources.csv_records.DEFAULT_MAX_FIELD_CHARS)
    max_field_chars: int = Field(131_072, ge=16, le=1 << 26)
    #: files/inbox: the row that holds the column names (1-based); None finds it within the first 20 rows
    header_row: int | None = Field(None, ge=1, le=1000)

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class ContactConfig(_Strict):
    name: str = Field(min_length=1)
    role: Literal["handler", "leader", "supervisor"] = "handler"
    mobile: str | None = Field(None, pattern=r"^(\+?86)?1[3-9]\d{9}$")
    wecom_userid: str | None = None
    email: str | None = Field(None, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    channels: list[str] = Field(default_factory=list)


class UnitConfig(_Strict):
    name: str = Field(min_length=1)
    aliases: list[str] = Field(default_factory=list)
    # 分组 in the monthly ranking (e.g. 市直, 县区基层); none: ``reports.default_group``
    group: str | None = Field(None, min_length=1)
    contacts: list[ContactConfig] = Field(default_factory=list)


class ContactsConfig(_Strict):
    units: list[UnitConfig] = Field(default_factory=list)
    supervisors: list[ContactConfig] = Field(default_factory=list)


def _handler_only() -> list[Role]:
    return ["handler"]


class RouteConfig(_Strict):
    """Who hears about an alert kind."""

    roles: list[Role] = Field(default_factory=_handler_only)
    # add the supervisors once a breach is older than this many working days (0 = never)
    supervisors_after_working_days: int = Field(0, ge=0)
    urgent: bool = False  # bypasses quiet hours


def _default_routes() -> dict[str, RouteConfig]:
    return {
        "warning": RouteConfig(roles=["handler"]),
        "return_window": RouteConfig(roles=["handler"]),
        "breach": RouteConfig(roles=["handler", "leader"]),
        "breach_repeat": RouteConfig(roles=["handler", "leader"], supervisors_after_working_days=2),
        "late_return": RouteConfig(roles=["supervisor"]),
        "unsigned": RouteConfig(roles=["handler", "leader"]),  # 未签收: the rule's sign_within has passed
        "first_contact": RouteConfig(roles=["handler", "leader"]),  # 未先行联系: its contact_within has passed
    }


class AlertsConfig(_Strict):
    # after the breach, repeat once per working day at this local time while the case stays open
    breach_repeat: bool = True
    breach_repeat_at: time = time(9, 0)
    # warn a unit that has not signed a case this long before its return window closes
    return_window_warning: bool = True


class QuietHours(_Strict):
    start: time = time(22, 0)
    end: time = time(7, 30)


class DispatchConfig(_Strict):
    batch_window_seconds: int = Field(120, ge=0, le=3600)
    max_attempts: int = Field(12, ge=1)
    backoff_base_seconds: float = Field(30, gt=0)
    backoff_cap_seconds: float = Field(3600, gt=0)
    dead_letter_after_hours: float = Field(24, gt=0)
    lease_seconds: int = Field(120, ge=10)
    # quiet hours per channel name; SMS-type channels default to 22:00-07:30 when not listed
    quiet_hours: dict[str, QuietHours | None] = Field(default_factory=dict)
    templates_dir: str | None = None
    # sends in flight at once within one dispatcher (daemon/pipeline/send_pool.py), in total and per channel
    # name; a channel not listed gets its type's default (daemon/pipeline/outbox.py CHANNEL_CONCURRENCY)
    concurrency: int = Field(32, ge=1, le=256)
    channel_concurrency: dict[str, int] = Field(default_factory=dict)
    # alerts listed in one message (one kind, one recipient, one round); the rest are counted in one line
    # (还有N件未列出) and marked sent with it: a burst after an outage stays one readable message
    max_items_per_message: int = Field(20, ge=1, le=500)

    @field_validator("channel_concurrency")
    @classmethod
    def _positive_slots(cls, value: dict[str, int]) -> dict[str, int]:
        for name, slots in value.items():
            if not 1 <= slots <= 256:
                raise ValueError(f"channel_concurrency.{name}: expected 1-256 sends at once, got {slots}")
        return value


class SchedulerConfig(_Strict):
    sync_interval_seconds: int = Field(300, ge=5)
    tick_interval_seconds: int = Field(60, ge=5)
    dispatch_interval_seconds: int = Field(5, ge=1)
    digest_time: time = time(8, 30)
    leader_lease_seconds: int = Field(30, ge=5)


class HealthConfig(_Strict):
    listen: str | None = None  # e.g. "127.0.0.1:9817"
    # the desk (值班台, read-only pages for supervisors) on the same listener: /, /units/<unit>, /cases/<number>
    desk: bool = True
    # optional: require this secret as a bearer token or a basic-auth password: {env: NAME}, {file: PATH} or
    # {credential: NAME}; /healthz and /metrics never ask for it
    desk_token: dict[str, str] | None = None
    desk_refresh_seconds: int = Field(60, ge=5, le=3600)  # the pages reload themselves this often


# --- reports (daily digest, month-end reminders, carry-over) ------------------------------------------


class MastheadConfig(_Strict):
    """The 通报's masthead and closing block (``reports.masthead``). The issue number (第N期) is kept in the
    database per ``series`` and year, and advances only when an issue is recorded (``report month --issue``)."""

    title: str = Field("营商环境建设情况通报", min_length=1)  # the red title
    subtitle: str | None = "（12345热线专题）"
    office: str = Field("营商环境建设领导小组办公室", min_length=1)  # 发文机关
    series: str = Field("12345", min_length=1, max_length=64)  # whose numbering
    submit_to: str | None = None  # 报送
    copy_to: str | None = None  # 抄送
    reviewed_by: str | None = None  # 审核
    edited_by: str | None = None  # 编辑
    copies: int | None = Field(None, ge=1)  # 共印 N 份


class ReportsConfig(_Strict):
    """Where report files (HTML, XLSX attachments) are written; relative to the config file's folder."""

    output_dir: str = "var/reports"
    # rows of each list in the HTML e-mail body; the attached files always carry every row
    email_list_rows: int = Field(200, ge=10, le=100_000)
    # the monthly ranking's groups (分组): units without a group are in default_group; ranked_groups get
    # 十佳/较差 (each ranked on its own, in this order), the other groups are appendices (附件)
    default_group: str = Field("基层承办单位", min_length=1)
    ranked_groups: list[str] = Field(default_factory=lambda: ["基层承办单位"], min_length=1)
    masthead: MastheadConfig = Field(default_factory=MastheadConfig)
    # months whose finished cases get their deadline and on-time verdict recomputed when the rules or the
    # calendar change (the current month and the ones before it): what the ranking still reports on
    recompute_months: int = Field(2, ge=2, le=24)


# --- scoring (the monthly ranking, `hotline-sla score`) ---------------------------------------------------


class ScoringConfig(BaseModel):
    """Weights, bonus and penalty amounts, and the ranking's definitions (``scoring:`` in config.yaml).

    Where the bulletins are silent the choice is a setting, and the default is the documented reading:

    - ``on_time_basis``: the bulletins never define 及时办结率 / 按时反馈率. ``fed_back_or_overdue``
      (default) is cases fed back within their SLA / (cases fed back + open cases already past their
      deadline), so sitting on a late case lowers the rate; ``fed_back`` counts fed-back cases only, which
      rewards a unit that never feeds back an overdue case (6.80 against 5.80 for one an hour late).
    - ``basically_satisfied_counts``: the note says 满意量 / 总评星量. We count 满意 and 基本满意 as
      satisfied by default (only 不满意件 are called out for review); set false to count 满意 alone.
    - ``unrated_satisfaction_rate``: a unit whose cases nobody rated yet has no satisfaction rate: it is
      shown ``—`` and kept out of the score (the other rates' weights scaled up to the full 10 points),
      unless a rate is configured here (e.g. 1 for the old reading "unrated counts as 100%"). An on-time
      rate with an empty denominator is likewise ``—`` and kept out.
    - ``high_star_min``: 高星件 is not defined. Default: a case with at least 5 stars, which means a
      five-star case earns both +0.02 and +0.1. The bulletins hint that 高星件 is rarer than that (units
      with many satisfied cases earn only 0.02-0.06), so ``null`` turns the high-star bonus off for
      platforms that do not flag such cases.
    - ``low_star_max``: the review list (低星件, 回头看) includes 4-star cases in bulletin 000, so
      low-star means stars <= 4 there, while the penalty applies below ``penalty_stars_below`` (4) stars.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    satisfaction_weight: Decimal = Field(default=Decimal(3), ge=0, description="满意率 weight")
    on_time_weight: Decimal = Field(default=Decimal(4), ge=0, description="及时办结率 weight")
    completion_weight: Decimal = Field(default=Decimal(3), ge=0, description="办结率 weight")
    five_star_bonus: Decimal = Field(default=Decimal("0.02"), ge=0, description="per five-star case")
    difficult_bonus: Decimal = Field(default=Decimal("0.02"), ge=0, description="per 疑难件")
    high_star_bonus: Decimal = Field(default=Decimal("0.1"), ge=0, description="per 高星件")
    low_star_penalty: Decimal = Field(default=Decimal("0.1"), ge=0, description="per case below 4 stars")
    overdue_penalty: Decimal = Field(default=Decimal("0.2"), ge=0, description="per 超期件")
    top_n: int = Field(default=10, ge=1, description="how many units are named 十佳")
    bottom_n: int = Field(default=5, ge=0, description="how many units are named 较差")
    on_time_basis: Literal["fed_back", "fed_back_or_overdue"] = "fed_back_or_overdue"
    basically_satisfied_counts: bool = True
    unrated_satisfaction_rate: Decimal | None = Field(default=None, ge=0, le=1)
    high_star_min: int | None = Field(default=5, ge=1, le=5)
    penalty_stars_below: int = Field(default=4, ge=1, le=5)
    low_star_max: int = Field(default=4, ge=1, le=5)
    summon_provincial_min: int = Field(default=10, ge=1, description="约谈: 10+ provincial cases …")
    summon_bottom_n: int = Field(default=10, ge=0, description="… while ranking in the bottom 10")

    @model_validator(mode="after")
    def _some_weight(self) -> ScoringConfig:
        if not (self.satisfaction_weight or self.on_time_weight or self.completion_weight):
            raise ValueError(
                "satisfaction_weight, on_time_weight and completion_weight are all 0: "
                "at least one rate must count (the bulletins use 3, 4 and 3)"
            )
        return self

    @classmethod
    def from_mapping(cls, data: dict[str, Any] | None, *, where: str = "scoring") -> ScoringConfig:
        """Validate ``data``; a bad value raises ConfigError naming ``where.key`` and what is valid."""
        try:
            return cls.model_validate(data or {})
        except ValidationError as exc:
            problems = []
            for err in exc.errors():
                key = ".".join(str(part) for part in (where, *err["loc"]))
                problems.append(f"{key}: {err['msg']} (got {err.get('input')!r})")
            raise ConfigError("; ".join(problems)) from None


# --- the whole file ---------------------------------------------------------------------------------


class Config(_Strict):
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    rules_dir: str = "sla_rules"
    holidays_dir: str | None = None  # default: <rules_dir>/holidays
    sources: list[SourceConfig] = Field(default_factory=list)
    channels: dict[str, dict[str, Any]] = Field(default_factory=lambda: {"console": {"type": "console"}})
    default_channels: list[str] = Field(default_factory=lambda: ["console"])
    contacts: ContactsConfig = Field(default_factory=ContactsConfig)
    routes: dict[str, RouteConfig] = Field(default_factory=_default_routes)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    dispatch: DispatchConfig = Field(default_factory=DispatchConfig)
    scheduler: SchedulerConfig = Field(default_factory=SchedulerConfig)
    scoring: ScoringConfig = Field(default_factory=ScoringConfig)
    health: HealthConfig = Field(default_factory=HealthConfig)
    reports: ReportsConfig = Field(default_factory=ReportsConfig)

    base_dir: Path = Field(default_factory=Path.cwd, exclude=True)
    source_file: str | None = Field(None, exclude=True)

    @field_validator("routes")
    @classmethod
    def _route_kinds(cls, value: dict[str, RouteConfig]) -> dict[str, RouteConfig]:
        for kind in value:
            if kind not in ALERT_KINDS:
                raise ValueError(f"unknown alert kind {kind!r}; valid: {', '.join(ALERT_KINDS)}")
        return {**_default_routes(), **value}

    @model_validator(mode="after")
    def _references(self) -> Config:
        names = set(self.channels)
        for ch in self.default_channels:
            if ch not in names:
                raise ValueError(f"default_channels: {ch!r} is not a configured channel; valid: {sorted(names)}")
        seen_sources: set[str] = set()
        for src in self.sources:
            if src.name in seen_sources:
                raise ValueError(f"sources: duplicate source name {src.name!r}")
            seen_sources.add(src.name)
        for unit in self.contacts.units:
            for c in unit.contacts:
                for ch in c.channels:
                    if ch not in names:
                        raise ValueError(
                            f"contacts.units[{unit.name}].{c.name}.channels: {ch!r} is not a configured "
                            f"channel; valid: {sorted(names)}"
                        )
        return self

    @model_validator(mode="after")
    def _concurrency_channels(self) -> Config:
        """A ``dispatch.channel_concurrency`` entry for a channel that does not exist is a typo: say so."""
        for name in self.dispatch.channel_concurrency:
            if name not in self.channels:
                raise ValueError(f"dispatch.channel_concurrency: {name!r} is not a configured channel; "
                                 f"valid: {sorted(self.channels)}")
        return self

    @classmethod
    def default(cls) -> Config:
        return cls()

    # --- resolved paths ---------------------------------------------------------------------------------

    def path(self, value: str) -> Path:
        p = Path(value)
        return p if p.is_absolute() else self.base_dir / p

    @property
    def rules_path(self) -> Path:
        return self.path(self.rules_dir)

    @property
    def holidays_path(self) -> Path:
        return self.path(self.holidays_dir) if self.holidays_dir else self.rules_path / "holidays"

    @property
    def reports_path(self) -> Path:
        return self.path(self.reports.output_dir)

    @property
    def database_url(self) -> str:
        """The URL to connect with; ``database.password`` (a secret reference) is filled in here."""
        url = os.environ.get("HOTLINE_SLA_DATABASE_URL") or self.database.url
        if self.database.password is not None:
            from sqlalchemy.engine import make_url

            from notifiers.base import ChannelConfigError
            from notifiers.secrets import SecretResolver

            try:
                secret = SecretResolver().resolve("database.password", self.database.password)
            except ChannelConfigError as exc:
                raise ConfigError(str(exc)) from None
            return make_url(url).set(password=secret.reveal()).render_as_string(hide_password=False)
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/") and url != "sqlite://":
            rel = url[len(prefix) :]
            if rel and rel != ":memory:":
                return prefix + str(self.path(rel))
        return url


def load_config(path: Path) -> Config:
    """Read and validate ``path``; :class:`ConfigError` names the file and the key."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections (database, sources, channels, …)")
    try:
        config = Config.model_validate({**data, "base_dir": path.resolve().parent, "source_file": str(path)})
    except ValidationError as exc:
        raise ConfigError(format_config_errors(str(path), exc)) from None
    return config


def format_config_errors(file: str, exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif err["type"] == "missing":
            msg = "required"
        elif err["type"] == "string_pattern_mismatch" and "mobile" in key:
            msg = "not a mainland mobile number (11 digits starting 13-19)"  # never echo the number
        lines.append(f"{file}: {key}: {msg}")
    return "\n".join(lines)
