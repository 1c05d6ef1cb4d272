"""Labels the map UI shows, in Chinese; the Chinese text is the message id of the translations.

The core knows no Flask: labels are only *marked* here with :func:`N_` (so ``pybabel extract``
finds them, see ``babel.cfg``); the web layer translates them with gettext when it renders.
"""

from __future__ import annotations

from collections.abc import Callable

Translate = Callable[[str], str]


def N_(message: str) -> str:
    """Mark ``message`` for translation without translating it (extracted by pybabel)."""
    return message


def untranslated(message: str) -> str:
    """The Translate of the core: the Chinese message id itself."""
    return message


#: Choropleth metrics, in the order the metric menu lists them.
METRICS: tuple[str, ...] = ("total", "open", "overdue", "closed", "closed_share", "per_100_households")
#: Metrics that are shares or rates rather than counts of issues.
RATIO_METRICS: frozenset[str] = frozenset({"closed_share", "per_100_households"})
METRIC_LABELS: dict[str, str] = {
    "total": N_("全部问题"),
    "open": N_("未结"),
    "overdue": N_("超期"),
    "closed": N_("已结"),
    "closed_share": N_("结案占比"),
    "per_100_households": N_("每百户问题数"),
}

#: The Chinese names of the workflow statuses (gridmap.issues.states.STATUS_LABELS is this table).
STATUS_LABELS: dict[str, str] = {
    "reported": N_("待立案"),
    "registered": N_("已立案"),
    "rejected": N_("不予立案"),
    "dispatched": N_("已派遣"),
    "in_progress": N_("处置中"),
    "handled": N_("已反馈"),
    "checked": N_("已核查"),
    "closed": N_("已结案"),
    "revisited": N_("已回访"),
    "suspended": N_("挂账"),
}

SOURCE_LABELS: dict[str, str] = {
    "patrol": N_("巡查上报"),
    "hotline": N_("12345热线"),
    "web": N_("网站"),
    "visit": N_("入户走访"),
    "open311": N_("Open311"),
    "import": N_("导入"),
}

LEVEL_LABELS: dict[str, str] = {
    "districts": N_("区县"),
    "streets": N_("街道/镇"),
    "communities": N_("社区/村"),
    "cells": N_("网格"),
}

NO_DATA = N_("无数据")


def status_label(status: str, translate: Translate = untranslated) -> str:
    """The display label of a workflow status (the status itself when it has none)."""
    label = STATUS_LABELS.get(status)
    return translate(label) if label else status


def source_label(source: str, translate: Translate = untranslated) -> str:
    """The display label of an issue source (the source itself when it has none)."""
    label = SOURCE_LABELS.get(source)
    return translate(label) if label else source
