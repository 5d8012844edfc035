"""``orchestrator serve``: the REST API (``/api/v1``) and the live dashboard (``/``), one FastAPI app.

* :mod:`~orchestrator.web.app`: the app factory and its configuration;
* :mod:`~orchestrator.web.errors`: the one JSON error shape, for every error;
* :mod:`~orchestrator.web.hosts`: the ``Host`` check (DNS rebinding);
* :mod:`~orchestrator.web.limits`: bounded pools and per-client rates for expensive reads;
* :mod:`~orchestrator.web.reports`: reports built once per change of the results, in a child process;
* :mod:`~orchestrator.web.routes`: the endpoints, over the same service layer as the CLI
  (:class:`~orchestrator.api.Orchestrator`, :func:`~orchestrator.validation.validate`,
  :class:`~core.results.ResultStore`);
* :mod:`~orchestrator.web.auth`: the bearer token (the project roots: :mod:`orchestrator.roots`);
* :mod:`~orchestrator.web.streams`: Server-Sent Events and streamed result formats;
* :mod:`~orchestrator.web.server`: binding rules and uvicorn;
* ``static/``: the dashboard (plain HTML, CSS and JavaScript; no build step, no CDN).
"""

from __future__ import annotations

from orchestrator.web.app import ApiConfig, create_app

__all__ = ["ApiConfig", "create_app"]
