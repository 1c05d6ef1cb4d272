"""What the demo's issues say: a Chinese description of the problem and a postal-style address."""

from __future__ import annotations

from typing import Any

import numpy as np

from gridmap.demo.people import pick
from gridmap.demo.places import HOTSPOTS, Places

#: Social matters (wage claims, disputes, hardship …): about people at an address, not a spot beside it.
SOCIAL_CATEGORIES = ("E0701", "E0703", "E0705", "E0706", "E0707", "E0708", "E0709")
SOCIAL_MATTERS = frozenset(SOCIAL_CATEGORIES) | {"E0702", "E0704", "E0710"}

# Descriptions: {place} is where (community, road, number, landmark); other slots are filled
# from _FILLERS. The typhoon variants are used in the days after a landfall.
_DESCRIPTIONS: dict[str, tuple[str, ...]] = {
    "C0101": ("{place}上水井盖缺失，存在安全隐患", "{place}自来水井盖破损，车辆经过有响声",
              "{place}供水井盖下沉，路面不平"),
    "C0102": ("{place}污水井盖破损，污水外溢", "{place}污水井盖缺失，已有行人险些踩空", "{place}污水井冒水，臭味明显"),
    "C0103": ("{place}雨水井盖缺失，请尽快补装", "{place}雨水井盖松动，车辆碾压响声大", "{place}雨水井盖破损塌陷"),
    "C0104": ("{place}雨水箅子被垃圾堵塞，下雨积水", "{place}雨水箅子缺失，留下空洞",
              "{place}雨水箅子破损，自行车轮容易卡住"),
    "C0118": ("{place}路灯不亮，已持续{days}", "{place}一排路灯夜间闪烁", "{place}路灯白天常亮",
              "{place}路灯灯杆倾斜，存在安全隐患",
              "{place}路灯灯罩脱落", "{place}有{count}盏路灯不亮，夜间行走不便"),
    "C0201": ("{place}停车场道闸损坏，无法抬杆", "{place}停车场标线模糊，车辆停放混乱", "{place}停车场收费标识不清"),
    "C0205": ("{place}过街天桥台阶破损", "{place}过街天桥扶手松动", "{place}过街天桥照明灯不亮"),
    "C0214": ("{place}交通信号灯不亮，路口通行混乱", "{place}信号灯倒计时显示故障", "{place}人行横道信号灯损坏"),
    "C0301": ("{place}公共厕所卫生差、异味大", "{place}公共厕所水龙头损坏漏水", "{place}公共厕所未按时开放"),
    "C0305": ("{place}垃圾箱破损", "{place}垃圾箱缺失，垃圾无处投放", "{place}分类垃圾箱满溢未清运"),
    "C0307": ("{place}商铺招牌破损，有掉落风险", "{place}广告牌匾字体脱落", "{place}户外广告牌未经审批设置"),
    "C0401": ("{place}古榕树枝干断裂", "{place}古树周边堆放杂物，根系受损", "{place}古树出现病虫害"),
    "C0402": ("{place}行道树倒伏，阻碍交通", "{place}行道树树枝过长，遮挡路灯和交通标志",
              "{place}椰子树上椰果未及时摘除，有坠落伤人风险",
              "{place}行道树枯死"),
    "C0405": ("{place}绿地被踩踏，黄土裸露", "{place}绿地被占用种菜", "{place}绿化带杂草丛生，长期无人养护"),
    "C0501": ("{place}宣传栏玻璃破碎", "{place}宣传栏内容过期，长期未更新", "{place}宣传栏立柱锈蚀倾斜"),
    "C06": ("{place}路边护栏损坏", "{place}公共座椅破损", "{place}健身器材损坏，存在安全隐患"),
    "E0102": ("{place}生活垃圾散落在地，{days}无人清理", "{place}垃圾桶满溢，周边垃圾堆积，气味难闻",
              "{place}有人随意倾倒生活垃圾", "{place}绿化带内有大量塑料袋、饮料瓶等垃圾"),
    "E0103": ("{place}堆放建筑垃圾和渣土，{days}未清运", "{place}空地上积存大量装修垃圾，占用通道",
              "{place}路边积存垃圾渣土约{volume}立方米"),
    "E0201": ("{place}墙面、电线杆上张贴大量小广告", "{place}楼道内喷涂办证、开锁类小广告",
              "{place}公交站亭被贴满小广告"),
    "E0204": ("{place}有人向行人散发楼盘、健身类传单", "{place}路口有多人散发小广告，传单散落一地",
              "{place}有人向游客派发海鲜排档、潜水项目传单"),
    "E0301": ("{place}工地夜间{hour}点后仍在施工，噪音扰民", "{place}工地凌晨进行混凝土浇筑，噪音很大，影响休息",
              "{place}装修施工中午和晚上仍在打钻，影响居民休息"),
    "E0302": ("{place}工地裸土未覆盖，刮风时扬尘严重", "{place}工地出入口未冲洗车辆，道路扬尘大",
              "{place}工地土方作业未采取喷淋降尘措施"),
    "E0304": ("{place}渣土车沿途遗撒泥土，路面脏污", "{place}路面有大片泥浆遗撒，车辆经过易打滑",
              "{place}运输车辆遗撒砂石，存在安全隐患"),
    "E0401": ("{place}路面出现塌陷坑，直径约{size}米，存在安全隐患", "{place}暴雨后路面下沉开裂",
              "{place}人行道地面塌陷，已有行人绊倒"),
    "E0403": ("{place}施工挖断燃气管道，现场有明显燃气味", "{place}路边燃气管道疑似破裂漏气，请立即处置"),
    "E0501": ("{place}有流动摊贩占道销售水果", "{place}多名游商在路边摆摊卖椰子、海鲜干货，影响通行",
              "{place}晚上有流动烧烤摊占道经营，油烟较大"),
    "E0504": ("{place}商铺占用人行道摆放商品", "{place}餐馆在店外摆桌经营，占用人行道",
              "{place}汽修店在路边占道维修车辆"),
    "E0505": ("{place}机动车占用人行道停放，行人无法通行", "{place}车辆长期占用消防通道停放",
              "{place}路口车辆乱停乱放，造成交通拥堵",
              "{place}有僵尸车长期停放，{days}未移动"),
    "E0506": ("{place}共享单车大量堆放，占用盲道", "{place}电动车乱停放，堵住小区出入口",
              "{place}人行道上电动车、自行车停放杂乱"),
    "E0507": ("{place}有人在路边堆放建材，占用道路", "{place}居民在楼道内堆放杂物，影响通行",
              "{place}空地上堆放废旧家具和杂物"),
    "E06": ("{place}下雨后积水排不出去，影响通行", "{place}排水沟堵塞，有异味", "{place}路面有油污，请相关部门处理"),
    "E0701": ("{place}某工地{workers}名工人反映被拖欠工资{months}个月", "{place}一餐饮店员工反映老板拖欠工资后失联",
              "{place}某物业公司员工反映单位未依法缴纳社保"),
    "E0702": ("{place}消防通道被杂物堵塞", "{place}商铺内私拉乱接电线，存在火灾隐患",
              "{place}小区消防栓无水，灭火器过期"),
    "E0703": ("{place}餐馆液化气瓶摆放不规范，未按期检验", "{place}居民家中燃气软管老化，有燃气味"),
    "E0704": ("{place}有居民在楼道内给电动车充电，存在火灾隐患", "{place}居民从楼上飞线给电动车充电",
              "{place}单元门口电动车集中充电，电线私拉乱接"),
    "E0705": ("{place}有村民在自家屋顶加盖一层", "{place}有人在空地上搭建彩钢板房",
              "{place}商铺擅自扩建雨棚，占用公共空间"),
    "E0706": ("{place}楼上住户漏水至楼下，双方协商未果", "{place}邻居之间因公共空间使用发生纠纷，请社区调解",
              "{place}居民反映邻居家养狗夜间吠叫，影响休息"),
    "E0707": ("{place}居民咨询灵活就业人员社保补贴办理事宜", "{place}有失业人员希望社区推荐就业岗位",
              "{place}居民咨询职业技能培训报名方式"),
    "E0708": ("{place}独居老人生活困难，申请临时救助", "{place}居民咨询低保申请条件及所需材料",
              "{place}残疾人家庭反映生活困难，希望得到帮扶"),
    "E0709": ("{place}居民反映小区物业服务问题，要求有关部门处理", "{place}村民反映土地征收补偿问题",
              "{place}居民反映住房安置问题，多次反映未解决"),
    "E0710": ("{place}广告牌松动，有坠落风险", "{place}路边电线杆倾斜，存在安全隐患",
              "{place}施工围挡倾倒，影响行人安全"),
}
_AFTER_TYPHOON: dict[str, tuple[str, ...]] = {
    "C0402": ("台风过后{place}多棵行道树倒伏，阻断道路", "台风过后{place}行道树折断，压住路边车辆"),
    "C0401": ("台风过后{place}古树大枝折断",),
    "E0401": ("台风暴雨后{place}路面塌陷，请尽快围挡处置",),
    "C0307": ("台风过后{place}广告牌被吹落", "台风过后{place}店铺招牌被吹歪，随时可能掉落"),
    "E0710": ("台风过后{place}电线杆倾斜，电线垂落", "台风过后{place}围挡被吹倒"),
    "E0103": ("台风过后{place}堆积大量断枝和垃圾，未清运",),
}
_FILLERS: dict[str, tuple[str, ...]] = {
    "days": ("两天", "三天", "一周", "多日", "半个多月"),
    "count": ("两", "三", "四", "五"),
    "volume": ("3", "5", "10", "20"),
    "hour": ("22", "23", "零"),
    "size": ("0.5", "1", "1.5", "2"),
    "workers": ("6", "8", "12", "15", "20", "30"),
    "months": ("两", "三", "四", "五"),
}
#: Descriptions of a category with none of its own.
_GENERIC = ("{place}{name}问题，请尽快处理", "{place}发现{name}情况，需要处置", "{place}存在{name}问题")
_SUFFIXES = ("，请尽快处理", "，市民多次反映", "，影响居民出行", "，请相关部门处理", "，望尽快解决")
_PATROL_SUFFIXES = ("，请尽快处理", "，影响居民出行", "，请相关部门处理", "，已拍照上报")
_LANDMARKS = ("旁", "门口", "附近", "对面", "东侧", "西侧", "南侧", "北侧", "", "")


def place_text(issue: dict[str, Any], cell_code: str, places: Places, rng: np.random.Generator) -> tuple[str, str]:
    """Where, as a phrase for the description and as a postal-style address."""
    community = places.community[cell_code]
    street = places.street[cell_code]
    prefix = places.district[cell_code]
    # A social matter is about people at an address, not at a spot beside it.
    side = "" if issue["category"].code in SOCIAL_MATTERS else pick(_LANDMARKS, rng)
    village = community.endswith("村") and not community.endswith("社区")
    number = int(rng.integers(1, 300))
    group = int(rng.integers(1, 9))
    if issue["hotspot"] >= 0:
        spot = HOTSPOTS[issue["hotspot"]]
        side = "" if spot.landmark.endswith("工地") else side
        if spot.road is None:
            return f"{community}{spot.landmark}{side}", f"{prefix}{street}{community}{spot.landmark}"
        return f"{community}{spot.landmark}{side}", f"{prefix}{spot.road}{number}号"
    if village:
        return f"{community}{group}组{side}", f"{prefix}{street}{community}{group}组{number}号"
    road = pick(places.roads_of(community), rng)
    return f"{community}{road}{number}号{side}", f"{prefix}{road}{number}号"


def description(category, place: str, source: str, after_typhoon: bool, rng: np.random.Generator) -> str:
    """A Chinese sentence about the problem, with some variation."""
    if after_typhoon and category.code in _AFTER_TYPHOON and rng.random() < 0.6:
        template = pick(_AFTER_TYPHOON[category.code], rng)
    elif category.code in _DESCRIPTIONS:
        template = pick(_DESCRIPTIONS[category.code], rng)
    else:
        template = pick(_GENERIC, rng)
    slots = {key: pick(values, rng) for key, values in _FILLERS.items() if "{" + key + "}" in template}
    text = template.format(place=place, name=category.name_zh, **slots).replace("工地工地", "工地")
    if category.code not in SOCIAL_MATTERS and rng.random() < 0.25:
        text += pick(_SUFFIXES if source != "patrol" else _PATROL_SUFFIXES, rng)
    if source == "hotline" and rng.random() < 0.3:
        text = "市民来电反映：" + text
    elif source in ("web", "open311") and rng.random() < 0.3:
        text = "网友反映：" + text
    return text
