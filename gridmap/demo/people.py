"""The demo's people: grid workers of cells, department staff and the callers who report issues.

Every name is invented and every phone number obviously fake (1380000xxxx grid workers,
1390000xxxx callers, 1370000xxxx residents); the same cell or department always gets the same
people, so the demo is the same on every run.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from typing import TypeVar

import numpy as np

from gridmap.geo.layers import LayerSet
from gridmap.issues.dispatch import Worker

#: Cells per demo grid worker (about).
DEMO_CELLS_PER_WORKER = 20

T = TypeVar("T")

_SURNAMES = (
    "王", "李", "陈", "林", "黄", "吴", "符", "邢", "周", "张", "刘", "郑", "何", "羊", "董", "孙", "蔡", "杨",
    "许", "高", "卢", "潘", "麦", "云", "钟", "冯", "韩", "曾", "唐", "文",
)
_GIVEN_NAMES = (
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超", "秀英",
    "霞", "平", "刚", "桂英", "海燕", "文华", "小红", "建国", "志强", "海峰", "春梅", "玉兰", "国栋", "德明",
    "亚妹", "亚雄", "宏伟", "晓燕", "家豪", "子涵", "雨轩", "思琪", "海龙", "秋菊", "永福", "昌盛", "少华", "美玲",
)


def pick(options: Sequence[T], rng: np.random.Generator) -> T:
    """One of ``options``, drawn with ``rng``."""
    return options[int(rng.integers(len(options)))]


def grid_worker(cell_code: str) -> tuple[str, str]:
    """The synthetic grid worker (网格员) of a cell: a stable name and an obviously fake phone number."""
    mix = zlib.crc32(cell_code.encode("utf-8"))
    name = _SURNAMES[mix % len(_SURNAMES)] + _GIVEN_NAMES[(mix // len(_SURNAMES)) % len(_GIVEN_NAMES)]
    return name, f"1380000{mix % 10000:04d}"


def staff_of(department: str | None) -> tuple[str, ...]:
    """Four synthetic staff names of a department, the same on every run."""
    mix = zlib.crc32((department or "").encode("utf-8"))
    return tuple(
        _SURNAMES[(mix >> (3 * i)) % len(_SURNAMES)] + _GIVEN_NAMES[(mix >> (5 * i + 1)) % len(_GIVEN_NAMES)]
        for i in range(4)
    )


def reporter(source: str, cell_code: str, rng: np.random.Generator) -> tuple[str, str]:
    """Who reported: the cell's grid worker on patrol, a resident on a visit, a caller otherwise."""
    if source == "patrol":
        return grid_worker(cell_code)
    surname = pick(_SURNAMES, rng)
    if source == "visit":
        return surname + pick(_GIVEN_NAMES, rng), f"1370000{int(rng.integers(10000)):04d}"
    if source in ("hotline", "import"):
        return surname + pick(("先生", "女士"), rng), f"1390000{int(rng.integers(10000)):04d}"
    return surname + pick(_GIVEN_NAMES, rng), f"1390000{int(rng.integers(10000)):04d}"


def demo_workers(layers: LayerSet, cells_per_worker: int = DEMO_CELLS_PER_WORKER) -> list[Worker]:
    """Synthetic grid workers of a layer set: per community one per about ``cells_per_worker`` cells, stable."""
    by_community: dict[str, list[str]] = {}
    for code in sorted(layers.cells["code"]):
        by_community.setdefault(layers.ancestors(code)["community"], []).append(code)
    workers: list[Worker] = []
    used: set[str] = set()
    for community in sorted(by_community):
        cells = by_community[community]
        for part in np.array_split(np.array(cells, dtype=object), max(1, math.ceil(len(cells) / cells_per_worker))):
            chunk = [str(code) for code in part]
            name, phone = grid_worker(chunk[0])
            for code in chunk[1:]:
                if name not in used:
                    break
                name, phone = grid_worker(code)
            base, number = name, 2
            while name in used:
                name, number = f"{base}{number}", number + 1
            used.add(name)
            workers.append(Worker(name, phone, tuple(chunk)))
    return workers
