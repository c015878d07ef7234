"""Run the whole suite in production mode: PostgreSQL at 127.0.0.1:5432 and Redis at 6379.

tests/conftest.py creates a fresh database for the run and drops it after. When a server is
unreachable the pass is skipped with a loud message; with CI=true a skip is a failure."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

PG = os.environ.get(
    "DOORSTEP_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REDIS = os.environ.get("DOORSTEP_TEST_REDIS", "redis://127.0.0.1:6379/0")


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def main() -> int:
    missing = [
        name
        for name, port in (("PostgreSQL", 5432), ("Redis", 6379))
        if not reachable("127.0.0.1", port)
    ]
    if missing:
        banner = "!" * 78
        print(
            f"\n{banner}\n!! PRODUCTION TEST PASS SKIPPED: {', '.join(missing)} not reachable on "
            f"127.0.0.1\n!! The suite ran only in the embedded mode (SQLite).\n{banner}\n",
            file=sys.stderr,
        )
        return 1 if os.environ.get("CI", "").lower() == "true" else 0
    env = {
        **os.environ,
        "DOORSTEP_TEST_MODE": "production",
        "DOORSTEP_TEST_POSTGRES": PG,
        "DOORSTEP_TEST_REDIS": REDIS,
    }
    print("== production pass: PostgreSQL + Redis ==", file=sys.stderr, flush=True)
    return subprocess.call([sys.executable, "-m", "pytest", *sys.argv[1:]], env=env)  # noqa: S603


if __name__ == "__main__":
    raise SystemExit(main())
