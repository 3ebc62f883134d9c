"""The web trading terminal (issue 11): accounts, orders and the book over HTTP.

``store`` keeps everything in one SQLite file (WAL by default, versioned migrations),
``accounts`` registers and authenticates users, ``orders`` checks quotes as the scenario
loader does, and ``app`` is the Starlette application that serves them.
"""
