"""``python -m shouyin.terminal``: the terminal simulator's commands (``sim``)."""

from shouyin.terminal.cli import terminal_app

terminal_app(prog_name="python -m shouyin.terminal")
