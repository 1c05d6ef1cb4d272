"""Rate limits: token buckets with a fake clock, and the limit on anonymous Open311 intake."""

from __future__ import annotations

import os
import subprocess
import threading

import pytest
from sqlalchemy import func, select

from gridmap.errors import InvalidInput
from gridmap.interop.open311 import add_api_key
from gridmap.security.ratelimit import Rate, RateLimiter, retry_after_seconds
from gridmap.storage.models import Issue
from gridmap.web.limits import EXTENSION, IntakeLimits
from helpers import cell_point
from prodserver import GRIDMAP
from test_open311 import errors_of, post


class FakeClock:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# --- parsing -----------------------------------------------------------------------------------


@pytest.mark.parametrize("text, rate", [
    ("30/minute", Rate(30, 60.0)),  # the default
    ("5/second", Rate(5, 1.0)),
    ("1000 / hours", Rate(1000, 3600.0)),  # spaces and plural
    ("2/min", Rate(2, 60.0)),  # short names
    ("100/d", Rate(100, 86400.0)),
    ("10/S", Rate(10, 1.0)),  # any case
])
def test_rates_are_count_per_period(text, rate):
    assert Rate.parse(text) == rate


@pytest.mark.parametrize("text", ["off", "OFF", "none", "0", "", None])
def test_a_limit_can_be_switched_off(text):
    assert Rate.parse(text) is None


@pytest.mark.parametrize("text", [
    "30",  # no period
    "30/fortnight",  # unknown period
    "0/minute",  # zero count: write off
    "-3/minute",  # negative
    "1.5/second",  # not a whole count
    "30/ms",  # milliseconds are not a period here
])
def test_bad_rates_say_how_to_write_one(text):
    with pytest.raises(InvalidInput, match=r"write COUNT/PERIOD .* \(e.g. 30/minute\), or off"):
        Rate.parse(text)


# --- token buckets -----------------------------------------------------------------------------


def test_a_client_gets_its_burst_then_one_request_per_interval():
    clock = FakeClock()
    limiter = RateLimiter(Rate(3, 60.0), clock=clock)  # a token every 20 s
    assert [limiter.hit("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.hit("a") == pytest.approx(20.0)
    clock.advance(15)
    assert limiter.hit("a") == pytest.approx(5.0)  # refused requests take nothing
    clock.advance(5)
    assert limiter.hit("a") == 0.0
    assert limiter.hit("a") == pytest.approx(20.0)


def test_clients_are_limited_separately():
    limiter = RateLimiter(Rate(1, 60.0), clock=FakeClock())
    assert limiter.hit("10.0.0.1") == 0.0
    assert limiter.hit("10.0.0.1") > 0
    assert limiter.hit("10.0.0.2") == 0.0


def test_a_long_pause_refills_no_more_than_the_burst():
    clock = FakeClock()
    limiter = RateLimiter(Rate(2, 60.0), clock=clock)
    limiter.hit("a")
    clock.advance(86400)
    assert [limiter.hit("a") for _ in range(3)] == [0.0, 0.0, pytest.approx(30.0)]


def test_a_refund_gives_back_one_request():
    limiter = RateLimiter(Rate(1, 60.0), clock=FakeClock())
    limiter.hit("a")
    limiter.refund("a")
    assert limiter.hit("a") == 0.0


def test_memory_stays_bounded_and_idle_clients_are_forgotten():
    clock = FakeClock()
    limiter = RateLimiter(Rate(2, 60.0), max_clients=100, clock=clock)
    for n in range(1000):  # a flood of new addresses
        limiter.hit(f"10.0.{n // 256}.{n % 256}")
    assert len(limiter) == 100
    clock.advance(60)  # every bucket is full again: they go as new clients come
    for n in range(50):
        limiter.hit(f"192.168.0.{n}")
    assert len(limiter) <= 100 - 50 + 2  # at most two old ones left per new one, here all but a few
    assert limiter.hit("10.0.3.231") == 0.0  # a forgotten client starts with a full bucket


def test_concurrent_requests_of_one_client_never_exceed_the_burst():
    limiter = RateLimiter(Rate(50, 3600.0), clock=FakeClock())
    allowed = []
    barrier = threading.Barrier(8)

    def client() -> None:
        barrier.wait()
        allowed.extend(limiter.hit("a") == 0.0 for _ in range(100))

    threads = [threading.Thread(target=client) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sum(allowed) == 50


@pytest.mark.parametrize("wait, seconds", [(0.01, 1), (1.0, 1), (1.2, 2), (29.5, 30)])
def test_retry_after_is_whole_seconds_rounded_up(wait, seconds):
    assert retry_after_seconds(wait) == seconds


# --- anonymous Open311 intake ------------------------------------------------------------------


@pytest.fixture
def key(gm) -> str:
    """An Open311 API key (as `gridmap keys add` makes)."""
    with gm.db.session() as session:
        return add_api_key(session, "citizen-app")


@pytest.fixture
def limited(app, settings):
    """The app with intake limits of 2/minute per IP and 3/minute per key, on a fake clock."""
    clock = FakeClock()
    app.extensions[EXTENSION] = IntakeLimits.from_settings(
        {"intake_rate_limit": "2/minute", "intake_key_rate_limit": "3/minute"}, clock=clock)
    return clock


def form(key: str, mini_geodata) -> dict:
    lon, lat = cell_point(mini_geodata, "460204001001001")
    return {"api_key": key, "service_code": "E0102", "lat": lat, "long": lon, "description": "路边暴露垃圾"}


def from_ip(anon_client, ip: str):
    anon_client.environ_base["REMOTE_ADDR"] = ip
    return anon_client


def issue_count(gm) -> int:
    with gm.db.sessions() as session:
        return session.scalar(select(func.count()).select_from(Issue))


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_anonymous_intake_beyond_the_limit_is_429_with_retry_after(anon_client, gm, key, limited, mini_geodata, fmt):
    client = from_ip(anon_client, "10.1.1.1")
    assert [post(client, f"/requests.{fmt}", data=form(key, mini_geodata)).status_code for _ in range(2)] == [201, 201]
    refused = post(client, f"/requests.{fmt}", data=form(key, mini_geodata))
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "30"  # 2/minute: the next request in 30 s
    ((code, message),) = errors_of(refused, fmt)  # the spec's error list, in the requested format
    assert code == 429
    assert message == "too many requests from 10.1.1.1: at most 2/minute (setting intake_rate_limit); try again in 30 s"
    assert issue_count(gm) == 2  # nothing written for the refused one
    limited.advance(30)
    assert post(client, f"/requests.{fmt}", data=form(key, mini_geodata)).status_code == 201


def test_other_addresses_are_not_held_back_by_one(anon_client, key, limited, mini_geodata):
    for _ in range(3):
        post(from_ip(anon_client, "10.1.1.1"), "/requests.json", data=form(key, mini_geodata))
    assert post(from_ip(anon_client, "10.1.1.2"), "/requests.json", data=form(key, mini_geodata)).status_code == 201


def test_one_api_key_is_limited_over_all_its_addresses(anon_client, gm, key, limited, mini_geodata):
    statuses = [post(from_ip(anon_client, f"10.2.0.{n}"), "/requests.json", data=form(key, mini_geodata)).status_code
                for n in range(5)]
    assert statuses == [201, 201, 201, 429, 429]
    refused = post(from_ip(anon_client, "10.2.0.9"), "/requests.json", data=form(key, mini_geodata))
    assert refused.headers["Retry-After"] == "20"  # 3/minute
    assert "at most 3/minute (setting intake_key_rate_limit)" in errors_of(refused, "json")[0][1]
    # The refused requests did not use up their addresses' own allowance.
    limited.advance(20)
    assert post(from_ip(anon_client, "10.2.0.4"), "/requests.json", data=form(key, mini_geodata)).status_code == 201
    assert issue_count(gm) == 4


def test_signed_in_users_and_tokens_are_not_limited(client, key, limited, mini_geodata):
    client.environ_base["REMOTE_ADDR"] = "10.1.1.1"
    statuses = {post(client, "/requests.json", data=form(key, mini_geodata)).status_code for _ in range(6)}
    assert statuses == {201}


def test_the_limit_comes_from_the_settings(settings, gm, key, mini_geodata):
    from gridmap.web import create_app

    app = create_app({**settings, "TESTING": True, "intake_rate_limit": "1/hour", "intake_key_rate_limit": "off"})
    try:
        client = app.test_client()
        statuses = [post(client, "/requests.json", data=form(key, mini_geodata)).status_code for _ in range(2)]
        assert statuses == [201, 429]
        assert app.extensions[EXTENSION].per_key is None
    finally:
        app.extensions["gridmap"].close()


def test_a_bad_limit_setting_stops_the_server_at_start_up(cli_env, gm):
    result = subprocess.run([*GRIDMAP, "serve", "--port", "0"],
                            env={**os.environ, **cli_env, "GRIDMAP_INTAKE_RATE_LIMIT": "lots"},
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "gridmap: error: bad rate limit 'lots': write COUNT/PERIOD" in result.stderr
