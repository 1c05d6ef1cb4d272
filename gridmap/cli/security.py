"""Who may use the service: ``users``, ``tokens`` (web and API) and ``keys`` (Open311 API keys)."""

from __future__ import annotations

import sys

import click

from gridmap.cli.common import GridmapGroup, core, initialised_core


@click.group(cls=GridmapGroup)
def keys() -> None:
    """Open311 API keys (only their hashes are stored)."""


@keys.command("add")
@click.argument("name")
def keys_add(name: str) -> None:
    """Create a key for the client NAME and print it once (it cannot be shown again)."""
    from gridmap.interop.open311 import add_api_key

    gm = core()
    gm.db.migrate()
    with gm.db.session() as session:
        key = add_api_key(session, name)
    click.echo(key)
    click.echo(f"API key for {name!r} created; it is shown only now: store it safely", err=True)


def _checked_role_and_scopes(gm, role: str, scopes: tuple[str, ...]) -> tuple[str, ...]:
    from gridmap.security.access import check_role_and_scopes

    codes = [code for level in ("streets", "communities", "cells") for code in gm.areas.layers.level(level)["code"]]
    return check_role_and_scopes(role, scopes, area_codes=codes, departments=gm.routing.departments())


ROLE_HELP = "admin, dispatcher, manager (streets/communities), worker (cells), handler (departments) or planner."
SCOPE_HELP = "An area code (manager: street or community; worker: cell) or department name (handler); repeat for more."


@click.group(cls=GridmapGroup)
def users() -> None:
    """People who log in to the web pages."""


def _read_password() -> str:
    if sys.stdin.isatty():
        return click.prompt("Password", hide_input=True, confirmation_prompt=True)
    line = sys.stdin.readline()
    return line.rstrip("\r\n")


@users.command("add")
@click.argument("name")
@click.option("--role", required=True, help=ROLE_HELP)
@click.option("--scope", "scopes", multiple=True, help=SCOPE_HELP)
def users_add(name: str, role: str, scopes: tuple[str, ...]) -> None:
    """Create user NAME; the password is read from standard input (asked twice on a terminal)."""
    from gridmap.security.access import add_user

    gm = initialised_core()
    checked = _checked_role_and_scopes(gm, role, scopes)
    password = _read_password()
    with gm.db.session() as session:
        add_user(session, name, role, checked, password)
    click.echo(f"user {name!r} created: role {role}" + (f", scope {', '.join(checked)}" if checked else ""), err=True)


@users.command("password")
@click.argument("name")
def users_password(name: str) -> None:
    """Set a new password for NAME (read from standard input)."""
    from gridmap.security.access import set_password

    gm = initialised_core()
    password = _read_password()
    with gm.db.session() as session:
        set_password(session, name, password)
    click.echo(f"password of {name!r} changed", err=True)


@users.command("disable")
@click.argument("name")
def users_disable(name: str) -> None:
    """Disable NAME: their sessions end at the next request; the audit log keeps their name."""
    from gridmap.security.access import disable_user

    gm = initialised_core()
    with gm.db.session() as session:
        disable_user(session, name)
    click.echo(f"user {name!r} disabled", err=True)


@users.command("list")
def users_list() -> None:
    """Users with their roles and scopes."""
    from gridmap.security.access import list_users

    gm = initialised_core()
    with gm.db.sessions() as session:
        for row in list_users(session):
            click.echo("\t".join([row["name"], row["role"], ",".join(row["scopes"]), row["state"]]))


@click.group(cls=GridmapGroup)
def tokens() -> None:
    """API tokens for programs (sent as Authorization: Bearer TOKEN)."""


@tokens.command("add")
@click.argument("name")
@click.option("--role", required=True, help=ROLE_HELP)
@click.option("--scope", "scopes", multiple=True, help=SCOPE_HELP)
def tokens_add(name: str, role: str, scopes: tuple[str, ...]) -> None:
    """Create a token NAME and print it once (only its hash is stored)."""
    from gridmap.security.access import add_token

    gm = initialised_core()
    checked = _checked_role_and_scopes(gm, role, scopes)
    with gm.db.session() as session:
        secret = add_token(session, name, role, checked)
    click.echo(secret)
    click.echo(f"token {name!r} created (role {role}); it is shown only now: store it safely", err=True)


@tokens.command("revoke")
@click.argument("name")
def tokens_revoke(name: str) -> None:
    """Revoke token NAME: it stops working at once."""
    from gridmap.security.access import revoke_token

    gm = initialised_core()
    with gm.db.session() as session:
        revoke_token(session, name)
    click.echo(f"token {name!r} revoked", err=True)
