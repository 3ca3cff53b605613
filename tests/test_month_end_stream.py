"""Month-end lists streamed from the store (issue 15 item 3): the files written from the stream hold exactly
what the in-memory rendering holds, on every database, and the memory does not grow with the store."""

from __future__ import annotations

import io
import tracemalloc
from dataclasses import replace
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import select, type_coerce
from sqlalchemy.types import NullType

from daemon.core.calendar import WorkCalendar
from daemon.core.rules import RuleSet
from daemon.core.timeutil import parse_time
from daemon.reports.jobs import run_month_end_job
from daemon.reports.month_end import carry_over, render_carry_over, write_carry_over
from daemon.reports.xlsx_writer import Sheet, workbook_bytes
from daemon.storage.models import outbox
from daemon.storage.store import Store
from tests.test_month_end import ORPHAN, UNIT, job_config, record

THIRD = "兴隆台区水务局"


def sheet_values(data: bytes) -> dict[str, list[tuple[object, ...]]]:
    book = openpyxl.load_workbook(io.BytesIO(data), read_only=True)
    return {ws.title: [tuple(r) for r in ws.iter_rows(values_only=True)] for ws in book.worksheets}


def seed(store: Store, rules: RuleSet) -> None:
    store.upsert_cases([
        record("A-1", UNIT, "2026-04-20 10:00"),  # carried over
        record("A-2", UNIT, "2026-05-03 10:00"),
        record("A-3", UNIT, "2026-05-20 10:00"),
        record("B-1", ORPHAN, "2026-05-21 10:00"),
        record("B-2", ORPHAN, "2026-05-02 10:00"),
        record("C-1", THIRD, "2026-05-22 10:00"),
        record("=HYPERLINK(1)", THIRD, "2026-05-23 10:00"),  # formula-looking: stays text when streamed
    ], rules=rules, now=parse_time("2026-05-23 12:00"), source_name="test")


def test_streamed_carry_over_files_equal_the_in_memory_rendering(store: Store, rules: RuleSet, tmp_path: Path) -> None:
    seed(store, rules)
    now = parse_time("2026-06-01 09:00")
    with store.engine.connect() as conn:
        report = carry_over(conn, 2026, 5, now)
    # most first, then by name (水 U+6C34 before 环 U+73AF)
    assert [(u.unit, u.this_month, u.carried) for u in report.units] == [(UNIT, 2, 1), (THIRD, 2, 0), (ORPHAN, 2, 0)]
    assert report.total == 7
    _, html, xlsx, _ = render_carry_over(report, hint="")
    message = write_carry_over(report, tmp_path / "c.html", tmp_path / "c.xlsx", hint="", email_rows=2)
    assert (tmp_path / "c.html").read_text() == html
    streamed, in_memory = sheet_values((tmp_path / "c.xlsx").read_bytes()), sheet_values(xlsx)
    assert streamed == in_memory
    listed = [r[1] for r in streamed["结存工单"][2:9]]
    assert listed == ["A-1", "A-2", "A-3", "C-1", "=HYPERLINK(1)", "B-2", "B-1"]  # units most first, oldest first
    assert [r[0] for r in streamed["结存工单"][2:9]] == list(range(1, 8))
    assert "A-2" in message.html and "A-3" not in message.html  # the e-mail body lists email_rows cases
    assert "仅列出前 2 条，共 7 条" in message.html
    assert not list(tmp_path.glob(".*.tmp"))  # written through a rename


def test_unrouted_reminder_lists_exactly_the_unrouted_units_cases(
    store: Store, rules: RuleSet, calendar: WorkCalendar, tmp_path: Path
) -> None:
    seed(store, rules)
    run_month_end_job(store, rules, calendar, job_config(tmp_path), parse_time("2026-05-26 09:05"))
    with store.engine.connect() as conn:
        rows = conn.execute(select(outbox).where(outbox.c.kind == "month_end")).all()
    [orphan] = [r for r in rows if r.recipient["role"] == "supervisor"]
    assert orphan.payload["report"]["units"] == sorted([ORPHAN, THIRD])
    assert orphan.payload["rendered"]["sms_params"]["count"] == "4"
    data = Path(orphan.payload["rendered"]["attachments"][0]["path"]).read_bytes()
    [sheet] = sheet_values(data).values()
    body = [r for r in sheet[2:] if r and r[0] is not None]
    assert [(r[0], r[1], r[3]) for r in body] == [
        (1, "C-1", THIRD), (2, "=HYPERLINK(1)", THIRD), (3, "B-2", ORPHAN), (4, "B-1", ORPHAN)]


def test_units_that_a_collation_equates_stay_apart(store: Store, rules: RuleSet, tmp_path: Path) -> None:
    """MariaDB's default collation equates "Unit" and "unit " (case, trailing space): grouped by the
    collation's order, their cases interleaved and a unit got two reminders."""
    from daemon.reports.backlog import BacklogQuery, backlog_per_unit

    store.upsert_cases([
        record("U-1", "Unit", "2026-05-01 10:00"), record("U-2", "unit ", "2026-05-02 10:00"),
        record("U-3", "Unit", "2026-05-03 10:00"), record("U-4", "unit ", "2026-05-04 10:00"),
    ], rules=rules, now=parse_time("2026-05-05 12:00"), source_name="test")
    with store.engine.connect() as conn:
        groups = [(u, [c.number for c in items]) for u, items in
                  backlog_per_unit(conn, BacklogQuery(2026, 5, parse_time("2026-05-26 09:00")))]
    assert groups == [("Unit", ["U-1", "U-3"]), ("unit ", ["U-2", "U-4"])]


def test_a_streamed_sheet_writes_the_same_xml_as_a_listed_one() -> None:
    rows = [(i, f"=x{i}", "摘要<&>") for i in range(4_500)]  # crosses the 2,000-row write blocks
    listed, streamed = Sheet("s"), Sheet("s", body=iter(rows))  # a one-shot iterator: read once
    listed.append(["标题"])
    streamed.append(["标题"])
    listed.rows.extend((0, r) for r in rows)
    listed.append(["注"])
    streamed.tail.append((0, ["注"]))
    assert sheet_values(workbook_bytes([listed])) == sheet_values(workbook_bytes([streamed]))


def _peak_bytes(store: Store, tmp_path: Path) -> int:
    tracemalloc.start()
    try:
        with store.engine.connect() as conn:
            report = carry_over(conn, 2026, 11, parse_time("2026-12-01 09:00"))
        write_carry_over(report, tmp_path / "c.html", tmp_path / "c.xlsx", hint="")
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.slow
def test_carry_over_memory_does_not_grow_with_the_open_cases(tmp_path: Path) -> None:
    """Failed before streaming: the report held every case and the whole page and workbook (8x the cases,
    ~8x the peak)."""
    from bench.digest_bench import generate

    peaks = []
    for n in (5_000, 40_000):
        db = tmp_path / f"s{n}.sqlite3"
        generate(db, n, n // 20, 50)
        store = Store(f"sqlite:///{db}")
        try:
            peaks.append(_peak_bytes(store, tmp_path))
        finally:
            store.close()
    assert peaks[1] < 1.5 * peaks[0], peaks


def test_the_carry_over_rows_from_plain_store_rows_equal_those_from_case_records(store: Store, rules: RuleSet) -> None:
    """The carry-over lists its cases from plain rows (no record per case, each deadline's text made once):
    they must say exactly what the reminders' rows from :class:`BacklogCase` records say, on every database:
    carried and of the month, overdue and not, provisional deadlines (2027 is not yet published)."""
    from daemon.reports.case_list import case_rows

    store.upsert_cases([
        record("N-1", UNIT, "2026-11-20 10:00"),  # carried over
        record("D-1", UNIT, "2026-12-01 10:00"),  # overdue by December's end
        record("D-2", UNIT, "2026-12-01 10:00"),  # the same deadline: its text made once
        record("D-3", THIRD, "2026-12-30 16:30"),  # due in January 2027: provisional, not yet overdue
        replace(record("=1+1", THIRD, "2026-12-29 08:00"), summary="<b>噪音</b> & \x07扰民"),
        replace(record("D-5", ORPHAN, "2026-12-28 23:59"), summary=None),
    ], rules=rules, now=parse_time("2026-12-30 17:00"), source_name="test")
    with store.engine.connect() as conn:
        report = carry_over(conn, 2026, 12, parse_time("2027-01-04 09:00"))
    listed = list(report.listed())
    assert listed == list(case_rows(report.cases()))
    assert {r[1] for r in listed} == {"N-1", "D-1", "D-2", "D-3", "=1+1", "D-5"}
    by_number = {r[1]: r for r in listed}
    assert by_number["N-1"][6] == "上月及以前结存" and by_number["D-1"][6] == "本月交办"
    assert by_number["D-1"][7] == "已超期" and by_number["D-3"][7] == ""
    assert by_number["D-3"][5].endswith("（暂定）") and by_number["D-5"][2] == ""


def test_plain_rows_write_the_same_sheet_xml_as_cell_by_cell() -> None:
    """Body rows skip the per-cell checks when a cell is an integer or text with nothing to filter, escape
    or guard; every other cell still goes through the one cell writer: the XML is byte for byte the same."""
    import zipfile
    from decimal import Decimal

    from daemon.reports.xlsx_writer import STYLE_PLAIN, PrintSetup

    rows: list[list[object]] = [
        [1, "工单", "", None, 0, -3, True, 2.5, Decimal("0.10")],
        ["=SUM(A1)", "+1", "-2", "@x", "\tt", "\rr", "a-b", "a=b", "中文"],
        ["<b>", "a&b", "x>y", "bell\x07", "\ufffe", "ok", "'quoted'", '"dq"', "line\nbreak"],
        # integers and text only: one format per shape when nothing needs guarding, else cell by cell
        [7, "工单", "", "2026-11-30 24:00（暂定）", "已超期", 0, "a-b", "a=b", ""],
        [8, "", "工单", "", "", -1, "line\nbreak", "本月交办", "x"],
        [9, "ok\n=not a formula", "a", "b", "c", 10, "d", "e", "f"],  # a trigger after a newline: slow way
        [10, "ok", "<b>", "b", "c", 11, "d", "e", "f"],
        [11, "ok", "a", "b", "c", 12, "d", "e", "-1"],
        [12, "ok", "a", "b", "c", 13, "d", "e"],  # shorter
    ]
    fast, reference = Sheet("s"), Sheet("s")
    for row in rows:
        fast.append(row, STYLE_PLAIN)  # type: ignore[arg-type]
        reference.append(row, [STYLE_PLAIN] * len(row))  # type: ignore[arg-type]

    def sheet_xml(sheet: Sheet, setup: PrintSetup | None = None) -> bytes:
        with zipfile.ZipFile(io.BytesIO(workbook_bytes([sheet], None if setup is None else [setup]))) as z:
            return z.read("xl/worksheets/sheet1.xml")

    assert sheet_xml(fast) == sheet_xml(reference)
    # streamed (the body: each row of one shape written with its <row> element), with and without heights
    assert sheet_xml(Sheet("s", body=iter(rows))) == sheet_xml(reference)  # type: ignore[arg-type]
    tall = PrintSetup(row_heights={4: 30.0, 5: 45.0})
    assert sheet_xml(Sheet("s", body=iter(rows)), tall) == sheet_xml(reference, tall)  # type: ignore[arg-type]
    assert b'<row r="4" ht="30" customHeight="1">' in sheet_xml(Sheet("s", body=iter(rows)), tall)  # type: ignore[arg-type]
    assert b"<v>1</v>" in sheet_xml(fast) and b"&lt;b&gt;" in sheet_xml(fast)
    assert b'<c r="B6" t="inlineStr"><is><t xml:space="preserve">ok\n=not a formula<' in sheet_xml(fast)
    assert b'<c r="I8" s="5" t="inlineStr"><is><t xml:space="preserve">-1</t>' in sheet_xml(fast)


def test_html_rows_of_one_shape_equal_the_cell_by_cell_rows() -> None:
    """A row of integers and text is written by one format per shape unless a text needs escaping: the
    HTML is the same as each cell escaped by markupsafe (integers as they print)."""
    from markupsafe import escape

    from daemon.reports.tabular import ReportTable, render_html_page

    rows: list[list[object]] = [
        [1, "工单", "", "2026-11-30 24:00（暂定）", "已超期"],
        [2, "<b>噪音</b> & 扰民", "'q'", '"d"', ""],
        [3, "a", "b"],  # shorter than the head
        [4, "a", "b", "c", "d", "e"],  # longer: the extra cell is not shown
        [5, True, 2.5, None, "x"],  # not integers and text: cell by cell
        [0, "", "", "", ""],
    ]
    numeric = [True, False, False, False, False]
    heads = ['<td class="num">' if n else "<td>" for n in numeric]
    reference = "\n".join(
        "<tr>" + "".join(f"{h}{escape(v) if isinstance(v, str) else v}</td>" for h, v in zip(heads, row, strict=False))
        + "</tr>" for row in rows)
    page = render_html_page("t", "s", [], [ReportTable("t", "s", ("a", "b", "c", "d", "e"), rows,  # type: ignore[arg-type]
                                                       numeric=tuple(numeric))])
    assert reference in page  # the whole body, byte for byte
    assert "&lt;b&gt;噪音&lt;/b&gt; &amp; 扰民" in reference and "<td>e</td>" not in reference


def test_the_carry_over_lists_many_units_most_first(store: Store, rules: RuleSet) -> None:
    """The listing's order of units is a CASE that searches the names by their bytes in halves: with more
    units than one leaf holds, every unit's cases still come together, units most first (then by name),
    names that a collation equates apart, on every database."""
    names = [f"第{i:02d}单位" for i in range(9)] + ["Unit", "Zeta", "a-unit", "环保局"]
    records = [record(f"N{names.index(name):02d}-{k}", name, f"2026-05-{k + 1:02d} 10:00")
               for n, name in enumerate(names) for k in range(1 + n % 4)]
    store.upsert_cases(records, rules=rules, now=parse_time("2026-05-25 12:00"), source_name="test")
    with store.engine.connect() as conn:
        report = carry_over(conn, 2026, 5, parse_time("2026-06-01 09:00"))
    listed = [(r[3], r[1]) for r in report.listed()]
    order = [u.unit for u in report.units]
    assert len(order) == len(names) and order[:3] == sorted(order[:3])  # most first, then by name
    assert [unit for unit, _ in listed] == [u for u in order for _ in range(1 + names.index(u) % 4)]
    assert [number for _, number in listed] == [f"N{names.index(u):02d}-{k}" for u in order
                                                 for k in range(1 + names.index(u) % 4)]


@pytest.fixture
def sqlite_store(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A SQLite store alone: the test below is about SQLite's text form of an instant (the other databases
    return instants as datetimes), so it does not run, or skip, on them."""
    s = Store(f"sqlite:///{tmp_path / 'texts.sqlite3'}")
    s.upgrade()
    yield s
    s.close()


def test_listed_rows_from_other_instant_texts_equal_the_records(sqlite_store: Store, rules: RuleSet) -> None:
    """SQLite's instants are read as text: the exact ``YYYY-MM-DD HH:MM:SS.ffffff`` form is shown from its
    hour and minutes, any other text a writer may have left (no fraction, an offset) through the codec."""
    from sqlalchemy import update

    from daemon.reports.case_list import case_rows
    from daemon.storage.models import cases

    store = sqlite_store
    store.upsert_cases([record(n, UNIT, "2026-11-20 10:00") for n in ("T-1", "T-2", "T-3")],
                       rules=rules, now=parse_time("2026-11-20 12:00"), source_name="test")
    with store.engine.begin() as conn:
        for number, text in (("T-1", "2026-10-31 16:59:59"), ("T-2", "2026-10-31 16:00:00.000+08"),
                             ("T-3", "2026-10-31 23:07:00.000000")):
            conn.execute(update(cases).where(cases.c.number == number)
                         .values(received_at=type_coerce(text, NullType())))
    with store.engine.connect() as conn:
        report = carry_over(conn, 2026, 11, parse_time("2026-12-01 09:00"))
    listed = list(report.listed())
    assert listed == list(case_rows(report.cases()))
    assert {r[1]: (r[4], r[6]) for r in listed} == {
        "T-1": ("2026-11-01 00:59", "本月交办"), "T-2": ("2026-10-31 16:00", "上月及以前结存"),
        "T-3": ("2026-11-01 07:07", "本月交办"),
    }


def test_a_format_function_writes_what_str_format_writes() -> None:
    from daemon.reports.xlsx_writer import format_function

    template = '<row r="{0}"><c r="A{0}"><v>{1}</v></c><c r="B{0}" t="inlineStr"><t>{3}</t></c>{2}</row>'
    cells = (7, "工单 'a' \\ \"b\"", "x")
    assert format_function(template)(12, cells) == template.format(12, *cells)
    with pytest.raises(ValueError, match="braces"):
        format_function("{x}{0}")
