"""Load: 20 clients post issues to the production server (`gridmap serve`, waitress) for 30 s.

No answer may be a 5xx, every acknowledged (201) issue must be in the database with what was
posted, and nothing may be there that was not acknowledged, unless its client lost the
connection before reading the answer. GRIDMAP_LOAD_SECONDS shortens or lengthens the run.
"""

from __future__ import annotations

import http.client
import json
import os
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from gridmap.storage.models import Issue
from prodserver import production_server, run_cli

pytestmark = pytest.mark.load

CLIENTS = 20
SECONDS = float(os.environ.get("GRIDMAP_LOAD_SECONDS", "30"))
SERVER_THREADS = 8  # `gridmap serve`'s default
CATEGORIES = ("E0505", "E0102", "C0118")  # parking, garbage, street lights
TIMEOUT_S = 60  # per request; a request slower than this counts as a connection error


@dataclass
class ClientLog:
    """What one client saw."""

    statuses: Counter = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    acknowledged: dict[int, str] = field(default_factory=dict)  # issue id -> description posted
    unanswered: set[str] = field(default_factory=set)  # descriptions whose answer never came
    errors: list[str] = field(default_factory=list)


def cell_points(geodata) -> list[tuple[float, float]]:
    """A point well inside every cell of the layer set."""
    import geopandas as gpd
    import shapely

    cells = gpd.read_file(geodata / "cells.geojson")
    points = shapely.point_on_surface(cells.geometry.values)
    return [(round(p.x, 7), round(p.y, 7)) for p in points]


def post_issues(base: str, headers: dict, points: list, run: str, number: int, until: float, log: ClientLog) -> None:
    """Post issues one after another until ``until``, recording every answer."""
    parts = urlsplit(base)
    connection = None
    sequence = 0
    while time.monotonic() < until:
        sequence += 1
        lon, lat = points[(number * 7919 + sequence) % len(points)]
        description = f"load {run} client {number} #{sequence}"
        body = json.dumps({"category": CATEGORIES[sequence % len(CATEGORIES)], "description": description,
                           "lon": lon, "lat": lat, "source": "hotline"})
        started = time.monotonic()
        try:
            if connection is None:
                connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=TIMEOUT_S)
            connection.request("POST", "/api/v1/issues", body=body, headers=headers)
            response = connection.getresponse()
            answer = response.read()
        except (OSError, http.client.HTTPException) as exc:
            log.unanswered.add(description)
            log.errors.append(f"{type(exc).__name__}: {exc}")
            if connection is not None:
                connection.close()
            connection = None
            continue
        log.latencies.append(time.monotonic() - started)
        log.statuses[response.status] += 1
        if response.status == 201:
            log.acknowledged[json.loads(answer)["id"]] = description
        elif len(log.errors) < 5:
            log.errors.append(f"{response.status}: {answer[:300]!r}")
        if response.will_close:
            connection.close()
            connection = None
    if connection is not None:
        connection.close()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


def test_twenty_clients_posting_for_thirty_seconds_lose_nothing(cli_env, gm, mini_geodata, tmp_path, capsys):
    token = run_cli(cli_env, "tokens", "add", "load-test", "--role", "dispatcher").split()[0]
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    points = cell_points(mini_geodata)
    run = uuid.uuid4().hex[:8]
    logs = [ClientLog() for _ in range(CLIENTS)]
    log_file = tmp_path / "serve.log"
    with production_server(cli_env, log_file, threads=SERVER_THREADS) as base:
        started = time.monotonic()
        until = started + SECONDS
        clients = [threading.Thread(target=post_issues, args=(base, headers, points, run, n, until, logs[n]))
                   for n in range(CLIENTS)]
        for client in clients:
            client.start()
        for client in clients:
            client.join(timeout=SECONDS + TIMEOUT_S + 30)
        elapsed = time.monotonic() - started
        assert not any(client.is_alive() for client in clients), "a client hung"

    statuses = sum((log.statuses for log in logs), Counter())
    latencies = [t for log in logs for t in log.latencies]
    acknowledged = {issue_id: text for log in logs for issue_id, text in log.acknowledged.items()}
    unanswered = set().union(*(log.unanswered for log in logs))
    errors = [e for log in logs for e in log.errors]
    requests = sum(statuses.values()) + len(unanswered)
    summary = (f"load: {CLIENTS} clients, {elapsed:.1f} s, {requests} requests, "
               f"statuses {dict(sorted(statuses.items()))}, {len(unanswered)} without an answer, "
               f"{sum(statuses.values()) / elapsed:.0f} answers/s, "
               f"p50 {percentile(latencies, 0.5) * 1000:.0f} ms, p95 {percentile(latencies, 0.95) * 1000:.0f} ms")
    with capsys.disabled():
        print("\n" + summary)

    server_errors = {status: n for status, n in statuses.items() if status >= 500}
    assert server_errors == {}, f"{summary}\n{errors[:5]}\n{log_file.read_text(errors='replace')[-3000:]}"
    assert set(statuses) == {201}, f"{summary}\n{errors[:5]}"
    assert unanswered == set(), f"{summary}\n{errors[:5]}"  # on loopback every request is answered
    assert statuses[201] >= CLIENTS  # every client got through at least once

    with gm.db.sessions() as session:
        stored = dict(session.execute(
            select(Issue.id, Issue.description).where(Issue.description.like(f"load {run} %"))).all())
    missing = {i: text for i, text in acknowledged.items() if stored.get(i) != text}
    assert missing == {}, f"acknowledged but not stored as posted: {list(missing.items())[:5]}"
    unacknowledged = {i: text for i, text in stored.items() if i not in acknowledged and text not in unanswered}
    assert unacknowledged == {}, f"stored but never acknowledged: {list(unacknowledged.items())[:5]}"
