"""Settings for every test tier: hypothesis examples are derandomized in CI.

The ``ci`` profile (the default) draws the same examples every run, so a fuzz test fails
for a change in the code, never for a luckier draw. ``HYPOTHESIS_PROFILE=explore`` searches
with fresh randomness and many more examples, to look for new failures by hand.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

QUIET = [HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large]

settings.register_profile("ci", derandomize=True, deadline=None, suppress_health_check=QUIET, print_blob=True)
settings.register_profile("explore", max_examples=3000, deadline=None, suppress_health_check=QUIET)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# The archive's databases (a real PostgreSQL per test process, and SQLite): tests/support/archive_db.py.
from tests.support.archive_db import archive_dsn, archive_engine, postgres_server, sqlite_template  # noqa: E402

__all__ = ["archive_dsn", "archive_engine", "postgres_server", "sqlite_template"]
