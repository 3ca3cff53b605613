"""The schema of ``sla_rules/*.yaml`` (pydantic), and error messages that name file, rule and key.

A validated rule becomes plain data (:meth:`RuleModel.to_spec`, :mod:`daemon.core.rule_spec`): the rules
compute with that, and the compiled rules cache stores it, so only a full parse imports pydantic.
"""

from __future__ import annotations

import re
from datetime import time, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from daemon.core.cases import Category, Priority, Source, Status
from daemon.core.rule_spec import MonthEndSettings, RuleSpec, WarnLead
from daemon.core.workhours import DEFAULT_SCHEDULE, WorkSchedule

MATCH_KEYS = {
    "source": {s.value for s in Source},
    "category": {c.value for c in Category},
    "status": {s.value for s in Status},
    "priority": {p.value for p in Priority},  # 紧急程度: urgent | normal
    "unit": None,  # free text
    "district": None,
    "domain": None,
}

_LEAD = re.compile(
    r"^\s*(?P<n>\d+)\s*(?P<unit>h|hours?|m|min|minutes?|d|days?|natural days?|working days?|working hours?"
    r"|工作日|工作小时|小时|天)\s*$"
)


class WarnLeadModel(BaseModel):
    """A warning lead time.

    ``24h`` / ``30m``: that long before the due instant. ``1 working day`` / ``2 days``: at the start of
    business (the rule's ``working_day_starts``) on the last day of the period (1) or the day(s) before it.
    ``2 working hours`` (工作小时): that much working time before the due instant, on the rule's schedule.
    """

    model_config = ConfigDict(frozen=True)
    text: str
    delta: timedelta = timedelta(0)
    working_days: int = 0
    natural_days: int = 0
    working_hours: int = 0

    @classmethod
    def parse(cls, value: Any) -> WarnLeadModel:
        if isinstance(value, WarnLeadModel):
            return value
        m = _LEAD.match(str(value))
        if not m:
            raise ValueError(
                f"{value!r} is not a lead time; write e.g. '24h', '4h', '30m', '1 day', '2 days', '1 working day'"
                " or '2 working hours'"
            )
        n, unit = int(m["n"]), m["unit"]
        if n <= 0:
            raise ValueError(f"{value!r}: a lead time must be positive")
        if unit.startswith("working hour") or unit == "工作小时":
            return cls(text=str(value).strip(), working_hours=n)
        if unit.startswith("working") or unit == "工作日":
            return cls(text=str(value).strip(), working_days=n)
        if unit in ("m", "min") or unit.startswith("minute"):
            return cls(text=str(value).strip(), delta=timedelta(minutes=n))
        if unit in ("d", "天") or unit.startswith(("day", "natural")):
            return cls(text=str(value).strip(), natural_days=n)
        return cls(text=str(value).strip(), delta=timedelta(hours=n))

    def to_spec(self) -> WarnLead:
        return WarnLead(self.text, self.delta, self.working_days, self.natural_days, self.working_hours)


Lead = Annotated[WarnLeadModel, BeforeValidator(WarnLeadModel.parse)]


KINDS = ("natural_days", "working_days", "hours", "working_hours", "same_day")


def _schedule(value: Any) -> Any:
    if value is None or isinstance(value, WorkSchedule):
        return value
    if not isinstance(value, list | tuple):
        raise ValueError(f"{value!r}: give a list of working periods, e.g. ['08:30-12:00', '13:30-17:30']")
    return WorkSchedule.parse(value)


Schedule = Annotated[WorkSchedule, BeforeValidator(_schedule)]


class DeadlineSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    natural_days: int | None = Field(None, ge=1, le=366)
    working_days: int | None = Field(None, ge=1, le=250)
    hours: int | None = Field(None, ge=1, le=24 * 366)
    working_hours: int | None = Field(None, ge=1, le=2000)  # 工作小时, on the rule's working_schedule
    same_day: Literal[True] | None = None  # 当日: the end of the day of dispatch (or of the next working day)

    @model_validator(mode="after")
    def _exactly_one(self) -> DeadlineSpec:
        given = [k for k in KINDS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                f"exactly one of {', '.join(KINDS)} is required"
                + (f" (got {', '.join(given)})" if given else " (got none)")
            )
        return self


def _as_list(value: Any) -> Any:
    if isinstance(value, str | int):
        return [str(value)]
    return value


class RuleModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str = Field(min_length=1)
    purpose: Literal["resolve", "return"] = "resolve"
    match: dict[str, Annotated[list[str], BeforeValidator(_as_list)]] = Field(default_factory=dict)
    deadline: DeadlineSpec
    roll_to_workday: bool = False
    end_of_day: str = "24:00"
    working_day_starts: time = time(8, 30)
    warn_before: list[Lead] = Field(default_factory=list)
    # which deadline drives warnings and breaches when the export carries the platform's own (办理时限):
    # ours, the platform's, or the earlier of the two (the safe side)
    deadline_source: Literal["computed", "platform", "earlier"] = "earlier"
    # the working periods of a working day for working_hours, same_day and 'N working hours' leads;
    # None: the rule file's top-level working_schedule, else 08:30-12:00 and 13:30-17:30
    working_schedule: Schedule | None = None
    # 签收时限 / 先行联系 (issue 12 item 4): periods from the unit's clock (received_at: dispatch) in the deadline
    # vocabulary, counted on the same calendar and schedule; each raises one alert (unsigned / first_contact)
    # when the case is still not signed / contacted at its end
    sign_within: DeadlineSpec | None = None
    contact_within: DeadlineSpec | None = None

    @field_validator("match")
    @classmethod
    def _match_keys(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for key, values in value.items():
            if key not in MATCH_KEYS:
                raise ValueError(f"unknown match key {key!r}; valid: {', '.join(MATCH_KEYS)}")
            allowed = MATCH_KEYS[key]
            if not values:
                raise ValueError(f"match.{key}: give at least one value")
            for v in values:
                if allowed is not None and v not in allowed:
                    raise ValueError(f"match.{key}: {v!r} is not valid; valid: {', '.join(sorted(allowed))}")
        return value

    @field_validator("end_of_day")
    @classmethod
    def _end_of_day(cls, value: str) -> str:
        m = re.fullmatch(r"(\d{1,2}):(\d{2})", value.strip())
        if not m or not (0 <= int(m[1]) <= 24 and 0 <= int(m[2]) < 60) or (int(m[1]) == 24 and int(m[2])):
            raise ValueError(f"{value!r} is not a time of day; write HH:MM from 00:00 to 24:00 (the default)")
        return value.strip()

    @model_validator(mode="after")
    def _options_fit_basis(self) -> RuleModel:
        if self.roll_to_workday and self.deadline.natural_days is None:
            raise ValueError("roll_to_workday applies only to natural_days deadlines")
        if (self.deadline.hours is not None or self.deadline.working_hours is not None) and self.end_of_day != "24:00":
            raise ValueError("end_of_day applies only to day deadlines, not to hours")
        if self.purpose == "return" and (self.sign_within is not None or self.contact_within is not None):
            raise ValueError("sign_within and contact_within apply only to resolve rules (purpose: resolve)")
        return self

    def to_spec(self, file_schedule: WorkSchedule = DEFAULT_SCHEDULE) -> RuleSpec:
        """The rule as plain data; ``file_schedule`` is its file's ``working_schedule`` (the rule's own wins)."""
        d = self.deadline
        return RuleSpec(
            id=self.id, name=self.name, purpose=self.purpose,
            match={key: tuple(values) for key, values in self.match.items()},
            natural_days=d.natural_days, working_days=d.working_days, hours=d.hours,
            working_hours=d.working_hours, same_day=bool(d.same_day),
            roll_to_workday=self.roll_to_workday, end_of_day=self.end_of_day,
            working_day_starts=self.working_day_starts,
            warn_before=tuple(lead.to_spec() for lead in self.warn_before),
            deadline_source=self.deadline_source,
            working_schedule=self.working_schedule or file_schedule,
            sign_within=self._window_spec(self.sign_within, "sign_within", file_schedule),
            contact_within=self._window_spec(self.contact_within, "contact_within", file_schedule),
        )

    def _window_spec(self, period: DeadlineSpec | None, name: str, file_schedule: WorkSchedule) -> RuleSpec | None:
        """A sign or contact window as a rule of its own: this rule's calendar settings, the window's period."""
        if period is None:
            return None
        return self.model_copy(update={
            "id": f"{self.id}.{name}", "deadline": period, "warn_before": [], "sign_within": None,
            "contact_within": None, "roll_to_workday": False, "deadline_source": "computed",
        }).to_spec(file_schedule)


class MonthEndModel(BaseModel):
    """Month-end zero backlog (月底清零): when units are reminded of their open cases."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    enabled: bool = True
    # reminders N working days before the month's last working day …
    reminder_working_days_before: list[Annotated[int, Field(ge=1, le=20)]] = Field(default_factory=lambda: [3, 1])
    # … and on the morning of the last working day itself
    remind_on_last_working_day: bool = True
    reminder_time: time = time(9, 0)
    # include cases carried over from earlier months (上月结存) as well as this month's
    include_carried_over: bool = True
    # the carry-over report (结存) to supervisors on the first working day of the next month
    carry_over_report: bool = True
    carry_over_report_time: time = time(9, 0)

    def to_spec(self) -> MonthEndSettings:
        return MonthEndSettings(
            enabled=self.enabled, reminder_working_days_before=tuple(self.reminder_working_days_before),
            remind_on_last_working_day=self.remind_on_last_working_day, reminder_time=self.reminder_time,
            include_carried_over=self.include_carried_over, carry_over_report=self.carry_over_report,
            carry_over_report_time=self.carry_over_report_time,
        )


class RuleFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: Literal[1] = 1
    rules: list[RuleModel] = Field(default_factory=list)
    month_end: MonthEndModel | None = None
    working_schedule: Schedule = DEFAULT_SCHEDULE  # for every rule of this file without its own


def format_validation_error(file: str, exc: ValidationError, data: Any) -> list[str]:
    """One line per problem: ``file: rule 'id': key: message``."""
    lines = []
    for err in exc.errors():
        loc = list(err["loc"])
        where = file
        if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
            idx = loc[1]
            rule_id = None
            if isinstance(data.get("rules"), list) and idx < len(data["rules"]):
                item = data["rules"][idx]
                rule_id = item.get("id") if isinstance(item, dict) else None
            where += f": rule {rule_id!r}" if rule_id else f": rules[{idx}]"
            loc = loc[2:]
        key = ".".join(str(p) for p in loc) or "(rule)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif err["type"] == "missing":
            msg = "required"
        lines.append(f"{where}: {key}: {msg}")
    return lines
