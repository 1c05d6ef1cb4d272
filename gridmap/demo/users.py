"""Demo accounts: one user per role, so the demo can be tried from the login page.

They share one published password, so they are made only by ``gridmap demo`` / ``gridmap init
--demo`` and only into a database without users. Never use them on a server others can reach.
"""

from __future__ import annotations

from sqlalchemy import func, select

from gridmap.security.access import add_user
from gridmap.storage.security import User
from gridmap.storage.workflow import GridWorker, GridWorkerCell

DEMO_PASSWORD = "gridmap-demo"


def demo_accounts(gm) -> list[tuple[str, str, tuple[str, ...]]]:
    """(name, role, scopes) of the demo users, scoped to real areas and departments of the layer set."""
    communities = sorted(gm.areas.layers.level("communities")["code"])
    with gm.db.sessions() as session:
        worker = session.scalar(select(GridWorker).order_by(GridWorker.id).limit(1))
        cells = tuple(session.scalars(select(GridWorkerCell.cell_code).where(GridWorkerCell.worker_id == worker.id)
                                      .order_by(GridWorkerCell.cell_code))) if worker else ()
    if not cells:
        cells = tuple(sorted(c for c in gm.areas.layers.cells["code"] if c.startswith(communities[0]))[:20])
    department = "市政管理处" if "市政管理处" in gm.routing.departments() else gm.routing.departments()[0]
    return [
        ("admin", "admin", ()),
        ("dispatcher", "dispatcher", ()),
        ("manager", "manager", (communities[0][:9],)),  # the first street
        ("worker", "worker", cells),
        ("handler", "handler", (department,)),
        ("planner", "planner", ()),
    ]


def create_demo_users(gm) -> list[tuple[str, str, tuple[str, ...]]]:
    """Make the demo users unless the database has users already; return those made."""
    with gm.db.sessions() as session:
        if session.scalar(select(func.count()).select_from(User)):
            return []
    accounts = demo_accounts(gm)
    with gm.db.session() as session:
        for name, role, scopes in accounts:
            add_user(session, name, role, scopes, DEMO_PASSWORD)
    return accounts
