"""``python -m shouyin.acquirer sim ...``: the acquirer simulator without the ``shouyin`` CLI."""

from __future__ import annotations

import logging

from shouyin.acquirer.cli import acquirer_app
from shouyin.logs import configure_logging

configure_logging(logging.WARNING)
acquirer_app(prog_name="python -m shouyin.acquirer")
