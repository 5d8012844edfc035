"""``python -m orchestrator.cli``: how the embedded mode and the tests start a command."""

from __future__ import annotations

from orchestrator.cli import main

main()
