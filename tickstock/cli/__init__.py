"""The ``tickstock`` command: one module per command group.

- ``db``: schema migrations and demo data (``tickstock db migrate|seed``)
- ``users``: accounts (``tickstock users create|set-password|deactivate``)
- ``bench``: load tests against a running tickstock (``tickstock bench fanout|rest``)
- ``serve``: hypercorn under a small supervisor, with the local stack when nothing is configured
- ``demo``: the demo producer (``tickstock demo-producer``)
"""

from __future__ import annotations

import logging

import click

from tickstock.cli.bench import bench
from tickstock.cli.db import db
from tickstock.cli.demo import demo_producer
from tickstock.cli.serve import serve
from tickstock.cli.users import users

__all__ = ["main"]


@click.group()
@click.version_option(package_name="tickstock")
def main() -> None:
    """tickstock: the real-time market-pattern gateway."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


main.add_command(db)
main.add_command(demo_producer)
main.add_command(users)
main.add_command(bench)
main.add_command(serve)
