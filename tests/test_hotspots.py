"""Hotspots: Gi* against esda (PySAL), FDR, a planted cluster found and noise not, repeat spots, the API."""

from __future__ import annotations

import re
import warnings
from datetime import date

import numpy as np
import pytest
from esda.getisord import G_Local
from libpysal.weights import Queen, W, lat2W

from analytics_data import add, cell_codes, issue_row
from gridmap.analytics.hotspots import (
    benjamini_hochberg,
    classify,
    getis_ord_gi_star,
    gi_star_table,
    hotspot_cells,
    hotspot_report,
    queen_neighbours,
    repeat_locations,
    two_sided_p,
)
from gridmap.analytics.indicators import Period
from gridmap.security.access import UNLIMITED

JUNE = Period(date(2025, 6, 1), date(2025, 6, 30))
SIDE = 20  # the synthetic lattice is SIDE × SIDE cells


def lattice_neighbours(side: int = SIDE) -> list[list[int]]:
    """Queen neighbours of a side × side lattice (row-major), from libpysal."""
    w = lat2W(side, side, rook=False)
    return [sorted(w.neighbors[i]) for i in range(side * side)]


def esda_z(values, neighbours) -> np.ndarray:
    """Gi* z-scores from esda with binary weights and the cell itself included (star=True)."""
    w = W({i: list(n) for i, n in enumerate(neighbours)}, silence_warnings=True)
    with warnings.catch_warnings():
        # The mini district's islands make the graph disconnected; esda says so when it adds the self-weights.
        warnings.filterwarnings("ignore", "The weights matrix is not fully connected", UserWarning)
        return G_Local(np.asarray(values, dtype=float), w, transform="B", star=True, permutations=0).Zs


@pytest.mark.parametrize("seed, mean", [
    (1, 3.0),  # sparse counts
    (2, 40.0),  # busy cells
    (3, 0.4),  # mostly zeros
])
def test_gi_star_matches_esda_on_a_lattice(seed, mean):
    values = np.random.default_rng(seed).poisson(mean, SIDE * SIDE)
    neighbours = lattice_neighbours()
    np.testing.assert_allclose(getis_ord_gi_star(values, neighbours), esda_z(values, neighbours), rtol=0, atol=1e-6)


def test_gi_star_matches_esda_on_the_mini_cells_and_their_queen_contiguity_matches_libpysal(gm):
    cells = gm.areas.layers.cells
    ours = queen_neighbours(cells)
    theirs = Queen.from_dataframe(cells, use_index=False, silence_warnings=True)
    assert ours == [sorted(theirs.neighbors[i]) for i in range(len(cells))]
    values = np.random.default_rng(7).poisson(4, len(cells))
    np.testing.assert_allclose(getis_ord_gi_star(values, ours), esda_z(values, ours), rtol=0, atol=1e-6)


def test_benjamini_hochberg_on_a_worked_example():
    # p sorted: 0.01 0.02 0.03 0.04 0.5 → p·m/rank: 0.05 0.05 0.05 0.05 0.5, monotone from the top.
    adjusted = benjamini_hochberg([0.04, 0.01, 0.5, 0.03, 0.02])
    np.testing.assert_allclose(adjusted, [0.05, 0.05, 0.5, 0.05, 0.05])
    assert benjamini_hochberg([0.9, 0.95])[1] == pytest.approx(0.95)
    assert two_sided_p(np.array([1.959964]))[0] == pytest.approx(0.05, abs=1e-6)


@pytest.mark.parametrize("z, p_fdr, expected", [
    (3.1, 0.002, "hot-99"),
    (2.2, 0.03, "hot-95"),
    (1.8, 0.07, "hot-90"),
    (1.8, 0.2, "none"),  # not significant after the correction
    (-2.2, 0.03, "cold-95"),
    (-3.1, 0.009, "cold-99"),
])
def test_classes(z, p_fdr, expected):
    assert classify(z, p_fdr) == expected


def test_a_planted_cluster_is_found_and_uniform_noise_is_not():
    neighbours = lattice_neighbours()
    codes = [f"c{i:03d}" for i in range(SIDE * SIDE)]
    planted = {row * SIDE + col for row in range(8, 11) for col in range(12, 15)}  # a 3 × 3 block
    for seed in range(10):
        rng = np.random.default_rng(seed)
        noise = rng.poisson(5, SIDE * SIDE)
        assert [r for r in gi_star_table(codes, noise, neighbours) if r["class"] != "none"] == [], seed
        clustered = noise.copy()
        clustered[sorted(planted)] += rng.poisson(15, len(planted))
        hot = {
            codes.index(r["code"]) for r in gi_star_table(codes, clustered, neighbours) if r["class"].startswith("hot")
        }
        assert planted <= hot, seed
        assert len(hot - planted) <= 16  # at most the ring around the block


def test_hotspot_cells_for_the_map_on_stored_issues(gm):
    codes = cell_codes(gm)
    cells = gm.areas.layers.cells
    neighbours = queen_neighbours(cells)
    centre = max(range(len(codes)), key=lambda i: len(neighbours[i]))  # a cell with a full ring of neighbours
    block = [centre, *neighbours[centre]]
    issues = [issue_row(gm, cell=codes[i], reported="2025-06-05 09:00") for i in block for _ in range(12)]
    issues += [issue_row(gm, cell=code, reported="2025-06-07 09:00") for code in codes]  # one everywhere
    add(gm, issues)
    with gm.db.sessions() as session:
        rows = hotspot_cells(session, gm.areas.layers, JUNE, access=UNLIMITED)
    assert [r["code"] for r in rows] == codes
    assert set(rows[0]) == {"code", "count", "gi_z", "p", "p_fdr", "class"}
    by_code = {r["code"]: r for r in rows}
    assert by_code[codes[centre]]["count"] == 13 and by_code[codes[centre]]["class"] == "hot-99"
    assert max(rows, key=lambda r: r["gi_z"])["code"] == codes[centre]


def test_the_report_compares_with_the_previous_period_and_ranks_hot_cells(gm, client):
    codes = cell_codes(gm)
    neighbours = queen_neighbours(gm.areas.layers.cells)
    centre = max(range(len(codes)), key=lambda i: len(neighbours[i]))
    block = [centre, *neighbours[centre]]
    far = next(i for i in range(len(codes)) if i not in block)
    add(gm, [issue_row(gm, cell=codes[i], reported="2025-06-05 09:00") for i in block for _ in range(10)]
        + [issue_row(gm, cell=codes[far], reported="2025-05-20 09:00") for _ in range(4)])  # May: the previous period
    with gm.db.sessions() as session:
        report = hotspot_report(session, gm.areas.layers, JUNE, access=UNLIMITED)
    assert report["previous_period"] == {"from": "2025-05-02", "to": "2025-05-31"}
    first = {c["code"]: c for c in report["cells"]}[codes[far]]
    assert (first["count"], first["previous_count"], first["change"]) == (0, 4, -4)
    ranked = report["hotspots"]
    assert ranked[0]["code"] == codes[centre] and ranked[0]["new_hotspot"]
    assert [c["gi_z"] for c in ranked] == sorted((c["gi_z"] for c in ranked), reverse=True)
    with client.get("/api/v1/hotspots?from=2025-06-01&to=2025-06-30") as response:
        assert response.status_code == 200
        body = response.get_json()
    assert body["hotspots"][0]["code"] == codes[centre] and len(body["cells"]) == len(codes)


def test_repeat_locations_are_the_same_category_within_30_m_three_times_or_more(gm):
    lon, lat = 109.4400, 18.2400
    metre = 1 / 111_320  # about a metre of latitude in degrees
    cell = cell_codes(gm)[0]
    rows = [
        issue_row(gm, cell=cell, category="E0505", lon=lon, lat=lat, reported="2025-06-02 09:00"),
        issue_row(gm, cell=cell, category="E0505", lon=lon, lat=lat + 20 * metre, reported="2025-06-09 09:00"),
        issue_row(gm, cell=cell, category="E0505", lon=lon, lat=lat - 25 * metre, reported="2025-06-16 09:00"),
        issue_row(gm, cell=cell, category="E0505", lon=lon, lat=lat + 45 * metre,
                  reported="2025-06-17 09:00"),  # 45 m: another spot
        issue_row(gm, cell=cell, category="E0102", lon=lon, lat=lat, reported="2025-06-18 09:00"),  # other category
        issue_row(gm, cell=cell, category="E0102", lon=lon, lat=lat, reported="2025-06-19 09:00"),  # only twice
        issue_row(gm, cell=cell, category="E0505", lon=lon, lat=lat, reported="2025-05-19 09:00"),  # before the period
    ]
    add(gm, rows)
    with gm.db.sessions() as session:
        spots = repeat_locations(session, JUNE, access=UNLIMITED)
        assert len(repeat_locations(session, JUNE, access=UNLIMITED, min_count=2)) == 2
    assert len(spots) == 1
    assert (spots[0]["category"], spots[0]["count"], spots[0]["cell_code"]) == ("E0505", 3, cell)
    assert spots[0]["issue_ids"] == [rows[0].id, rows[1].id, rows[2].id]


@pytest.mark.parametrize("query, fragment", [
    ("radius_m=-5", "radius_m"),  # a radius must be positive
    ("min_count=x", "min_count"),  # not a number
    ("to=yesterday", "to"),  # not a date
    ("from=1900-01-02&to=1900-01-03", "previous period"),  # the comparison period would start before 1900
])
def test_bad_hotspot_queries_get_a_400(client, query, fragment):
    with client.get(f"/api/v1/hotspots?{query}") as response:
        assert response.status_code == 400
        assert fragment in response.get_json()["error"]["message"]


def test_the_planner_page_lists_the_top_20_hot_cells_and_links_to_all_of_them(gm, client):
    codes = cell_codes(gm)
    neighbours = queen_neighbours(gm.areas.layers.cells)
    centre = max(range(len(codes)), key=lambda i: len(neighbours[i]))
    block = {centre, *neighbours[centre]}
    for _ring in range(2):  # three rings around the centre
        block |= {j for i in list(block) for j in neighbours[i]}
    add(gm, [issue_row(gm, cell=codes[i], reported="2025-06-05 09:00") for i in block for _ in range(10)]
        + [issue_row(gm, cell=code, reported="2025-06-07 09:00") for code in codes])
    hot = client.get("/api/v1/hotspots?from=2025-06-01&to=2025-06-30").get_json()["hotspots"]
    assert len(hot) > 20  # the data this test needs: more hot cells than the page lists

    page = client.get("/planner/?from=2025-06-01&to=2025-06-30")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert re.findall(r'<tr data-code="(\d+)"', html) == [c["code"] for c in hot[:20]]  # highest Gi* z first
    assert f"共 {len(hot)} 个热点网格" in html
    show_all = re.search(r'id="hot-cells-all" href="([^"]+)"', html).group(1).replace("&amp;", "&")
    assert "hot_cells=all" in show_all and "from=2025-06-01" in show_all

    everything = client.get(show_all).get_data(as_text=True)
    assert re.findall(r'<tr data-code="(\d+)"', everything) == [c["code"] for c in hot]
    assert 'id="hot-cells-top"' in everything and 'id="hot-cells-all"' not in everything

    refused = client.get("/planner/?hot_cells=most")
    assert refused.status_code == 400 and "hot_cells" in refused.get_data(as_text=True)
