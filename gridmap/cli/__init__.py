"""The ``gridmap`` command line: the root group; each area of commands lives in its own module.

Exit codes: 0 success; 1 a check found problems (``geodata validate``); 2 bad input or usage
(the message says what to fix); 3 ``locate``: the point lies outside every cell.
"""

from __future__ import annotations

import click

from gridmap.cli import coverage, geodata, issues, ledger, ops, security, serve
from gridmap.cli.common import COMMAND_LINE, EXIT_BAD_INPUT, EXIT_OUTSIDE, EXIT_PROBLEMS, GridmapGroup

__all__ = ["EXIT_BAD_INPUT", "EXIT_OUTSIDE", "EXIT_PROBLEMS", "main"]

#: The recorded command line is cut to this many characters in the audit log.
COMMAND_LINE_CHARS = 500


@click.group(cls=GridmapGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="gridmap")
@click.pass_context
def main(ctx: click.Context) -> None:
    """gridmap: grid-based governance (网格化服务管理) on a map."""
    from gridmap.security.access import cli_principal
    from gridmap.security.audit import acting_as

    # Every change a command makes is audited as the operator's; the web server audits per request.
    words = ctx.meta.get(COMMAND_LINE, [])  # the subcommand and its arguments
    ctx.with_resource(acting_as(cli_principal().label, " ".join(["gridmap", *words])[:COMMAND_LINE_CHARS]))


# Every top-level command and group; each is defined in the module of its area.
for _command in (
    geodata.grid, geodata.geodata, geodata.locate,
    ops.init, ops.backup, ops.restore, ops.rollup, serve.serve, serve.demo,
    issues.issues, issues.sla, issues.workers, ledger.ledger,
    coverage.coverage,
    security.keys, security.users, security.tokens,
):
    main.add_command(_command)
