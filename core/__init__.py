"""The leaf core: the domain every layer shares, importing none of them.

Errors, the experiment models and their identity, safe expressions, parameter spaces, typed
settings, the wire protocol, the sweep file with its project and optimizer sections, the Wilson
interval (the adapters' and the analysis' one), and the Parquet layout of results. ``adapters``
and ``analysis`` import only this package; ``orchestrator`` imports those two; ``workers``
imports the orchestrator. Nothing here imports Celery, Redis or any of the other packages
(``tests/test_layers.py`` holds it).
"""
