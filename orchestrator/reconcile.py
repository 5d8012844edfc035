"""The coordinator's reconcile step: what a lost message left waiting for ever is sent again.

A worker killed between popping a message and noting it unacked loses it (see
:meth:`~orchestrator.dispatch.Dispatcher.in_flight`), as can a Redis restarted from a second-old
AOF. Its experiment would stay queued, or its quantum task unpolled (paid, and never recorded).
Once a sweep has had no result for ``RECONCILE_SECONDS``, what waits for a message is compared
with what the broker holds; what is missing twice in a row (a message popped a moment ago is
noted unacked within microseconds) goes back to pending, or has its poll message sent again. A
duplicate is harmless: the claim and the once-per-task settlement.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from core.protocol import RESOURCE_QUEUES, PollMessage, Task
from orchestrator.dispatch import Dispatcher
from orchestrator.store import SweepState

# A sweep with no result for this long has its messages accounted for, and again as often.
RECONCILE_SECONDS = 5.0


@dataclass
class Reconciler:
    """One sweep's account of its messages: when it was last taken, and what it found missing."""

    last: float = field(default_factory=time.monotonic)
    # what the last account found without a message: (queue, index) of experiments, poll ARNs
    missing_runs: frozenset[tuple[str, int]] = frozenset()
    missing_polls: frozenset[str] = frozenset()

    def step(self, sweep_id: str, last_result: float, state: SweepState, dispatcher: Dispatcher) -> None:
        """Account for the sweep's messages if it has been quiet long enough; send again what
        this account and the one before both found missing.

        Args:
            sweep_id: the sweep.
            last_result: when (``time.monotonic``) the sweep's last result came in.
            state: the sweep state (what waits for a message).
            dispatcher: the broker (what it holds, and where lost polls are sent again).
        """
        now = time.monotonic()
        if now - max(last_result, self.last) < RECONCILE_SECONDS:
            return
        self.last = now
        waiting = state.pending.awaiting(sweep_id)
        held = dispatcher.in_flight()
        runs = frozenset(
            (queue, index)
            for queue, indices in waiting.queued.items()
            for index in indices
            if (sweep_id, index) not in held.experiments
        )
        polls = frozenset(arn for arn in waiting.polls if arn not in held.polls)
        lost_runs, lost_polls = runs & self.missing_runs, polls & self.missing_polls
        self.missing_runs, self.missing_polls = runs, polls
        for queue in RESOURCE_QUEUES:
            indices = [index for q, index in lost_runs if q == queue]
            if n := state.pending.requeue_lost(sweep_id, queue, indices):
                state.event(sweep_id, "alert", f"{n} experiment(s) whose message was lost back to pending")
        for arn in sorted(lost_polls):
            poll = PollMessage.of(waiting.polls[arn])
            dispatcher.send(Task.POLL, poll.kwargs(), poll.experiment.resource)
            state.event(sweep_id, "alert", f"the poll message of quantum task {arn} was lost: sent again")
