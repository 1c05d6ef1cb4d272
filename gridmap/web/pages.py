"""HTML pages: the overview map with drill-down (``/``) and the grid manager's "my area" (``/manager``)."""

from __future__ import annotations

import gzip
import json
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, has_request_context, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from jinja2.utils import htmlsafe_json_dumps
from markupsafe import Markup
from werkzeug.datastructures import MultiDict

from gridmap.issues.states import SOURCES, STATUSES
from gridmap.labels import LEVEL_LABELS, METRIC_LABELS, METRICS, SOURCE_LABELS, STATUS_LABELS
from gridmap.maps import coverage_layer
from gridmap.maps.data import HEAT_RAW_LIMIT, MapQuery, issue_weeks, map_data, open_issues
from gridmap.maps.filters import PARAMS, filter_params
from gridmap.maps.overview import HEAT_OPTIONS, render_map
from gridmap.maps.scope import AreaScope
from gridmap.maps.service import MapService
from gridmap.web import LANGUAGES
from gridmap.web.auth import principal, requires, scope
from gridmap.web.headers import csp_nonce
from gridmap.web.maps_api import map_service

blueprint = Blueprint("pages", __name__)

#: Where an issue's link in popups and lists goes; the JSON issue until an issue page exists.
ISSUE_URL = "/api/v1/issues/{id}"
#: Markers are fetched from this zoom level on (≈ 1:8,500, a few blocks across).
MARKER_ZOOM = 16
#: Issues listed on the manager page.
MANAGER_LIST_LIMIT = 300
LANG_COOKIE_DAYS = 365


def manager_scope(service: MapService) -> AreaScope | None:
    """The areas of "my area": the user's own areas, or ``?area=CODE[,CODE…]`` inside them; None: choose."""
    text = request.args.get("area")
    if not (text or "").strip() and scope().areas is None:
        return None
    return service.scope(text, access=scope(), default_all=False)


@blueprint.get("/")
@requires("aggregates:read")
def overview():
    """The district map: drill down district → street → community → cell; filters in the URL."""
    service = map_service()
    area_scope = service.scope(request.args.get("area"), access=scope())
    query = service.query(_args(), area_scope, access=scope())
    return _map_page("overview.html", service, query, mode="overview")


@blueprint.get("/manager")
@requires("aggregates:read")
def manager():
    """A grid manager's area: the map fitted to their communities/cells beside their open issues."""
    service = map_service()
    area_scope = manager_scope(service)
    if area_scope is None:
        streets = [(street, service.catalogue.children(street.code)) for code in service.catalogue.top
                   for street in service.catalogue.children(code)]
        return render_template("manager_choose.html", streets=streets)
    query = service.query(_args(), area_scope, access=scope(), default_metric="open")
    with service.db.sessions() as session:
        listing = open_issues(session, query.issue_filter, limit=MANAGER_LIST_LIMIT)
    return _map_page("manager.html", service, query, mode="manager", listing=listing,
                     areas=[service.catalogue.get(code) for code in area_scope.codes])


@blueprint.after_app_request
def remember_language(response):
    """Keep a language chosen with ``?lang=`` in the ``lang`` cookie, for the next pages."""
    lang = (request.args.get("lang") or "").replace("-", "_")
    if lang in LANGUAGES and request.cookies.get("lang") != lang:
        response.set_cookie("lang", lang, max_age=LANG_COOKIE_DAYS * 86400, samesite="Lax", httponly=True)
    return response


@blueprint.app_context_processor
def language_links() -> dict[str, Any]:
    """The current language and a link to the same page in the other one (for base.html)."""
    if not has_request_context():
        return {}
    current = str(get_locale() or LANGUAGES[0])
    other = "zh_CN" if current == "en" else "en"
    args = MultiDict(request.args)
    args["lang"] = other
    return {"current_lang": current, "other_lang": other,
            "other_lang_url": f"{request.path}?{urlencode(list(args.items(multi=True)))}"}


def _args() -> dict[str, str]:
    """The query string with repeated parameters (status=a&status=b) joined by commas."""
    return {key: ",".join(v for v in request.args.getlist(key) if v) for key in request.args}


def _is_english() -> bool:
    return str(get_locale() or "") == "en"


def category_names(service: MapService) -> dict[str, str]:
    """Category code → name in the page's language."""
    english = _is_english()
    return {c.code: (c.name_en or c.name_zh) if english else c.name_zh for c in service.categories}


def _may_open(code: str) -> bool:
    """Whether the principal may open the map of an area (breadcrumb areas above their own are named, not linked)."""
    return scope().covers_cell(code)


def _map_page(template: str, service: MapService, query: MapQuery, *, mode: str, **context: Any) -> Response:
    """A map page: the folium map, the view's figures and the config its JavaScript draws from."""
    catalogue = service.catalogue
    scope = query.scope
    embed = service.feature_count(query) <= service.embed_max_features
    with service.db.sessions() as session:
        households_available = coverage_layer.households_exist(session)
        households = (coverage_layer.households_per_area(session, service.settings, query.issue_filter)
                      if query.metric == "per_100_households" else None)
        # The figures are computed for the page anyway (summary, children, heat): the page carries
        # them; only the geometry of a large area comes from the cacheable layer endpoint.
        data = map_data(session, catalogue, query, households=households, heat=True, shift=service.shift,
                        translate=_)
        heat = data.pop("heat")
        summary = data["summary"]
        weeks = issue_weeks(session, service.timezone)
    parts = render_map(service.display_bounds(scope), static_url=lambda path: url_for("static", filename=path),
                       tiles=service.tiles, heat_points=heat["points"], translate=_, script_nonce=csp_nonce())

    geometry = service.geometry
    within = None if scope.codes == catalogue.top else scope.param()
    layers: dict[str, Any] = {}
    embedded: dict[str, str] = {}  # placeholder -> JSON text of the features a page carries
    for name, level, prefixes in (("choropleth", query.level, None if within is None else scope.codes),
                                  ("communities", "communities", None), ("streets", "streets", None)):
        count = len(catalogue.codes(level)) if prefixes is None else len(scope.inside(catalogue, level))
        entry: dict[str, Any] = {"level": level}
        if name == "choropleth" and service.uses_tiles(count):
            entry["tiles"] = tile_url(level, geometry.version, prefixes)
        elif count <= service.embed_max_features:
            placeholder = f"__gridmap_features_{name}__"
            embedded[placeholder] = geometry.features_json(level, prefixes)
            entry["features"] = placeholder
        else:
            params = {"v": geometry.version}
            if prefixes is not None:
                params["within"] = ",".join(prefixes)
            entry["url"] = url_for("maps_api.area_geometry", level=level, **params)
        layers[name] = entry

    state = _state(query)
    page_url = url_for("pages.overview" if mode == "overview" else "pages.manager")
    config = {
        "mode": mode,
        "names": parts.names,
        "tile_labels": [_(source.name) for source in service.tiles],
        "state": state,
        "defaults": {"metric": "total" if mode == "overview" else "open"},
        "level": query.level,
        "scope": list(scope.codes),
        "renderer": "svg" if embed else "canvas",
        "layers": layers,
        "data": data,
        "heat": {"mode": heat["mode"], "level": heat["level"], "count": heat["count"], "index": heat["index"],
                 "raw_limit": HEAT_RAW_LIMIT,
                 "options": {"radius": HEAT_OPTIONS["radius"], "blur": HEAT_OPTIONS["blur"],
                             "minOpacity": HEAT_OPTIONS["min_opacity"], "maxZoom": HEAT_OPTIONS["max_zoom"]}},
        "weeks": weeks,
        "marker_zoom": MARKER_ZOOM,
        "households": households_available,
        "urls": {
            "page": page_url,
            "overview": url_for("pages.overview"),
            "data": url_for("maps_api.data"),
            # only what the role may read: the page asks for nothing that would be refused
            "issues": url_for("maps_api.issues") if principal().can("issues:read") else None,
            "coverage": url_for("maps_api.coverage") if principal().can("coverage:read") else None,
            "issue": ISSUE_URL,
        },
        "labels": js_labels(),
        "metric_labels": {key: _(label) for key, label in METRIC_LABELS.items()},
        "level_labels": {key: _(label) for key, label in LEVEL_LABELS.items()},
        "categories": category_names(service),
        "statuses": {status: _(STATUS_LABELS[status]) if status in STATUS_LABELS else status for status in STATUSES},
        "sources": {source: _(SOURCE_LABELS[source]) if source in SOURCE_LABELS else source for source in SOURCES},
        "area_names": {ref.code: ref.name for code in scope.codes for ref in catalogue.ancestors(code)},
    }
    children = []
    if scope.single is not None:
        children = catalogue.children(scope.single)
    elif mode == "manager":
        children = [catalogue.get(code) for code in scope.codes]
    english = _is_english()
    categories = service.categories
    return _compressed(render_template(
        template,
        map=parts,
        config_json=page_json(config, embedded),
        config=config,
        state=state,
        summary=summary,
        metrics=[(key, _(METRIC_LABELS[key]), key == "per_100_households" and not config["households"])
                 for key in METRICS],
        category_groups=[(major, categories.children(major.code)) for major in categories.majors()],
        category_name=lambda c: (c.name_en or c.name_zh) if english else c.name_zh,
        statuses=[(s, config["statuses"][s]) for s in STATUSES],
        sources=[(s, config["sources"][s]) for s in SOURCES],
        breadcrumb=catalogue.ancestors(scope.single) if scope.single is not None else [],
        may_open=_may_open,
        children=children,
        child_figures=data["children"],
        page_url=page_url,
        link=lambda **changes: _link(page_url, state, config["defaults"]["metric"], **changes),
        issue_url=lambda issue_id: ISSUE_URL.format(id=issue_id),
        category_names=config["categories"],
        status_names=config["statuses"],
        weeks=weeks,
        **context,
    ))


def tile_url(level: str, version: str, prefixes: tuple[str, ...] | None) -> str:
    """The vector tile URL template of a level (Leaflet's {z}/{x}/{y}), for the areas inside ``prefixes``."""
    params = {"v": version}
    if prefixes is not None:
        params["within"] = ",".join(prefixes)
    url = url_for("maps_api.vector_tile", level=level, z="0", x="0", y="0", **params)
    return url.replace("/0/0/0.mvt", "/{z}/{x}/{y}.mvt", 1)


def page_json(config: dict[str, Any], embedded: dict[str, str]) -> Markup:
    """The page's config as compact JSON safe inside <script>: <, >, & and ' are escaped, so no
    text in it can end the element. ``embedded`` JSON texts (display geometry) replace their
    placeholder strings as they are, escaped the same way, instead of being decoded and re-encoded."""
    text = str(htmlsafe_json_dumps(config, dumps=json.dumps, ensure_ascii=False, separators=(",", ":")))
    for placeholder, raw in embedded.items():
        safe = raw.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e").replace("'", "\\u0027")
        text = text.replace(f'"{placeholder}"', safe, 1)
    return Markup(text)


def _compressed(html: str) -> Response:
    """The page, gzip-compressed when the browser accepts it (a district's figures compress ~5×)."""
    body = html.encode("utf-8")
    response = Response(body, mimetype="text/html")
    if len(body) >= 1024 and "gzip" in request.headers.get("Accept-Encoding", "").lower():
        response.set_data(gzip.compress(body, compresslevel=6))
        response.headers["Content-Encoding"] = "gzip"
    response.vary.add("Accept-Encoding")
    return response


def _state(query: MapQuery) -> dict[str, Any]:
    """The view's parameters as the page's JavaScript keeps them (and writes them to the URL)."""
    params = filter_params(query.issue_filter)
    return {
        "area": query.scope.param(),
        "metric": query.metric,
        "category": params.get("category", ""),
        "status": list(query.issue_filter.statuses),
        "source": list(query.issue_filter.sources),
        "from": params.get("from", ""),
        "to": params.get("to", ""),
    }


def _link(page_url: str, state: dict[str, Any], default_metric: str, **changes: Any) -> str:
    """A URL of the page with the current state and some parameters changed (None drops one)."""
    merged = {**state, **changes}
    params = []
    for key in PARAMS:
        value = merged.get(key)
        if isinstance(value, (list, tuple)):
            value = ",".join(value)
        if value and not (key == "metric" and value == default_metric):
            params.append((key, value))
    return page_url + ("?" + urlencode(params) if params else "")


def js_labels() -> dict[str, str]:
    """The texts the map's JavaScript shows, in the page's language."""
    return {
        "choropleth_layer": _("分级着色"),
        "communities_layer": _("社区边界"),
        "streets_layer": _("街道边界"),
        "heat_layer": _("热力图"),
        "markers_layer": _("问题点（放大后显示）"),
        "coverage_layer": _("走访覆盖率"),
        "code": _("编码"),
        "total": _("全部"),
        "open": _("未结"),
        "overdue": _("超期"),
        "closed": _("已结"),
        "closed_share": _("结案占比"),
        "households": _("住户"),
        "per_100_households": _("每百户"),
        "drill_into": _("进入"),
        "show_cell": _("查看本网格"),
        "category": _("类别"),
        "status": _("状态"),
        "deadline": _("期限"),
        "reported_at": _("上报时间"),
        "source": _("来源"),
        "address": _("地址"),
        "description": _("描述"),
        "open_issue": _("查看问题"),
        "is_overdue": _("已超期"),
        "legend": _("图例"),
        "per_level": _("每{level}"),
        "loading": _("加载中…"),
        "load_failed": _("加载失败，请重试"),
        "markers_truncated": _("只显示最新的 {n} 条，放大查看更多"),
        "zoom_for_markers": _("放大到街区级别以显示问题点"),
        "heat_areas": _("热力图按{level}汇总（问题多于 {n} 条）"),
        "coverage_visits": _("入户走访率"),
        "coverage_patrol": _("巡查覆盖率"),
        "households_overdue": _("逾期未走访户数"),
        "week": _("{start} 起一周"),
        "all_time": _("全部时间"),
        "play": _("播放"),
        "pause": _("暂停"),
        "no_value": _("无数据"),
        "selected_cell": _("所选网格"),
    }
