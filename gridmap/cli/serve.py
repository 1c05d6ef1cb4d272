"""The web service: ``serve`` and ``demo`` (initialise with the demo data, then serve)."""

from __future__ import annotations

import click

from gridmap.cli.common import core
from gridmap.cli.demo import load_demo_data


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--threads", default=8, show_default=True, type=int)
def serve(host: str, port: int, threads: int) -> None:
    """Serve the web app with the waitress production WSGI server."""
    run_server(host, port, threads)


def run_server(host: str, port: int, threads: int) -> None:
    """Build the app, check the database and the layer set, then serve until stopped."""
    from gridmap.ops.server import serve as serve_app
    from gridmap.web import create_app

    app = create_app()
    gm = app.extensions["gridmap"]
    gm.db.require_current_schema()
    _ = gm.areas  # load and validate the layer set before taking requests
    click.echo(f"gridmap serving on http://{host}:{port}/  (Ctrl+C to stop)")
    # waitress, with a body over the limit answered by the app (JSON 413) and drained, not reset: gridmap.ops.server
    serve_app(app, host=host, port=port, threads=threads, max_body_bytes=app.config["MAX_CONTENT_LENGTH"])


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
def demo(host: str, port: int) -> None:
    """Initialise with the Tianya demo data, then serve at http://HOST:PORT/."""
    gm = core()
    gm.init_database()
    load_demo_data(gm)
    gm.close()
    run_server(host, port, 8)
