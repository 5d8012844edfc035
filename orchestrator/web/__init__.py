"""``orchestrator serve``: the REST API (``/api/v1``) and the live dashboard (``/``), one FastAPI app.

* :mod:`~orchestrator.web.app`: the app factory, the one JSON error shape, the body-size limit;
* :mod:`~orchestrator.web.routes`: the endpoints, over the same service layer as the CLI
  (:class:`~orchestrator.api.Orchestrator`, :func:`~orchestrator.validation.validate`,
  :class:`~core.results.ResultStore`);
* :mod:`~orchestrator.web.auth`: the bearer token and the project roots;
* :mod:`~orchestrator.web.streams`: Server-Sent Events and streamed result formats;
* :mod:`~orchestrator.web.server`: binding rules and uvicorn;
* ``static/``: the dashboard (plain HTML, CSS and JavaScript; no build step, no CDN).
"""

from __future__ import annotations

from orchestrator.web.app import ApiConfig, create_app

__all__ = ["ApiConfig", "create_app"]
