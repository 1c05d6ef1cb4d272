"""Demo coverage data for the Tianya layer set: households, a year of home visits and of patrol tracks.

Everything here is synthetic and the same for the same seed and end time:

- **Households** are placed by the demo's population surface (:func:`gridmap.demo.population.population_density`,
  none at sea), with invented heads of household, obviously fake phone numbers (1360000xxxx) and
  plausible addresses. About 85 % are ordinary households (visit every 6 months), the rest key
  households of the kinds file (monthly). Most were registered before the year began; some
  arrive during it, and about 3 % move to another cell during the year (their old address kept).
- **Workers** are the demo grid workers (:func:`gridmap.demo.people.demo_workers`, or those
  stored in the database): each visits the households of their cells and patrols their cells.
- **Visits** follow each kind's interval, done by most workers on time; realistic gaps: about
  one worker in eight falls behind (households overdue), while one community's workers never
  miss a visit (its ledger line reads "N households, 100% visited"). Demo issues with source
  ``visit`` (if the demo issues are loaded) are linked to a visit at that time in their cell.
- **Patrols**: on most working days each worker walks a route through a few of their cells
  (favouring inhabited ones), a timed point every few minutes, imported through the same
  splitting as GPX files. Gaps: cells entirely at sea are never patrolled; remote cells rarely;
  about one worker in twelve stopped patrolling three to six weeks ago (a vacancy), so their
  cells are stale; a few routes stray outside the district (those parts are counted outside).
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import numpy as np
import shapely
from sqlalchemy import func, insert, select, update

from gridmap.coverage.households import HouseholdRegistry
from gridmap.coverage.patrols import TrackInput, prepare_tracks, write_tracks
from gridmap.demo.issues import TIMEZONE
from gridmap.demo.population import is_sea, population_density
from gridmap.storage.coverage import Household, HouseholdLocation, Visit, VisitIssue
from gridmap.storage.models import Issue

if TYPE_CHECKING:
    from gridmap.core import Gridmap
    from gridmap.geo.areas import AreaIndex
    from gridmap.geo.layers import LayerSet

DEFAULT_COVERAGE_SEED = 20261122
DEFAULT_HOUSEHOLDS = 6000
#: Kinds of the bundled kinds file and their shares among demo households.
KIND_SHARES = {
    "ordinary": 0.85, "elderly_alone": 0.04, "hardship": 0.03, "special_care": 0.025,
    "community_correction": 0.005, "mental_health": 0.005, "migrant": 0.045,
}
_SURNAMES = ("王", "李", "陈", "林", "黄", "吴", "符", "邢", "周", "张", "刘", "郑", "何", "羊", "董", "蔡", "杨",
             "麦", "云", "文")
_GIVEN = ("建华", "秀英", "海燕", "志强", "玉兰", "德明", "亚妹", "亚雄", "春梅", "国栋", "永福", "美玲", "少华",
          "秋菊", "家豪", "明")
_ROADS = ("解放路", "河西路", "新风街", "三亚湾路", "凤凰路", "迎宾路", "光明街", "胜利路", "金鸡岭路", "月川路",
          "临春河路", "港门路", "海虹路", "育秀路", "天涯路", "建港路", "海坡路", "椰林路", "白鹭路", "同心路")
_NOTES = {
    "ordinary": ("入户走访，家庭情况稳定", "核实家庭人口信息", "宣传反诈知识，发放宣传单",
                 "宣传消防安全，提醒不在楼道给电动车充电",
                 "了解居民诉求，无新问题", "宣传垃圾分类"),
    "elderly_alone": ("探望独居老人，身体状况良好", "提醒老人按时服药，检查燃气阀门", "帮老人预约社区卫生服务中心体检",
                      "老人反映行动不便，已联系志愿者"),
    "hardship": ("了解家庭收入变化，低保材料齐全", "走访困难家庭，送去慰问品", "了解子女就学情况",
                 "协助办理临时救助申请"),
    "special_care": ("走访残疾人家庭，了解康复需求", "看望留守儿童，联系学校了解情况", "了解重病患者就医情况"),
    "community_correction": ("了解社区矫正对象近况，按规定报到", "谈心谈话，了解就业情况", "核实社区矫正对象居住情况"),
    "mental_health": ("了解患者服药情况，病情稳定", "联系监护人，了解近期情况", "协助预约精神专科随访"),
    "migrant": ("核实流动人口居住登记", "宣传出租屋消防安全", "提醒办理居住证", "了解就业和子女入学需求"),
}


@dataclass
class DemoWorker:
    """A demo grid worker: name, cells, and how they work."""

    name: str
    cells: list[str]
    visit_diligence: float
    patrol_attendance: float
    stopped_patrolling: date | None


def _workers(gm: Gridmap) -> list[tuple[str, list[str]]]:
    """Grid workers stored in the database, else the demo workers (not stored)."""
    from gridmap.demo.people import demo_workers
    from gridmap.storage.workflow import GridWorker, GridWorkerCell

    with gm.db.sessions() as session:
        rows = session.execute(select(GridWorker.name, GridWorkerCell.cell_code)
                               .join(GridWorkerCell, GridWorkerCell.worker_id == GridWorker.id)
                               .order_by(GridWorker.name, GridWorkerCell.cell_code)).all()
    if rows:
        cells: dict[str, list[str]] = defaultdict(list)
        for name, cell in rows:
            cells[name].append(cell)
        return sorted(cells.items())
    return [(worker.name, list(worker.cells)) for worker in demo_workers(gm.areas.layers)]


def _local(day: date, hours: float, tz: ZoneInfo) -> datetime:
    return (datetime.combine(day, time(0), tz) + timedelta(hours=float(hours))).replace(microsecond=0)


def _working_time(day: date, rng: np.random.Generator) -> float:
    """A time of day in working hours (hours), morning or afternoon."""
    return float(rng.uniform(9.0, 11.5) if rng.random() < 0.55 else rng.uniform(14.5, 17.5))


def _to_weekday(day: date) -> date:
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


class _Land:
    """Cells of the layer set, whether they have land, and pools of random points on their land."""

    POOL = 24

    def __init__(self, areas: AreaIndex, rng: np.random.Generator) -> None:
        layers = areas.layers
        self.locator = areas.locator
        self.codes = layers.cells["code"].to_numpy(dtype=object)
        self.index = {code: i for i, code in enumerate(self.codes)}
        self.geometries = np.asarray(layers.cells.geometry.values, dtype=object)
        self.bounds = shapely.bounds(self.geometries)
        probe = shapely.point_on_surface(self.geometries)
        self.density = population_density(shapely.get_x(probe), shapely.get_y(probe))
        self.land = ~is_sea(shapely.get_x(probe), shapely.get_y(probe))
        # A layer set far from the demo's population surface (a test district): people spread evenly.
        self.uniform = not (self.density[self.land] > 0).any()
        if self.uniform:
            self.land = np.ones(len(self.codes), dtype=bool)
            self.density = np.ones(len(self.codes))
        self.pools = self._sample_pools(rng)

    def density_at(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """The population surface at points (1 everywhere for a layer set far from it)."""
        return np.ones(len(lon)) if self.uniform else population_density(lon, lat)

    def sea(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """Where points lie at sea (nowhere for a layer set far from the demo)."""
        return np.zeros(len(lon), dtype=bool) if self.uniform else is_sea(lon, lat)

    def _sample_pools(self, rng: np.random.Generator) -> list[np.ndarray]:
        """Up to POOL random land points per land cell, drawn for all cells at once."""
        cells = np.flatnonzero(self.land)
        pools: list[list[tuple[float, float]]] = [[] for _ in self.codes]
        for _ in range(6):
            short = np.array([c for c in cells if len(pools[c]) < self.POOL], dtype=int)
            if not len(short):
                break
            which = np.repeat(short, 8 * self.POOL)
            x = np.round(rng.uniform(self.bounds[which, 0], self.bounds[which, 2]), 6)
            y = np.round(rng.uniform(self.bounds[which, 1], self.bounds[which, 3]), 6)
            ok = (self.locator.locate_indices(x, y) == which) & ~self.sea(x, y)
            for cell, lon, lat in zip(which[ok], x[ok], y[ok]):
                if len(pools[cell]) < self.POOL:
                    pools[cell].append((float(lon), float(lat)))
        result = []
        for cell, pool in enumerate(pools):
            if not pool:
                point = shapely.point_on_surface(self.geometries[cell])
                pool = [(round(point.x, 6), round(point.y, 6))]
            result.append(np.array(pool))
        return result

    def inside(self, lon: float, lat: float) -> bool:
        """True when a point lies in some cell."""
        return bool(self.locator.locate_indices(np.array([lon]), np.array([lat]))[0] >= 0)

    def points_in(self, cell: int, count: int, rng: np.random.Generator) -> np.ndarray:
        """``count`` random lon/lat points inside a cell (on land when it has any)."""
        pool = self.pools[cell]
        return pool[rng.integers(len(pool), size=count)]


def generate_households(layers: LayerSet, count: int, rng: np.random.Generator, *, start: date, end: date,
                        land: _Land) -> list[dict[str, Any]]:
    """Household records (as a household import takes them) placed by the population surface."""
    minx, miny, maxx, maxy = layers.cells.total_bounds
    points: list[tuple[float, float, int]] = []
    peak = float(land.density.max()) or 1.0
    for _ in range(1000):
        if len(points) >= count:
            break
        x = np.round(rng.uniform(minx, maxx, 200_000), 6)
        y = np.round(rng.uniform(miny, maxy, 200_000), 6)
        keep = rng.random(len(x)) * peak < land.density_at(x, y)
        x, y = x[keep], y[keep]
        cell = land.locator.locate_indices(x, y)
        points += [(float(a), float(b), int(c)) for a, b, c in zip(x, y, cell) if c >= 0]
    points = points[:count]
    kinds = list(KIND_SHARES)
    drawn = rng.choice(len(kinds), size=count, p=np.array(list(KIND_SHARES.values())) / sum(KIND_SHARES.values()))
    names = dict(zip(layers.communities["code"], layers.communities["name"]))
    records = []
    year_days = (end - start).days
    for i, (lon, lat, cell) in enumerate(points):
        kind = kinds[int(drawn[i])]
        code = land.codes[cell]
        community = names.get(code[:12], "")
        if community.endswith("村"):
            address = f"{community}{int(rng.integers(1, 9))}组{int(rng.integers(1, 120))}号"
        else:
            road = _ROADS[zlib.crc32(code.encode()) % len(_ROADS)]
            number, building = int(rng.integers(1, 400)), int(rng.integers(1, 12))
            floor, flat = int(rng.integers(1, 7)), int(rng.integers(1, 5))
            address = f"{road}{number}号{building}栋{floor}0{flat}室"
        new = rng.random() < 0.08
        registered = (
            start + timedelta(days=int(rng.integers(1, year_days)))
            if new
            else start - timedelta(days=int(rng.integers(30, 2000)))
        )
        members = 1 if kind == "elderly_alone" else int(min(8, max(1, rng.poisson(2.2) + 1)))
        records.append({
            "external_id": f"DEMO{i + 1:06d}",
            "name": _SURNAMES[int(rng.integers(len(_SURNAMES)))] + _GIVEN[int(rng.integers(len(_GIVEN)))],
            "phone": f"1360000{int(rng.integers(10000)):04d}",
            "kind": kind, "members": members, "address": address, "lon": lon, "lat": lat,
            "registered_on": registered.isoformat(),
        })
    return records


def load_demo_coverage(gm: Gridmap, *, seed: int = DEFAULT_COVERAGE_SEED, end: datetime | None = None,
                       households: int = DEFAULT_HOUSEHOLDS) -> dict[str, Any]:
    """Generate and store demo households, visits and patrols (into a database without households)."""
    tz = ZoneInfo(TIMEZONE)
    end = (end or datetime.now(tz)).astimezone(tz)
    today = end.date()
    start = today - timedelta(days=364)
    rng = np.random.default_rng(seed)
    layers = gm.areas.layers
    land = _Land(gm.areas, rng)
    registry = HouseholdRegistry.for_core(gm)

    # Workers and how they work.
    workers = []
    for name, cells in _workers(gm):
        behind = rng.random() < 0.125
        vacancy = rng.random() < 0.08
        workers.append(DemoWorker(
            name, cells,
            visit_diligence=float(rng.uniform(0.55, 0.75) if behind else rng.uniform(0.93, 1.0)),
            patrol_attendance=float(rng.uniform(0.8, 0.97)),
            stopped_patrolling=today - timedelta(days=int(rng.integers(21, 43))) if vacancy else None,
        ))
    worker_of = {cell: worker for worker in workers for cell in worker.cells}

    # Households, and some moves.
    records = generate_households(layers, households, rng, start=start, end=today, land=land)
    prepared, errors = registry.prepare_households(records, now=end)
    if errors:
        raise RuntimeError(f"demo households did not validate: {errors[0]}")
    specs = [spec for _, spec in prepared]
    # The model community: the 社区 with most households; all its workers are perfect visitors.
    per_community = defaultdict(int)
    for spec in specs:
        per_community[spec["community_code"]] += 1
    community_names = dict(zip(layers.communities["code"], layers.communities["name"]))
    urban = [c for c in per_community if community_names.get(c, "").endswith("社区")] or list(per_community)
    model = max(urban, key=lambda c: (per_community[c], c))
    for worker in workers:
        if any(cell.startswith(model) for cell in worker.cells):
            worker.visit_diligence = 1.0

    with gm.db.session() as session:
        registry.sync_kinds(session)
        intervals = {kind.code: kind.visit_interval_months for kind in registry.kinds}
        ids = registry.insert_households(session, specs, now=end)
        moves = _move_some(session, registry, specs, ids, rng, start=start, today=today, land=land)
        visits = _visit_rows(specs, ids, moves, intervals, worker_of, rng, start=start, today=today, tz=tz,
                             model=model)
        for offset in range(0, len(visits), 5000):
            session.execute(insert(Visit), visits[offset:offset + 5000])
        linked = _link_visit_issues(session, specs, ids, moves, worker_of, rng, tz=tz, start=start)

    village = {code for code, name in community_names.items() if name.endswith("村")}
    tracks = _patrol_tracks(workers, land, rng, start=start, today=today, tz=tz, village=village)
    results, track_errors, _ = prepare_tracks(gm.areas, tracks, timezone_name=TIMEZONE)
    if track_errors:
        raise RuntimeError(f"demo patrols did not split cleanly: {track_errors[0]}")
    with gm.db.session() as session:
        write_tracks(session, results, source="demo")
    return {"households": len(ids), "moves": len(moves), "visits": len(visits) + linked,
            "linked_issues": linked, "tracks": len(results), "model_community": model}


def _move_some(session, registry: HouseholdRegistry, specs, ids, rng, *, start: date, today: date,
               land: _Land) -> dict[int, tuple[date, dict[str, Any]]]:
    """Move about 3 % of households to another cell during the year; return index → (day, new location)."""
    movers = [i for i in range(len(specs)) if rng.random() < 0.03
              and date.fromisoformat(str(specs[i]["registered_on"])) < start]
    land_cells: dict[str, list[int]] = defaultdict(list)
    for index, code in enumerate(land.codes):
        if land.land[index]:
            land_cells[code[:12]].append(index)
    new_specs = []
    for i in movers:
        cell = land.index[specs[i]["cell_code"]]
        same = [c for c in land_cells[specs[i]["community_code"]] if c != cell]  # another cell of the community
        target = int(rng.choice(same)) if same else cell
        lon, lat = land.points_in(target, 1, rng)[0]
        new_specs.append({"x": float(lon), "y": float(lat), "cell": None,
                          "address": specs[i]["address"].split("号")[0] + f"号之{int(rng.integers(2, 9))}"})
    registry.locate_rows(new_specs, None)
    moves = {}
    rows = []
    for i, spec in zip(movers, new_specs):
        if "cell_code" not in spec:
            continue
        day = start + timedelta(days=int(rng.integers(30, 330)))
        moves[i] = (day, spec)
        session.execute(update(HouseholdLocation).where(HouseholdLocation.household_id == ids[i])
                        .values(valid_to=day))
        rows.append({"household_id": ids[i], "valid_from": day, "valid_to": None,
                     **{k: spec[k] for k in ("address", "lon", "lat", "located_by", "cell_code", "community_code",
                                             "street_code", "district_code")}})
    if rows:
        session.execute(insert(HouseholdLocation), rows)
    return moves


def _cell_on(specs, moves, i: int, day: date) -> str:
    if i in moves and day >= moves[i][0]:
        return moves[i][1]["cell_code"]
    return specs[i]["cell_code"]


def _visit_rows(specs, ids, moves, intervals, worker_of, rng, *, start: date, today: date, tz,
                model: str) -> list[dict]:
    """Visits of every household over the year, on schedule by diligent workers, late by the others."""
    now = datetime.now(UTC)
    rows = []
    for i, spec in enumerate(specs):
        registered = date.fromisoformat(str(spec["registered_on"]))
        months = intervals.get(spec["kind"], 6)
        period = 30 * months
        first_day = max(registered, start)
        in_model = spec["community_code"] == model
        if registered >= start:  # a new household is visited soon after it arrives
            day = registered + timedelta(days=int(rng.integers(3, 15 if in_model else 40)))
        else:
            day = first_day + timedelta(days=int(rng.integers(0, max(period - 5, 1))))
        while day <= today:
            cell = _cell_on(specs, moves, i, day)
            worker = worker_of.get(cell)
            visit_day = _to_weekday(day)
            if worker is not None and visit_day <= today and rng.random() < worker.visit_diligence:
                at = _local(visit_day, _working_time(visit_day, rng), tz)
                if at.astimezone(UTC) < now:
                    notes = _NOTES[spec["kind"]] if spec["kind"] in _NOTES else _NOTES["ordinary"]
                    rows.append({"household_id": ids[i], "visitor": worker.name, "visited_at": at,
                                 "visited_on": visit_day,
                                 "cell_code": cell, "notes": notes[int(rng.integers(len(notes)))], "source": "demo",
                                 "created_at": now})
                day = visit_day + timedelta(days=int(period - rng.integers(3, 12)))
            else:
                day = day + timedelta(days=int(rng.integers(20, 60)))  # missed: tried again weeks later
    return rows


def _link_visit_issues(session, specs, ids, moves, worker_of, rng, *, tz, start: date) -> int:
    """Give every demo issue reported at a visit a visit in its cell at that time, and link them."""
    issues = session.execute(select(Issue.id, Issue.cell_code, Issue.reported_at)
                             .where(Issue.source == "visit", Issue.reported_at >= datetime.combine(start, time(0), tz))
                             .order_by(Issue.id)).all()
    if not issues:
        return 0
    by_cell: dict[str, list[int]] = defaultdict(list)
    for i, spec in enumerate(specs):
        by_cell[spec["cell_code"]].append(i)
    now = datetime.now(UTC)
    taken = set()
    links = []
    for issue_id, cell, reported_at in issues:
        day = reported_at.astimezone(tz).date()
        candidates = [i for i in by_cell.get(cell, []) if _cell_on(specs, moves, i, day) == cell
                      and date.fromisoformat(str(specs[i]["registered_on"])) <= day]
        worker = worker_of.get(cell)
        if not candidates or worker is None or (ids[candidates[0]], reported_at) in taken:
            continue
        i = candidates[int(rng.integers(len(candidates)))]
        if (ids[i], reported_at) in taken:
            continue
        taken.add((ids[i], reported_at))
        visit_id = session.scalar(insert(Visit).returning(Visit.id), {
            "household_id": ids[i], "visitor": worker.name, "visited_at": reported_at, "visited_on": day,
            "cell_code": cell, "notes": "入户走访时发现问题，已现场上报", "source": "demo", "created_at": now})
        links.append({"visit_id": visit_id, "issue_id": issue_id})
    if links:
        session.execute(insert(VisitIssue), links)
    return len(links)


def _neighbours(cells: list[int], land: _Land) -> dict[int, list[int]]:
    """For each of a worker's cells, the others whose bounding boxes touch it (a walkable next cell)."""
    bounds = land.bounds[cells]
    pad = 1e-5
    touch = ((bounds[:, None, 0] <= bounds[None, :, 2] + pad) & (bounds[None, :, 0] <= bounds[:, None, 2] + pad)
             & (bounds[:, None, 1] <= bounds[None, :, 3] + pad) & (bounds[None, :, 1] <= bounds[:, None, 3] + pad))
    np.fill_diagonal(touch, False)
    return {cells[i]: [cells[j] for j in np.flatnonzero(touch[i])] for i in range(len(cells))}


def _patrol_tracks(workers: list[DemoWorker], land: _Land, rng: np.random.Generator, *, start: date, today: date,
                   tz: ZoneInfo, village: set[str]) -> list[TrackInput]:
    """A year of patrol tracks: a walk through neighbouring cells of the worker's (4–7 in town, 3–5 in villages).

    Community (社区) workers patrol on most working days; village (村) workers, often part-time,
    about one working day in four.
    """
    tracks: list[TrackInput] = []
    now = datetime.now(UTC).timestamp()
    days = [start + timedelta(days=k) for k in range((today - start).days + 1)]
    weekday = np.array([day.weekday() < 5 for day in days])
    midnight = np.array([datetime.combine(day, time(0), tz).timestamp() for day in days])
    for worker in workers:
        cells = [land.index[c] for c in worker.cells if c in land.index and land.land[land.index[c]]]
        if not cells:
            continue
        weights = np.sqrt(land.density[cells] + 0.01)
        weights = weights / weights.sum()
        neighbours = _neighbours(cells, land)
        rural = worker.cells[0][:12] in village
        on_working_day = 0.25 if rural else worker.patrol_attendance
        attend = rng.random(len(days)) < np.where(weekday, on_working_day, 0.02 if rural else 0.08)
        if worker.stopped_patrolling:
            attend &= np.array([day < worker.stopped_patrolling for day in days])
        chosen = np.flatnonzero(attend)
        m = len(chosen)
        first = rng.choice(len(cells), size=m, p=weights)
        steps = rng.integers(2, 5, size=m) if rural else rng.integers(3, 7, size=m)
        step_draws = rng.random((m, 6))
        begin = midnight[chosen] + rng.uniform(8.5, 9.5, size=m) * 3600
        gaps = rng.uniform(4, 9, size=(m, 14)) * 60
        picks = rng.random((m, 14))
        detours = rng.random(m) < 0.01
        for j in range(m):
            route = [cells[first[j]]]
            for step in range(steps[j]):
                options = [c for c in neighbours[route[-1]] if c not in route]
                if not options:
                    break
                route.append(options[int(step_draws[j, step] * len(options))])
            xy = [
                land.pools[cell][int(picks[j, 2 * k + q] * len(land.pools[cell]))]
                for k, cell in enumerate(route)
                for q in (0, 1)
            ]
            times = begin[j] + np.concatenate([[0.0], np.cumsum(gaps[j, :len(xy) - 1])])
            if detours[j]:  # a detour out of the district (an errand across the border), if one is near
                lon, lat = xy[-1]
                for dx, dy in ((0.02, 0), (-0.02, 0), (0, 0.02), (0, -0.02)):
                    on_land = land.inside(lon + dx, lat + dy)
                    if not on_land and not land.sea(np.array([lon + dx]), np.array([lat + dy]))[0]:
                        xy.append((round(lon + dx, 6), round(lat + dy, 6)))
                        times = np.append(times, times[-1] + 300)
                        break
            if times[-1] >= now:
                continue
            points = [(float(x), float(y), datetime.fromtimestamp(float(t), tz)) for (x, y), t in zip(xy, times)]
            tracks.append(TrackInput(len(tracks) + 1, worker.name, [points]))
    return tracks


def demo_coverage_loaded(gm: Gridmap) -> int:
    """How many households the database holds (the demo is loaded only into an empty registry)."""
    with gm.db.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(Household)) or 0)
