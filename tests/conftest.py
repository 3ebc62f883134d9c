"""Suite-wide fixtures: the hygiene gate (tests/hygiene.py) applies to every test."""

pytest_plugins = ["tests.hygiene"]
