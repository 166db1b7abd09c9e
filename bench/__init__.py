"""shouyin benchmarks: ``make bench`` (``python -m bench``) prints one table of figures."""
