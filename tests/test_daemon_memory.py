"""The daemon's start on a database at head stays lean (bench/api_bench.py: RSS ≤ 80 MB).

alembic (+ mako) and SQLModel cost ~20 MB and httpx ~5 MB: they are imported only to
migrate and to deliver webhooks. This guards the import set, which is what drifts.
"""

from __future__ import annotations

from pathlib import Path

from tests.utils.daemon import create_api_key, run_after_start


def test_start_on_a_database_at_head_imports_no_migration_or_http_client(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    create_api_key(url, "x")  # migrates: the start below finds the database at head
    out = run_after_start(url, (
        "from appliance.api import create_app\n"
        "create_app(app)\n"
        "print(sorted(m for m in ('alembic', 'mako', 'sqlmodel', 'httpx') if m in sys.modules))\n"
    ))
    assert out.strip() == "[]"
