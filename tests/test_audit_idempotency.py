"""The audit log and idempotent intake."""

from __future__ import annotations

import threading

import pytest
from click.testing import CliRunner
from sqlalchemy import func, insert, select

from conftest import make_token
from gridmap.cli import main
from gridmap.security import audit
from gridmap.storage.db import Database
from gridmap.storage.models import Issue
from gridmap.storage.security import AuditEntry
from gridmap.storage.workflow import GridWorker
from helpers import cell_point, write_csv

COMMUNITY = "460204001001"


def a_body(gm, **extra) -> dict:
    cell = sorted(c for c in gm.areas.layers.cells["code"] if c.startswith(COMMUNITY))[0]
    lon, lat = cell_point(gm.geodata, cell)
    return {"category": "E0102", "description": "路边垃圾堆积", "lon": lon, "lat": lat,
            "reporter": {"name": "张三", "phone": "13812345678"}, **extra}


def issue_count(gm) -> int:
    with gm.db.sessions() as session:
        return session.scalar(select(func.count()).select_from(Issue))


# --- audit log ---------------------------------------------------------------------------------------


def test_every_change_is_logged_with_who_when_and_the_values_before_and_after(app, gm):
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {make_token(gm, 'dispatcher', name='王调度台')}"
    issue_id = client.post("/api/v1/issues", json=a_body(gm)).get_json()["id"]
    assert client.post(f"/api/v1/issues/{issue_id}/transitions", json={"action": "register"}).status_code == 201
    with gm.db.sessions() as session:
        entries = session.scalars(select(AuditEntry).where(AuditEntry.entity == "issues",
                                                           AuditEntry.entity_id == str(issue_id))
                                  .order_by(AuditEntry.id)).all()
    created, registered = entries[0], entries[-1]
    assert created.operation == "insert" and created.actor == "token:王调度台"
    assert created.after["description"] == "路边垃圾堆积" and created.before is None
    assert created.context == "POST /api/v1/issues"
    assert registered.operation == "update"
    assert registered.before["status"] == "reported" and registered.after["status"] == "registered"
    assert registered.context == f"POST /api/v1/issues/{issue_id}/transitions"


def test_admins_read_the_log_and_nobody_else(app, gm, client, client_as):
    client.post("/api/v1/issues", json=a_body(gm))
    body = client.get("/api/v1/audit?entity=issues").get_json()
    assert body["total"] >= 1 and body["entries"][0]["entity"] == "issues"
    assert client.get("/admin/audit").status_code == 200
    for role in ("dispatcher", "planner"):
        assert client_as(role).get("/api/v1/audit").status_code == 403


def test_secrets_never_reach_the_log(gm, client):
    from gridmap.security.access import add_user

    with gm.db.session() as session:
        add_user(session, "王调度", "dispatcher", (), "a secret passphrase")
    text = client.get("/api/v1/audit?entity=users").get_data(as_text=True)
    assert client.get("/api/v1/audit?entity=users").get_json()["entries"][0]["after"]["name"] == "王调度"
    assert "a secret passphrase" not in text and "scrypt:" not in text and "pbkdf2:" not in text
    tokens = client.get("/api/v1/audit?entity=api_tokens").get_json()["entries"]
    assert tokens and all(entry["after"]["token_hash"] == "***" for entry in tokens)


def test_a_cli_import_is_logged_as_the_operator_in_one_summary_entry(cli_env, gm, tmp_path):
    body = a_body(gm)
    rows = [{"category": "E0102", "description": f"第{i}件", "lon": body["lon"], "lat": body["lat"],
             "reported_at": "2025-03-03 09:00"} for i in range(120)]
    result = CliRunner().invoke(main, ["issues", "import", str(write_csv(tmp_path / "in.csv", rows))])
    assert result.exit_code == 0, result.output
    with gm.db.sessions() as session:
        entries = session.scalars(select(AuditEntry).where(AuditEntry.entity == "issues",
                                                           AuditEntry.operation == "insert")).all()
    assert len(entries) == 1
    assert entries[0].actor.startswith("cli:") and "(120 rows)" in entries[0].entity_id
    assert entries[0].context.startswith("gridmap issues import")
    assert len(entries[0].after["ids"]) == 120


def worker_entries(gm) -> list[AuditEntry]:
    with gm.db.sessions() as session:
        return session.scalars(select(AuditEntry).where(AuditEntry.entity == "grid_workers")
                               .order_by(AuditEntry.id)).all()


def test_a_small_bulk_insert_is_logged_row_by_row_with_the_ids_its_returning_clause_gave(gm):
    with gm.db.session() as session:
        ids = list(session.scalars(insert(GridWorker).returning(GridWorker.id, sort_by_parameter_order=True),
                                   [{"name": "李网格"}, {"name": "赵网格"}]))
    entries = worker_entries(gm)
    assert [(e.operation, e.entity_id, e.after["name"]) for e in entries] == [
        ("insert", str(ids[0]), "李网格"), ("insert", str(ids[1]), "赵网格")]


def test_the_log_can_be_switched_off_for_a_block_and_is_on_again_after_it(gm):
    assert audit.installed()  # the core façade installed it when it opened the database
    with audit.switched_off():
        assert not audit.installed()
        with gm.db.session() as session:
            session.add(GridWorker(name="不记录"))
    with gm.db.session() as session:
        session.add(GridWorker(name="记录"))
    assert audit.installed()
    assert [e.after["name"] for e in worker_entries(gm)] == ["记录"]


def test_opening_a_database_by_itself_installs_no_log(gm):
    """Storage knows nothing of the log: the core façade installs it."""
    audit.uninstall()
    try:
        Database(gm.db.url).dispose()
        assert not audit.installed()
    finally:
        audit.install()


# --- idempotent intake -------------------------------------------------------------------------------


def test_a_retried_post_with_the_same_key_makes_one_issue(client, gm):
    body = a_body(gm)
    first = client.post("/api/v1/issues", json=body, headers={"Idempotency-Key": "req-0001"})
    again = client.post("/api/v1/issues", json=body, headers={"Idempotency-Key": "req-0001"})
    assert first.status_code == 201 and again.status_code == 200
    assert again.get_json()["id"] == first.get_json()["id"] and again.headers["Idempotent-Replayed"] == "true"
    assert issue_count(gm) == 1


def test_client_request_id_in_the_body_works_like_the_header(client, gm):
    body = a_body(gm, client_request_id="7d0c7f0e-1111")
    ids = {client.post("/api/v1/issues", json=body).get_json()["id"] for _ in range(3)}
    assert len(ids) == 1 and issue_count(gm) == 1


def test_a_key_reused_for_another_request_is_refused(client, gm):
    client.post("/api/v1/issues", json=a_body(gm), headers={"Idempotency-Key": "k1"})
    other = client.post("/api/v1/issues", json=a_body(gm, description="另一件事"), headers={"Idempotency-Key": "k1"})
    assert other.status_code == 409 and "different request" in other.get_json()["error"]["message"]
    assert issue_count(gm) == 1


def test_keys_belong_to_their_client(app, gm):
    one, two = app.test_client(), app.test_client()
    one.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {make_token(gm, 'worker', ('460204001001001',))}"
    two.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {make_token(gm, 'dispatcher')}"
    body = a_body(gm)
    body["lon"], body["lat"] = cell_point(gm.geodata, "460204001001001")
    a = one.post("/api/v1/issues", json=body, headers={"Idempotency-Key": "same"}).get_json()["id"]
    b = two.post("/api/v1/issues", json=body, headers={"Idempotency-Key": "same"}).get_json()["id"]
    assert a != b and issue_count(gm) == 2


def test_concurrent_retries_make_one_issue(app, gm):
    secret = make_token(gm, "dispatcher")
    body, answers = a_body(gm), []

    def post() -> None:
        client = app.test_client()
        response = client.post("/api/v1/issues", json=body,
                               headers={"Authorization": f"Bearer {secret}", "Idempotency-Key": "storm"})
        answers.append((response.status_code, response.get_json()["id"]))

    threads = [threading.Thread(target=post) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(answers) == 8
    assert sorted(status for status, _ in answers) == [200] * 7 + [201]
    assert len({issue_id for _, issue_id in answers}) == 1 and issue_count(gm) == 1


def test_an_open311_retry_with_the_same_key_returns_the_first_request(anon_client, gm):
    from gridmap.interop.open311 import add_api_key

    with gm.db.session() as session:
        key = add_api_key(session, "微信小程序")
    body = a_body(gm)
    form = {"api_key": key, "service_code": "E0102", "lat": body["lat"], "long": body["lon"], "description": "垃圾"}
    first = anon_client.post("/open311/v2/requests.json", data=form, headers={"Idempotency-Key": "wx-1"})
    again = anon_client.post("/open311/v2/requests.json", data=form, headers={"Idempotency-Key": "wx-1"})
    assert first.status_code == 201 and again.status_code == 201
    assert first.get_json()[0]["service_request_id"] == again.get_json()[0]["service_request_id"]
    assert first.get_json()[0]["token"] == again.get_json()[0]["token"]
    assert issue_count(gm) == 1


@pytest.mark.parametrize("key, message", [
    ("x" * 201, "at most 200"),  # too long
    ("bad\u0000key", "printable"),  # control character
])
def test_an_unusable_key_is_a_clear_400(client, gm, key, message):
    response = client.post("/api/v1/issues", json=a_body(gm, client_request_id=key))
    assert response.status_code == 400 and message in response.get_json()["error"]["message"]
    assert issue_count(gm) == 0


def test_a_write_blocked_by_a_long_sqlite_write_is_a_503_to_retry_and_loses_nothing(mini_geodata, tmp_path):
    """A long import holds SQLite's write lock; other writers wait busy_timeout (10 s), then get 503 + Retry-After."""
    import sqlite3

    from gridmap.core import Gridmap
    from gridmap.web import create_app

    path = tmp_path / "busy.sqlite3"
    settings = {"geodata": str(mini_geodata), "database_url": f"sqlite:///{path}", "instance": str(tmp_path)}
    core = Gridmap(settings)
    core.init_database()
    app = create_app(settings)
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {make_token(core, 'dispatcher')}"
    body = a_body(core)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # what a long import does
    try:
        busy = client.post("/api/v1/issues", json=body, headers={"Idempotency-Key": "retry-me"})
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert busy.status_code == 503 and busy.headers["Retry-After"] == "5"
    assert "retry" in busy.get_json()["error"]["message"]
    again = client.post("/api/v1/issues", json=body, headers={"Idempotency-Key": "retry-me"})
    assert again.status_code == 201 and issue_count(core) == 1
    app.extensions["gridmap"].close()
    core.close()
