"""shouyin (收银): supermarket checkout that drives payment terminals securely and exactly once."""

__version__ = "0.1.0"
__all__ = ["__version__"]
