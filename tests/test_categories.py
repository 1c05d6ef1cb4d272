"""The category tree: the bundled file, validation of an operator's file, and look-ups."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gridmap.errors import InvalidInput
from gridmap.issues.categories import (
    BUNDLED_CATEGORIES,
    COLUMNS,
    Category,
    CategoryKind,
    CategoryTree,
    Urgency,
    load_categories,
)
from gridmap.issues.sla import TimeLimitKind

HEADER = ",".join(COLUMNS)
# Lines 2 and 3 of every test file: one major and one minor, both valid.
GOOD_ROWS = (
    "CJ/T 214-2007,event,E01,,市容环境,City appearance,,,,,",
    "CJ/T 214-2007,event,E0102,E01,暴露垃圾,Exposed garbage,环卫所,normal,working_hours,4,暴露的生活垃圾",
)


def write_tree(folder: Path, *rows: str, encoding: str = "utf-8", header: str = HEADER) -> Path:
    """A categories CSV in ``folder``: the header, the good rows, then ``rows`` (from line 4)."""
    path = folder / "categories.csv"
    path.write_bytes(("\r\n".join((header, *GOOD_ROWS, *rows)) + "\r\n").encode(encoding))
    return path


@pytest.fixture(scope="module")
def tree() -> CategoryTree:
    return load_categories()


# ---------------------------------------------------------------------------------------------
# The bundled tree


def test_bundled_tree_loads_with_every_major(tree: CategoryTree) -> None:
    majors = {(c.kind.value, c.code, c.name_zh) for c in tree.majors()}
    assert majors == {
        ("component", "C01", "公用设施"),
        ("component", "C02", "道路交通"),
        ("component", "C03", "市容环境"),
        ("component", "C04", "园林绿化"),
        ("component", "C05", "房屋土地"),
        ("component", "C06", "其他设施"),
        ("event", "E01", "市容环境"),
        ("event", "E02", "宣传广告"),
        ("event", "E03", "施工管理"),
        ("event", "E04", "突发事件"),
        ("event", "E05", "街面秩序"),
        ("event", "E06", "扩展事件"),
        ("event", "E07", "社会治理"),
    }


@pytest.mark.parametrize(
    ("code", "name_zh"),
    [
        # components (部件), CJ/T 214 codes as in DOMAIN.md
        ("C0101", "上水井盖"),
        ("C0102", "污水井盖"),
        ("C0103", "雨水井盖"),
        ("C0104", "雨水箅子"),
        ("C0118", "路灯"),
        ("C0201", "停车场"),
        ("C0205", "过街天桥"),
        ("C0214", "交通信号灯"),
        ("C0301", "公共厕所"),
        ("C0305", "垃圾箱"),
        ("C0307", "广告牌匾"),
        ("C0401", "古树名木"),
        ("C0402", "行道树"),
        ("C0405", "绿地"),
        ("C0501", "宣传栏"),
        # events (事件)
        ("E0102", "暴露垃圾"),
        ("E0103", "积存垃圾渣土"),
        ("E0201", "非法小广告"),
        ("E0204", "街头散发小广告"),
        ("E0301", "施工扰民"),
        ("E0302", "工地扬尘"),
        ("E0304", "道路遗撒"),
        ("E0401", "路面塌陷"),
        ("E0403", "燃气管道破裂"),
        ("E0501", "无照经营游商"),
        ("E0504", "店外经营"),
        ("E0505", "机动车乱停放"),
        ("E0506", "非机动车乱停放"),
        ("E0507", "乱堆物堆料"),
        # social governance (local additions)
        ("E0701", "劳资纠纷"),
        ("E0702", "消防安全隐患"),
        ("E0703", "燃气安全隐患"),
        ("E0704", "电动车楼道充电"),
        ("E0705", "违章建筑"),
        ("E0706", "邻里纠纷"),
        ("E0707", "就业服务诉求"),
        ("E0708", "社会救助诉求"),
    ],
)
def test_bundled_tree_has_the_common_items(tree: CategoryTree, code: str, name_zh: str) -> None:
    category = tree.get(code)
    assert category.name_zh == name_zh
    assert category.level == 2 and category.is_leaf
    assert category.code.startswith(category.parent_code)


@pytest.mark.parametrize(
    ("code", "kind", "value", "urgency"),
    [
        ("C0101", TimeLimitKind.continuous_hours, 2, Urgency.urgent),  # missing manhole cover: 2 h round the clock
        ("C0118", TimeLimitKind.working_days, 2, Urgency.normal),  # street light out: 2 working days
        ("E0102", TimeLimitKind.working_hours, 4, Urgency.normal),  # exposed garbage: 4 working hours
        ("E0403", TimeLimitKind.continuous_hours, 1, Urgency.urgent),  # gas pipe rupture: 1 h
        ("E0701", TimeLimitKind.working_days, 5, Urgency.normal),  # labour dispute: 5 working days
        ("E0709", TimeLimitKind.calendar_days, 15, Urgency.normal),  # petition: answer within 15 days
    ],
)
def test_bundled_time_limits(tree: CategoryTree, code: str, kind: TimeLimitKind, value: float,
                             urgency: Urgency) -> None:
    category = tree.get(code)
    assert (category.time_limit_kind, category.time_limit_value, category.urgency) == (kind, value, urgency)


def test_every_bundled_leaf_can_be_dispatched(tree: CategoryTree) -> None:
    for category in tree.leaves():
        assert category.department and category.urgency and category.time_limit_kind, category.code
        assert category.time_limit_value and category.time_limit_value > 0, category.code
        assert category.code.startswith(category.kind.prefix), category.code


def test_bundled_tree_mixes_standards(tree: CategoryTree) -> None:
    assert {c.standard for c in tree} == {"CJ/T 214-2007", "local"}
    assert tree.get("E07").standard == "local"
    assert all(c.standard == "local" for c in tree.children("E07"))


def test_bundled_file_opens_in_excel() -> None:
    # Excel reads a CSV as the ANSI code page unless it starts with a UTF-8 byte-order mark.
    assert BUNDLED_CATEGORIES.read_bytes().startswith(b"\xef\xbb\xbf")


def test_tree_navigation(tree: CategoryTree) -> None:
    assert [c.code for c in tree.children("E04")] == ["E0401", "E0403"]
    assert tree.children("E0401") == []
    assert tree.get("E04").level == 1 and not tree.get("E04").is_leaf
    assert tree.get("C06").is_leaf  # a major without minors is filed under directly
    assert "E0102" in tree and "e0102" in tree and "E9999" not in tree and 42 not in tree
    assert list(tree)[0].code == "C01"  # file order
    assert len(tree) == len(list(tree))
    assert all(c.is_leaf for c in tree.leaves())


def test_category_is_frozen(tree: CategoryTree) -> None:
    with pytest.raises(AttributeError):
        tree.get("E0102").department = "someone else"  # type: ignore[misc]


def test_loading_is_cached_until_the_file_changes(tmp_path: Path) -> None:
    assert load_categories() is load_categories(BUNDLED_CATEGORIES)
    path = write_tree(tmp_path)
    first = load_categories(path)
    assert load_categories(str(path)) is first
    path.write_text(path.read_text(encoding="utf-8").replace("环卫所", "环境卫生管理处"), encoding="utf-8")
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000_000))
    assert load_categories(path).get("E0102").department == "环境卫生管理处"


# ---------------------------------------------------------------------------------------------
# Look-ups


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("E0102", "E0102"),  # a code
        (" e0102 ", "E0102"),  # a code, any case, surrounding blanks ignored
        ("暴露垃圾", "E0102"),  # the Chinese name, as hotline systems send it
        ("Exposed garbage", "E0102"),  # the English name
        ("EXPOSED GARBAGE", "E0102"),  # English names ignore case
        ("路灯", "C0118"),  # a component by name
        ("劳资纠纷", "E0701"),  # a local addition
        ("公用设施", "C01"),  # a major
    ],
)
def test_find_by_code_or_name(tree: CategoryTree, text: str, code: str) -> None:
    assert tree.find(text).code == code


def test_find_a_shared_name_needs_the_kind(tree: CategoryTree) -> None:
    # 市容环境 is both component major C03 and event major E01.
    with pytest.raises(InvalidInput, match=r"ambiguous: it names C03 \(component 市容环境\), E01 \(event 市容环境\)"):
        tree.find("市容环境")
    assert tree.find("市容环境", kind="component").code == "C03"
    assert tree.find("市容环境", kind=CategoryKind.event).code == "E01"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("暴露垃", r"no category has the code or name '暴露垃'; did you mean E0102 \(暴露垃圾\)"),  # a truncated name
        ("Exposed garbag", r"did you mean E0102 \(暴露垃圾\)"),  # a misspelt English name
        ("", r"empty category"),  # nothing given
    ],
)
def test_find_unknown_suggests(tree: CategoryTree, text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        tree.find(text)


def test_find_with_the_wrong_kind(tree: CategoryTree) -> None:
    with pytest.raises(InvalidInput, match="no component category has the code or name '暴露垃圾'"):
        tree.find("暴露垃圾", kind="component")
    with pytest.raises(InvalidInput, match="unknown category kind 'incident': use one of event, component"):
        tree.find("暴露垃圾", kind="incident")


@pytest.mark.parametrize(
    ("code", "suggested"),
    [
        ("C0181", "C0118 (路灯)"),  # two digits swapped
        ("C118", "C0118 (路灯)"),  # a digit missing
        ("E01022", "E0102 (暴露垃圾)"),  # a digit too many
    ],
)
def test_unknown_code_suggests_the_close_code(tree: CategoryTree, code: str, suggested: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        tree.get(code)
    message = caught.value.message
    assert f"unknown category code {code!r}; did you mean {suggested}" in message
    assert str(BUNDLED_CATEGORIES) in message  # says where the tree comes from
    assert caught.value.status == 400


def test_get_by_name_points_to_the_code(tree: CategoryTree) -> None:
    with pytest.raises(InvalidInput, match="'暴露垃圾' is a category name, not a code: its code is E0102"):
        tree.get("暴露垃圾")


# ---------------------------------------------------------------------------------------------
# Validation of an operator's file


def test_a_minimal_file_loads(tmp_path: Path) -> None:
    tree = load_categories(write_tree(tmp_path, "", ",,,,,,,,,,"))  # blank rows, as Excel leaves them, are skipped
    assert [c.code for c in tree] == ["E01", "E0102"]
    minor = tree.get("E0102")
    assert minor == Category(
        standard="CJ/T 214-2007",
        kind=CategoryKind.event,
        code="E0102",
        parent_code="E01",
        name_zh="暴露垃圾",
        name_en="Exposed garbage",
        department="环卫所",
        urgency=Urgency.normal,
        time_limit_kind=TimeLimitKind.working_hours,
        time_limit_value=4.0,
        description="暴露的生活垃圾",
        is_leaf=True,
    )
    major = tree.get("E01")
    assert (major.parent_code, major.department, major.urgency, major.time_limit_value) == (None, None, None, None)


def test_parents_may_come_after_their_minors(tmp_path: Path) -> None:
    path = write_tree(tmp_path, "local,event,E0701,E07,劳资纠纷,Labour dispute,人社局,normal,working_days,5,",
                      "local,event,E07,,社会治理,Social governance,,,,,")
    assert [c.code for c in load_categories(path).children("E07")] == ["E0701"]


def test_fractional_time_limits(tmp_path: Path) -> None:
    path = write_tree(tmp_path, "local,event,E0103,E01,积存垃圾渣土,,环卫所,normal,working_hours,1.5,")
    assert load_categories(path).get("E0103").time_limit_value == 1.5


M = "CJ/T 214-2007,event"  # the start of an event row


@pytest.mark.parametrize(
    ("row", "column", "message"),
    [
        # kind is neither event nor component
        ("CJ/T 214-2007,incident,E0103,E01,积存垃圾渣土,,环卫所,normal,working_days,1,", "kind (B)",
         "unknown kind 'incident'; use event (事件) or component (部件)"),
        # urgency not in the list
        (f"{M},E0103,E01,积存垃圾渣土,,环卫所,asap,working_days,1,", "urgency (H)",
         "unknown urgency 'asap'; use one of urgent, high, normal, low"),
        # time-limit kind not in the list
        (f"{M},E0103,E01,积存垃圾渣土,,环卫所,normal,workdays,1,", "time_limit_kind (I)",
         "unknown time-limit kind 'workdays'; use one of continuous_hours"),
        # the same code twice
        (f"{M},E0102,E01,暴露垃圾,,环卫所,normal,working_hours,4,", "code (C)",
         "code E0102 is used twice (first on line 3)"),
        # a parent nobody defines
        (f"{M},E0201,E02,非法小广告,,城管执法中队,low,working_days,1,", "parent_code (D)", "parent E02 does not exist"),
        # a component under an event major
        ("CJ/T 214-2007,component,C0103,E01,雨水井盖,,市政管理处,urgent,continuous_hours,2,", "parent_code (D)",
         "parent E01 is an event but C0103 is a component"),
        # a minor whose code does not extend its parent's
        (f"{M},E0201,E01,非法小广告,,城管执法中队,low,working_days,1,", "code (C)",
         "code E0201 must start with its parent's code E01"),
        # a third level
        (f"{M},E010201,E0102,塑料袋,,环卫所,low,working_days,1,", "parent_code (D)",
         "parent E0102 is itself a minor (under E01)"),
        # an event code without the E prefix
        (f"{M},C0103,E01,积存垃圾渣土,,环卫所,normal,working_days,1,", "code (C)",
         "code C0103 of an event must start with E"),
        # not a code at all
        (f"{M},垃圾,E01,积存垃圾渣土,,环卫所,normal,working_days,1,", "code (C)",
         "must be a letter (E for events, C for components) followed by digits"),
        # a minor's code on a row without parent_code
        (f"{M},E0103,,积存垃圾渣土,,环卫所,normal,working_days,1,", "code (C)", "fill parent_code if E0103 is a minor"),
        # a minor without department
        (f"{M},E0103,E01,积存垃圾渣土,,,normal,working_days,1,", "department (G)",
         "E0103 is a minor, so issues are filed under it: it needs a department"),
        # a minor without urgency
        (f"{M},E0103,E01,积存垃圾渣土,,环卫所,,working_days,1,", "urgency (H)", "it needs an urgency"),
        # a minor without time limit
        (f"{M},E0103,E01,积存垃圾渣土,,环卫所,normal,,,", "time_limit_kind (I)",
         "it needs a time limit (time_limit_kind and time_limit_value)"),
        # a major without minors is filed under directly, so it needs them too
        ("local,event,E09,,其他,Other,,,,,", "department (G)",
         "E09 is a major without minors, so issues are filed under it"),
        # zero time limit
        (f"{M},E0103,E01,积存垃圾渣土,,环卫所,normal,working_days,0,", "time_limit_value (J)",
         "time limit 0 must be a positive number"),
        # negative time limit
        (f"{M},E0103,E01,积存垃圾渣土,,环卫所,normal,working_days,-2,", "time_limit_value (J)",
         "time limit -2 must be a positive number"),
        # a time limit that is not a number
        (f"{M},E0103,E01,积存垃圾渣土,,环卫所,normal,working_days,两天,", "time_limit_value (J)",
         "time limit '两天' is not a number"),
        # a kind without its value
        (f"{M},E0103,E01,积存垃圾渣土,,环卫所,normal,working_days,,", "time_limit_value (J)",
         "time_limit_value is empty while time_limit_kind is given"),
        # no Chinese name
        (f"{M},E0103,E01,,,环卫所,normal,working_days,1,", "name_zh (E)", "the Chinese name is empty"),
        # no standard
        (",event,E0103,E01,积存垃圾渣土,,环卫所,normal,working_days,1,", "standard (A)", "the standard is empty"),
    ],
)
def test_validation_names_line_and_column(tmp_path: Path, row: str, column: str, message: str) -> None:
    path = write_tree(tmp_path, row)
    with pytest.raises(InvalidInput) as caught:
        load_categories(path)
    assert str(path) in caught.value.message
    problems = caught.value.details["problems"]
    assert any(p.startswith(f"line 4, column {column}: ") and message in p for p in problems), problems


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    path = write_tree(
        tmp_path,
        f"{M},E0103,E01,积存垃圾渣土,,环卫所,asap,working_days,1,",  # line 4: urgency
        f"{M},E0201,E02,非法小广告,,城管执法中队,low,working_days,-1,",  # line 5: time limit, then parent
    )
    with pytest.raises(InvalidInput, match="has 2 problem") as caught:
        load_categories(path)
    problems = caught.value.details["problems"]
    assert [p.split(":")[0] for p in problems] == ["line 4, column urgency (H)", "line 5, column time_limit_value (J)"]


def test_a_file_saved_as_gbk_is_refused(tmp_path: Path) -> None:
    path = write_tree(tmp_path, encoding="gbk")
    with pytest.raises(InvalidInput, match="is not UTF-8 \\(line 2: .*save the file as UTF-8"):
        load_categories(path)


def test_a_file_with_byte_order_mark_loads(tmp_path: Path) -> None:
    path = write_tree(tmp_path, encoding="utf-8-sig")  # Excel's "CSV UTF-8"
    assert "E0102" in load_categories(path)


def test_missing_columns_are_named(tmp_path: Path) -> None:
    header = HEADER.replace(",urgency,", ",urgent,")
    with pytest.raises(InvalidInput, match="line 1: the header lacks column\\(s\\) urgency"):
        load_categories(write_tree(tmp_path, header=header))


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="category file .*nowhere.csv does not exist"):
        load_categories(tmp_path / "nowhere.csv")
