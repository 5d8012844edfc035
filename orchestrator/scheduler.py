"""The seed's scheduler interfaces: schedule a sweep, report its status, pause, resume, cancel.

Scheduling only registers the sweep in Redis; a :class:`~orchestrator.coordinator.Coordinator`
materialises its experiments into the pending sets and publishes them.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from core.config import SweepConfiguration
from core.errors import InputError
from core.plan import SweepPlan
from core.protocol import ACTIVE_STATES, FINAL_STATES, Lifecycle
from core.results import ResultStore
from core.settings import Settings
from orchestrator.code import SweepCode, pack_projects, store_code
from orchestrator.store import SweepState

COUNTED = ("completed", "failed", "reused", "early_stopped", "cancelled")


class SweepExecution(BaseModel):
    execution_id: str
    name: str
    state: str
    planned: int = Field(description="experiments before constraints (upper bound until counted)")
    results_path: str
    resumed: bool = False


class ExecutionStatus(BaseModel):
    execution_id: str
    name: str = ""
    state: str
    total: int | None = Field(None, description="experiments after constraints, once counted")
    planned: int
    counts: dict[str, int]
    cost: float = 0.0
    budget: float | None = None
    max_experiments: int | None = Field(None, description="the run budget: experiments that may run")
    eta_seconds: float | None = None
    elapsed_seconds: float = 0.0
    started_at: datetime | None = None
    results_path: str = ""
    events: list[dict[str, Any]] = Field(default_factory=list)
    workers: int = 0
    optimizer: dict[str, Any] = Field(default_factory=dict)
    paused_reason: str | None = Field(None, description="why a paused sweep is paused (a budget, a user)")
    report_path: str | None = Field(None, description="report.html, written when the sweep completes")
    cross_project: dict[str, Any] = Field(
        default_factory=dict,
        description="the cross-project comparison (per project, pairs and points with BH-corrected "
        "p-values), when the sweep asks for it and has completed",
    )
    validation: dict[str, Any] = Field(
        default_factory=dict,
        description="validation counts (ok, warn, violation) and the violations, once analysed",
    )
    early_stopping: dict[str, Any] = Field(
        default_factory=dict,
        description="runs each rule stopped and at which step; steps and shots saved (empty: none stopped)",
    )

    @property
    def finished(self) -> int:
        return sum(self.counts.get(k, 0) for k in COUNTED)

    @property
    def done(self) -> bool:
        return self.state in FINAL_STATES


class Scheduler:
    """Registers sweeps and answers for their state. Safe to use from any process."""

    def __init__(self, state: SweepState, store: ResultStore, settings: Settings) -> None:
        self.state = state
        self.store = store
        self.settings = settings

    def schedule_sweep(self, config: SweepConfiguration, code: SweepCode | None = None) -> SweepExecution:
        """Register ``config`` (or pick up where the same sweep stopped) and return its execution.

        ``code`` is what validation packed (packed here when not given). A sweep picked up
        where it stopped keeps the code it started with.
        """
        sweep_id = config.sweep_id
        st = self.state
        current = st.state(sweep_id)
        resumed = current in ACTIVE_STATES
        if not resumed:
            # A new sweep, or the same sweep file again after it ended: start over in Redis
            # (completed experiments are reused from the results).
            self.store.probe()  # the results store takes a write: before anything is written
            code = code or pack_projects(config, self.settings, config.name)
            plan = SweepPlan(config, code.versions)
            store_code(st.code(), code, sweep_id, self.store.root)
            budget = self.settings.budget_for(config)
            effective = {
                "sweep": config.model_dump(mode="json"),
                "code_versions": plan.code_versions,
                "identity": plan.identity,
                "settings": self.settings.model_dump(mode="json", exclude={"broker_url", "api_token"}),
                "sweep_id": sweep_id,
            }
            st.register(
                sweep_id,
                {
                    "state": Lifecycle.RUNNING.value,
                    "name": config.name,
                    "config": config.model_dump_json(),
                    "code_versions": json.dumps(plan.code_versions),
                    "identity": plan.identity,
                    "created_at": time.time(),
                    "started_at": time.time(),
                    "planned": plan.space.size * plan.stride,
                    "constrained": int(bool(plan.space.constraints)),
                    "fill_cursor": 0,
                    "fill_done": 0,
                    "total": plan.space.size * plan.stride,
                    "budget": "" if budget is None else budget,
                    "deadline": ""
                    if config.max_duration is None
                    else time.time() + config.max_duration.total_seconds(),
                    "max_experiments": config.max_experiments or "",
                },
            )
            self.store.write_effective_config(sweep_id, effective)
            if budget is not None or self.settings.global_budget is not None:
                ledger = st.budget_ledger()
                if budget is not None:
                    ledger.set_limit(sweep_id, budget)
                if self.settings.global_budget is not None:
                    ledger.set_limit(None, self.settings.global_budget)
        else:
            st.set_state(sweep_id, Lifecycle.RUNNING)
        st.serve(sweep_id)
        meta = st.meta(sweep_id)
        return SweepExecution(
            execution_id=sweep_id,
            name=config.name,
            state=Lifecycle.RUNNING.value,
            planned=int(meta["planned"]),
            results_path=str(self.store.sweep_dir(sweep_id)),
            resumed=resumed,
        )

    def _require(self, execution_id: str) -> dict[str, str]:
        meta = self.state.meta(execution_id)
        if not meta:
            raise InputError(
                f"no sweep '{execution_id}' on this broker; list sweeps with `orchestrator status`",
                field="execution_id",
            )
        return meta

    def get_execution_status(self, execution_id: str, *, analysis: bool = True) -> ExecutionStatus:
        """The sweep's counts, cost and progress; once it is over, with ``analysis``, also what its
        stored analysis says (report path, cross-project comparison, validation), read from
        ``analysis.json`` (tens of MB for a large sweep, so a listing skips it)."""
        meta = self._require(execution_id)
        now = self.state.counts(execution_id)
        counts = {k: int(meta.get(f"n_{k}", 0)) for k in COUNTED}
        planned = int(meta.get("planned", 0))
        # ``total`` counts every experiment from the start; constraints take theirs out as the
        # fill cursor passes them, so until it has passed them all it is an upper bound
        expected = int(meta.get("total", 0))
        exact = meta.get("fill_done") == "1" or meta.get("constrained") == "0"
        total = expected if exact else None
        counts["queued"], counts["running"] = now["queued"], now["running"]
        finished = sum(counts[k] for k in COUNTED)
        # total minus the rest: what waits past the fill cursor is never enumerated
        counts["pending"] = max(0, expected - finished - counts["queued"] - counts["running"])
        started = float(meta.get("started_at") or time.time())
        end = float(meta["finished_at"]) if meta.get("finished_at") else time.time()
        elapsed = max(end - started, 1e-9)
        executed = counts["completed"] + counts["failed"] + counts["early_stopped"]
        remaining = counts["pending"] + counts["queued"] + counts["running"]
        if meta.get("max_experiments"):
            remaining = min(remaining, max(0, int(meta["max_experiments"]) - executed))
        eta = remaining * elapsed / executed if executed and meta.get("state") == Lifecycle.RUNNING else None
        budget = float(meta["budget"]) if meta.get("budget") else None
        return ExecutionStatus(
            execution_id=execution_id,
            name=meta.get("name", ""),
            state=meta.get("state", "unknown"),
            total=total,
            planned=planned,
            counts=counts,
            cost=float(meta.get("cost", 0.0)),
            budget=budget,
            max_experiments=int(meta["max_experiments"]) if meta.get("max_experiments") else None,
            eta_seconds=eta,
            elapsed_seconds=elapsed,
            started_at=datetime.fromtimestamp(started).astimezone(),
            results_path=str(self.store.sweep_dir(execution_id)),
            events=self.state.events(execution_id, 10),
            workers=len(self.state.registry.live()),
            optimizer=json.loads(meta["optimizer"]) if meta.get("optimizer") else {},
            paused_reason=(meta.get("paused_reason") or None)
            if meta.get("state") == Lifecycle.PAUSED
            else None,
            **(self._analysis(execution_id) if analysis and meta.get("state") in FINAL_STATES else {}),
            early_stopping=self.state.pruning().summary(execution_id, total or planned)
            if counts["early_stopped"]
            else {},
        )

    def _analysis(self, execution_id: str) -> dict[str, Any]:
        """What the analysis stored when the sweep completed: report, cross-project, validation."""
        report = self.store.report_path(execution_id)
        stored = self.store.stored_analysis(execution_id) or {}
        validation = stored.get("validation") or {}
        violations = [c for c in validation.get("checks", []) if c.get("status") == "violation"]
        violations += [
            r for r in validation.get("rows", []) if str(r.get("validation")).startswith("violation")
        ]
        return {
            "report_path": str(report) if report else None,
            "cross_project": stored.get("cross_project") or {},
            "validation": {"counts": validation["counts"], "violations": violations} if validation else {},
        }

    def list_executions(self) -> list[str]:
        return self.state.sweep_ids()

    def pause_execution(self, execution_id: str) -> bool:
        self._require(execution_id)
        if not self.state.transition(
            execution_id,
            Lifecycle.PAUSED,
            allowed=frozenset({Lifecycle.RUNNING}),
            paused_reason="paused by user",
        ):
            return False
        self.state.event(execution_id, "info", "paused by user")
        return True

    def resume_execution(self, execution_id: str) -> bool:
        self._require(execution_id)
        if not self.state.transition(
            execution_id, Lifecycle.RUNNING, allowed=ACTIVE_STATES, paused_reason=""
        ):
            return False
        self.state.serve(execution_id)
        self.state.event(execution_id, "info", "resumed")
        return True

    def cancel_execution(self, execution_id: str) -> bool:
        self._require(execution_id)
        if not self.state.transition(execution_id, Lifecycle.CANCELLING, allowed=ACTIVE_STATES):
            return False
        self.state.event(execution_id, "info", "cancelled by user")
        return True
