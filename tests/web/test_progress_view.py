"""The progress view's budget part, on one module (stand-ins for the orchestrator's two reads)."""

from __future__ import annotations

from types import SimpleNamespace

from orchestrator.scheduler import ExecutionStatus
from orchestrator.store.budget import BudgetAlert, BudgetStatus
from orchestrator.web.routes import progress_view


def test_budget_alerts_are_shown_as_their_messages() -> None:
    # A sweep that crossed 80 % of its budget: the view once called the message property and
    # answered 500 to every status request from then on.
    alert = BudgetAlert(scope="sweep:s", threshold=80, committed=8.0, limit=10.0, at=1.0)
    ledger = BudgetStatus(
        sweep_id="s",
        limit=10.0,
        spent=8.0,
        reserved=0.0,
        global_limit=None,
        global_spent=8.0,
        global_reserved=0.0,
        alerts=(alert,),
    )
    status = ExecutionStatus(execution_id="s", state="running", planned=1, counts={})
    orch = SimpleNamespace(
        status=lambda sweep_id: status,
        state=SimpleNamespace(budget_ledger=lambda: SimpleNamespace(status=lambda sweep_id: ledger)),
    )
    view = progress_view(orch, "s")  # type: ignore[arg-type]
    assert view["budget"]["alerts"] == ["sweep:s budget at 80%: $8.0000 of $10.0000"]
    assert view["budget"]["limit"] == 10.0 and view["budget"]["remaining"] == ledger.remaining
