"""``python -m shouyin.acquirer sim ...``: the acquirer simulator without the ``shouyin`` CLI."""

from __future__ import annotations

import logging

from shouyin.acquirer.cli import acquirer_app

logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s")
acquirer_app(prog_name="python -m shouyin.acquirer")
