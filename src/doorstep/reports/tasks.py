"""Background work of the reports module: generating reports (`reports.generate`, enqueued by
service.request_report) and running the schedules every quarter of an hour."""

from __future__ import annotations

from huey import crontab

from doorstep.platform.jobs import every
from doorstep.reports import service  # noqa: F401 - registers the jobs

every("reports.run_schedules", crontab(minute="*/15"))
