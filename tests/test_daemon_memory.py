"""The daemon's start on a database at head stays lean (bench/api_bench.py: RSS ≤ 80 MB).

alembic (+ mako) and SQLModel cost ~20 MB and httpx ~5 MB: they are imported only to
migrate and to deliver webhooks. This guards the import set, which is what drifts.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_start_on_a_database_at_head_imports_no_migration_or_http_client(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("APPLIANCE_")}
    env["APPLIANCE_APPLIANCE__DATABASE_URL"] = f"sqlite:///{tmp_path / 'a.db'}"
    subprocess.run([sys.executable, "-m", "appliance.cli", "keys", "create", "x", "--scope", "read"],
                   env=env, check=True, capture_output=True, timeout=60)
    code = (
        "import sys\n"
        "from appliance.config import load_settings\n"
        "from appliance.startup import prepare_database\n"
        "from appliance.daemon import Appliance\n"
        "from appliance.api import create_app\n"
        "settings = load_settings()\n"
        "prepare_database(settings)\n"
        "app = Appliance(settings)\n"
        "create_app(app)\n"
        "print(sorted(m for m in ('alembic', 'mako', 'sqlmodel', 'httpx') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=60, check=True).stdout
    assert out.strip() == "[]"
