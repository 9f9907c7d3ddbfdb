"""``python -m tickstock`` runs the command line."""

from tickstock.cli import main

main()
