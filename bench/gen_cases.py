"""Synthetic 12345 cases shaped like the Panjin bulletins, for benchmarks and streaming tests.

Deterministic for a given (n, seed, start, end): the same arguments give the same file.

    python bench/gen_cases.py 1000000 /tmp/cases.csv [--seed 7] [--start 2026-11-01] [--end 2026-11-20]

Shares follow the bulletins (003_…: 涉及领域 城建交通类 34%, 政务服务类 20%, 社会事业类 20% …; 属地 by
each district's 受理量; 省平台交办件 451 of 3,240 dispatched). Each case walks its life (签收 → 反馈 → 办结
→ 回访) with random durations; steps later than ``end`` have not happened yet, so the status is the last
step before ``end``. Times are naive Asia/Shanghai, written as 'YYYY-MM-DD HH:MM:SS'.
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

HEADERS = (
    "工单编号", "来源", "诉求类型", "受理时间", "承办单位", "办理状态", "签收时间", "反馈时间", "办结时间",
    "满意度", "评星", "疑难件", "属地", "涉及领域", "问题摘要", "更新时间",
)  # fmt: skip

DISTRICTS = {"兴隆台区": 1612, "双台子区": 604, "大洼区": 701, "盘山县": 259, "辽东湾新区": 64}
DOMAINS = {
    "城建交通类": 34.03,
    "政务服务类": 20.39,
    "社会事业类": 20.45,
    "环保生态类": 6.93,
    "工资社保类": 4.31,
    "土地管理类": 1.32,
    "其他类": 12.57,
}
SOURCES = {"省平台": 451, "市级": 1789, "话务端": 1000}
CATEGORIES = {"投诉": 45, "咨询": 25, "建议": 10, "求助": 12, "举报": 5, "其他": 3}

_UNITS_BY_DISTRICT = {
    "兴隆台区": (
        "兴隆台区住建局 兴隆台区市场监督管理局 兴隆台区综合行政执法局 兴隆台区环保局 兴隆台区卫生健康局 "
        "兴隆台区人社局 兴隆台区城市建设和管理服务中心 兴隆台区营商环境建设局 兴隆台区交通运输局 "
        "兴隆台区退役军人事务局 兴隆台区民政局 兴海街道办事处 兴盛街道办事处 振兴街道办事处 惠宾街道办事处 "
        "创新街道办事处 兴隆街道办事处 渤海街道办事处 新工街道办事处 油田基础教育中心 "
        "盘锦辽河智慧城市发展集团有限公司 盘锦市医疗保障事务服务中心兴隆台分中心 "
        "盘锦市城市管理综合行政执法兴隆台大队"
    ),
    "大洼区": (
        "大洼区教育局 大洼区田家街道办事处 大洼区环境保护局 大洼区营商环境建设局 大洼区社会保险事业管理局 "
        "大洼区住建局 大洼区市场监督管理局 大洼区卫生健康局 大洼区二界沟街道办事处 大洼区荣兴街道办事处 "
        "大洼区城市管理综合行政执法局"
    ),
    "盘山县": (
        "盘山县营商环境建设局 盘山县石新镇政府 盘山县沙岭镇政府 盘山县古城子镇政府 盘山县公安局 "
        "盘山县住建局 盘山县教育局 盘山县胡家镇政府 盘山县卫生健康局"
    ),
    "双台子区": (
        "双台子区人力资源和社会保障局 双台子区住建局 双台子区胜利街道办事处 双台子区红旗街道办事处 "
        "双台子区市场监督管理局 双台子区城市管理综合行政执法局 双台子区卫生健康局 双台子区民政局"
    ),
    "辽东湾新区": "辽东湾新区社会事业局 辽东湾新区建设局 辽东湾新区城市管理局",
}
#: 市直 units serve every district
CITY_UNITS = [
    "市公安局",
    "水务集团",
    "市教育局",
    "市人力资源和社会保障局",
    "市自然资源局",
    "市住房公积金管理中心",
    "市发展和改革委员会",
    "市住房和城乡建设局",
    "国网盘锦供电公司",
    "市医疗保障局",
    "市检验检测中心",
    "市交警支队",
    "市卫生健康委员会",
    "市交通运输局",
    "市客运公交集团有限公司",
    "市税务局",
    "市市场监督管理局",
    "市政建设集团有限责任公司",
    "市文化旅游和广播电视局",
    "市公安局双台子分局",
    "市燃气总公司",
    "市城市管理综合行政执法局",
]
UNITS = {d: tuple(names.split()) for d, names in _UNITS_BY_DISTRICT.items()}

_PLACES = [
    "万达小区",
    "惠宾小区",
    "油田小区",
    "园丁社区",
    "湖滨公园周边",
    "中兴公园",
    "红旗大街",
    "中华路",
    "文汇街",
    "兴隆台区生态酒店北侧",
    "拉拉村",
    "胡家中学路口",
    "友谊南街",
    "万福路",
    "泰山路",
    "石油大街",
    "双兴小区",
    "曙光小区",
]
_ISSUES = {
    "城建交通类": (
        "供暖温度不达标",
        "路面坑洼不平",
        "施工改造未回填",
        "路灯不亮",
        "占用停车位",
        "物业管理问题",
        "自来水水质浑浊",
        "经常性停水",
        "交通信号灯配时不合理",
        "小区物业收费问题",
    ),
    "政务服务类": ("不动产证办理进度", "营业执照变更手续", "公积金提取流程", "居住证办理材料"),
    "社会事业类": ("医保异地报销政策", "学生入学划片问题", "核酸检测点设置", "养老服务补贴申领"),
    "环保生态类": ("工厂生产噪音扰民", "餐饮油烟扰民", "建筑垃圾未清理", "夜间施工噪音"),
    "工资社保类": ("企业拖欠工资", "社保断缴补缴", "失业保险金申领"),
    "土地管理类": ("违章建筑占地", "征地补偿标准"),
    "其他类": ("宠物遛狗不拴绳", "广告牌存在安全隐患", "非法营运车辆"),
}
_VERBS = {"投诉": "反映", "咨询": "咨询", "建议": "建议解决", "求助": "求助", "举报": "举报", "其他": "反映"}


def _cum(weights: dict[str, float]) -> tuple[list[str], list[float]]:
    keys, total, cum = list(weights), 0.0, []
    for key in keys:
        total += weights[key]
        cum.append(total)
    return keys, cum


def generate(n: int, seed: int = 7, start: date | datetime = date(2026, 11, 1),
             end: date | datetime = date(2026, 11, 20)) -> Iterator[dict[str, str]]:  # fmt: skip
    """``n`` cases received between ``start`` and ``end`` (naive Asia/Shanghai), as rows keyed by header."""
    rng = random.Random(seed)
    t0 = datetime.combine(start, datetime.min.time()) if not isinstance(start, datetime) else start
    t1 = datetime.combine(end, datetime.min.time()) if not isinstance(end, datetime) else end
    span = int((t1 - t0).total_seconds())
    days = [(t0 + timedelta(days=i)).strftime("%Y-%m-%d") for i in range(span // 86400 + 40)]
    base = t0.hour * 3600 + t0.minute * 60 + t0.second

    def fmt(offset: int) -> str:
        seconds = base + offset
        day, rest = divmod(seconds, 86400)
        return f"{days[day]} {rest // 3600:02d}:{rest // 60 % 60:02d}:{rest % 60:02d}"

    districts, district_cum = _cum(DISTRICTS)
    domains, domain_cum = _cum(DOMAINS)
    sources, source_cum = _cum(SOURCES)
    categories, category_cum = _cum(CATEGORIES)
    choose = rng.choices
    for i in range(n):
        district = choose(districts, cum_weights=district_cum)[0]
        local = UNITS[district]
        unit = local[int(rng.random() * len(local))] if rng.random() < 0.8 else rng.choice(CITY_UNITS)
        domain = choose(domains, cum_weights=domain_cum)[0]
        category = choose(categories, cum_weights=category_cum)[0]
        received = int(rng.random() * span)
        signed = received + int(rng.expovariate(1 / 14_400))  # ~4 h
        fed_back = signed + int(rng.uniform(0.3, 6.0) * 86400)
        closed = fed_back + int(rng.uniform(0.1, 2.0) * 86400)
        row = {
            "工单编号": f"{t0.year}{i + 1:08d}",
            "来源": choose(sources, cum_weights=source_cum)[0],
            "诉求类型": category,
            "受理时间": fmt(received),
            "承办单位": unit,
            "办理状态": "待签收",
            "签收时间": "",
            "反馈时间": "",
            "办结时间": "",
            "满意度": "",
            "评星": "",
            "疑难件": "是" if rng.random() < 0.02 else "",
            "属地": district,
            "涉及领域": domain,
            "问题摘要": f"{_VERBS[category]}{rng.choice(_PLACES)}{rng.choice(_ISSUES[domain])}",
            "更新时间": fmt(received),
        }
        if signed < span:
            row["办理状态"], row["签收时间"], row["更新时间"] = "办理中", fmt(signed), fmt(signed)
        if fed_back < span:
            row["办理状态"], row["反馈时间"], row["更新时间"] = "已反馈", fmt(fed_back), fmt(fed_back)
        if closed < span:
            row["办理状态"], row["办结时间"], row["更新时间"] = "已办结", fmt(closed), fmt(closed)
            roll = rng.random()
            row["满意度"] = "满意" if roll < 0.93 else ("基本满意" if roll < 0.97 else "不满意")
            row["评星"] = "5" if roll < 0.85 else ("4" if roll < 0.97 else str(rng.randint(1, 3)))
        yield row


def write_csv(path: Path, rows: Iterator[dict[str, str]], *, encoding: str = "utf-8-sig") -> int:
    """Write rows as CSV (UTF-8 with BOM, as Excel writes) without holding them; returns the count."""
    count = 0
    with path.open("w", encoding=encoding, newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADERS)
        for row in rows:
            writer.writerow(row.values())
            count += 1
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int, help="number of cases")
    parser.add_argument("out", type=Path, help="CSV file to write")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--start", type=date.fromisoformat, default=date(2026, 11, 1))
    parser.add_argument("--end", type=date.fromisoformat, default=date(2026, 11, 20))
    parser.add_argument("--encoding", default="utf-8-sig", help="utf-8-sig (default), utf-8 or gb18030")
    args = parser.parse_args(argv)
    began = time.perf_counter()
    count = write_csv(args.out, generate(args.n, args.seed, args.start, args.end), encoding=args.encoding)
    print(f"{count} cases → {args.out} in {time.perf_counter() - began:.1f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
