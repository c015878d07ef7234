"""The gunicorn worker class for production: uvicorn's, with Doorstep's WebSocket protocol.

    gunicorn 'doorstep.app:create_app()' -k doorstep.gunicorn_worker.Worker -w 4

`doorstep serve` runs the same protocol (doorstep.platform.wsserver)."""

from __future__ import annotations

import warnings
from typing import Any

with warnings.catch_warnings():
    # uvicorn 0.54 points to the separate uvicorn-worker package; its class is the same.
    warnings.simplefilter("ignore", DeprecationWarning)
    from uvicorn.workers import UvicornWorker

from doorstep.platform.wsserver import WS_PROTOCOL


class Worker(UvicornWorker):
    CONFIG_KWARGS: dict[str, Any] = {**UvicornWorker.CONFIG_KWARGS, "ws": WS_PROTOCOL}
