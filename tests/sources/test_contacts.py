from __future__ import annotations

from pathlib import Path

import pytest

from daemon.sources import ContactRole, HeaderError, read_contacts_file
from tests.sources.conftest import csv_text

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
HEADERS = ("单位", "姓名", "角色", "手机", "企业微信账号", "邮箱")


def write(tmp_path: Path, rows: list[tuple[str, ...]], headers: tuple[str, ...] = HEADERS) -> Path:
    path = tmp_path / "contacts.csv"
    path.write_bytes(csv_text(rows, headers).encode("gb18030"))
    return path


def test_sample_contacts() -> None:
    results = list(read_contacts_file(SAMPLES / "contacts.csv"))
    assert len(results) == 26 and all(r.error is None for r in results)
    supervisors = [r.contact for r in results if r.contact and r.contact.role is ContactRole.SUPERVISOR]
    assert [(c.name, c.unit) for c in supervisors] == [("马晓光", None), ("高雪", None)]


def test_roles_and_normalised_mobiles(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        [
            ("兴隆台区住建局", "王建国", "承办人", "138 0000 1234", "ww_wang", ""),
            ("兴隆台区住建局", "刘海燕", "领导", "+86 13800001235", "", ""),
            ("水务集团", "李明", "", "", "", "liming@example.gov.cn"),
            ("", "马晓光", "", "", "ww_ma", ""),
        ],
    )
    contacts = [r.contact for r in read_contacts_file(path)]
    assert [(c.role, c.mobile) for c in contacts if c] == [
        (ContactRole.HANDLER, "13800001234"),
        (ContactRole.LEADER, "13800001235"),
        (ContactRole.HANDLER, None),
        (ContactRole.SUPERVISOR, None),
    ]


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (
            ("市公安局", "孙磊", "承办人", "12800005678", "", ""),
            "手机 (mobile) 尾号5678 is not a mainland mobile",
        ),
        (
            ("市公安局", "孙磊", "承办人", "1380000567", "", ""),
            "手机 (mobile) 尾号0567 is not a mainland mobile",
        ),
        (("市公安局", "孙磊", "承办人", "", "", "sunlei@"), "邮箱 (email) 'sunlei@' is not an email address"),
        (
            ("市公安局", "孙磊", "局长", "13800005678", "", ""),
            "角色 (role) '局长' is not known; valid: 承办人",
        ),
        (("", "孙磊", "承办人", "13800005678", "", ""), "单位 (unit) is empty"),
        (("市公安局", "孙磊", "承办人", "", "", ""), "no channel"),
        (("市公安局", "", "承办人", "13800005678", "", ""), "姓名 (name) is empty"),
    ],
)
def test_bad_rows_name_the_problem_and_mask_the_mobile(
    tmp_path: Path, row: tuple[str, ...], expected: str
) -> None:
    good = ("市公安局", "周卫东", "分管领导", "13800009999", "", "")
    results = list(read_contacts_file(write(tmp_path, [good, row])))
    assert results[0].contact is not None
    bad = results[1]
    assert bad.contact is None and bad.row == 3
    assert bad.error is not None and bad.error.startswith("row 3: ")
    assert expected in bad.error
    digits = "".join(ch for ch in row[3] if ch.isdigit())
    if len(digits) > 4:
        assert digits not in bad.error


def test_missing_columns(tmp_path: Path) -> None:
    with pytest.raises(HeaderError, match=r"missing required columns 单位 \(unit\); found: 姓名, 手机"):
        read_contacts_file(write(tmp_path, [("孙磊", "13800005678")], headers=("姓名", "手机")))


def test_group_column_gives_each_unit_one_group(tmp_path: Path) -> None:
    from daemon.sources.contacts import unit_groups

    path = write(
        tmp_path,
        [
            ("市公安局", "赵一", "承办人", "13800001234", "", "", "市直"),
            ("市公安局", "钱二", "领导", "13800001235", "", "", "县区基层"),  # a second group for the same unit
            ("兴海街道办事处", "孙三", "承办人", "13800001236", "", "", ""),
            ("", "马督办", "督办", "13800001237", "", "", "市直"),  # a supervisor has no unit to group
        ],
        headers=(*HEADERS, "分组"),
    )
    results = list(read_contacts_file(path))
    assert [r.contact.group if r.contact else None for r in results] == ["市直", "县区基层", None, None]
    assert "needs a 单位" in (results[3].error or "")
    groups, problems = unit_groups(results)
    assert groups == {"市公安局": "市直"}
    assert problems == ["row 3: 分组 (group) '县区基层' of 市公安局 differs from '市直' on row 2; "
                        "a unit has one group, '市直' is kept"]
