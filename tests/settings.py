"""Test settings: the demo project's, with the database picked by ``MF_DB``.

Test databases get a per-run name so that several runs (and the server processes a
test starts) never collide; pytest-django adds ``_gwN`` for each xdist worker.
"""

from __future__ import annotations

import os
from typing import cast

from testproject.settings import *  # noqa: F403
from testproject.settings import _DB, DATABASES

_RUN = os.environ.get("MF_TEST_RUN_ID") or str(os.getpid())
if _DB == "sqlite":
    # A file (not :memory:) so that server processes started by tests can share it.
    DATABASES["default"]["TEST"] = {"NAME": f"/tmp/mf_test_{_RUN}.sqlite3"}
else:
    DATABASES["default"]["TEST"] = {
        **cast("dict[str, str]", DATABASES["default"].get("TEST", {})),
        "NAME": f"test_mf_{_RUN}",
    }

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
LOGGING = {"version": 1, "disable_existing_loggers": False}
