"""Run the suite's two passes at once: embedded (SQLite, in-process bus and jobs) and production
(PostgreSQL + Redis, scripts/test_production.py). `make test` calls this after lint and types.

Much of the suite waits (browsers, live servers, sockets), so on two cores both passes together
take little more than the longer one alone. Each pass writes its own log under ./artifacts/;
a status line is printed every minute, and each log is printed whole when its pass ends. The exit
status is the first failing pass's, or 0."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "artifacts"
PASSES = {
    "embedded": [sys.executable, "-m", "pytest"],
    "production": [sys.executable, str(ROOT / "scripts" / "test_production.py")],
}
PROGRESS = re.compile(rb"\[\s*(\d+)%\]")


def progress(log: Path) -> str:
    found = PROGRESS.findall(log.read_bytes()[-4000:]) if log.exists() else []
    return f"{int(found[-1])}%" if found else "starting"


def main() -> int:
    ARTIFACTS.mkdir(exist_ok=True)
    started = time.monotonic()
    logs = {name: ARTIFACTS / f"test-{name}.log" for name in PASSES}
    running = {}
    for name, command in PASSES.items():
        with logs[name].open("wb") as out:
            running[name] = subprocess.Popen(  # noqa: S603
                [*command, *sys.argv[1:]], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
            )
    codes: dict[str, int] = {}
    last_status = started
    while len(codes) < len(running):
        time.sleep(2)
        for name, proc in running.items():
            if name not in codes and proc.poll() is not None:
                codes[name] = proc.returncode
                minutes = (time.monotonic() - started) / 60
                print(f"\n===== {name} pass: exit {proc.returncode} after {minutes:.1f} min =====")
                sys.stdout.write(logs[name].read_text(errors="replace"))
                sys.stdout.flush()
        if time.monotonic() - last_status >= 60 and len(codes) < len(running):
            last_status = time.monotonic()
            status = ", ".join(
                f"{name} {'done' if name in codes else progress(logs[name])}" for name in running
            )
            print(f"[{(last_status - started) / 60:4.1f} min] {status}", flush=True)
    print("\n" + "\n".join(f"{name} pass: exit {code}" for name, code in codes.items()))
    return next((code for code in codes.values() if code), 0)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
