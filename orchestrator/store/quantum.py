"""The managed quantum tasks of a sweep's experiments: the task each one submitted, and how many
of its tasks FAILED (which sets the next submission attempt, and so Braket's ``clientToken``)."""

from __future__ import annotations

import json
import time
from typing import Any

import redis

from orchestrator.store import keys
from orchestrator.store import scripts as lua


class QuantumTasks:
    """Per sweep: ``tasks`` (index -> the noted task) and ``qattempt`` (index -> FAILED tasks)."""

    def __init__(self, client: redis.Redis) -> None:
        self._r = client
        self._note_task, self._resubmit = (
            client.register_script(lua.NOTE_TASK),
            client.register_script(lua.RESUBMIT),
        )

    def attempt(self, sweep_id: str, index: int) -> int:
        """The submission attempt of the experiment's next quantum task: 1 + its FAILED tasks."""
        return int(self._r.hget(keys.sweep(sweep_id, "qattempt"), index) or 0) + 1

    def note(
        self,
        sweep_id: str,
        index: int,
        task_arn: str,
        device: str,
        qattempt: int,
        host: str,
        token: str,
        poll: dict[str, Any] | None = None,
    ) -> None:
        """Keep a submitted task's ARN (for status and cancel); its poll task owns the experiment now.

        ``poll`` is the poll message's keyword arguments: a lost poll message is sent again as it was.
        """
        task = json.dumps({"arn": task_arn, "device": device, "qattempt": qattempt, "poll": poll or {}})
        running = json.dumps({"host": host, "since": time.time(), "task_arn": task_arn})
        self._note_task(
            keys=[
                keys.sweep(sweep_id, "tasks"),
                keys.sweep(sweep_id, "running"),
                keys.lease(sweep_id, index),
            ],
            args=[index, task, running, token],
        )

    def task(self, sweep_id: str, index: int) -> dict[str, Any] | None:
        """The experiment's submitted quantum task ``{arn, device, qattempt, poll}``, if one was noted."""
        raw = self._r.hget(keys.sweep(sweep_id, "tasks"), index)
        return None if raw is None else json.loads(raw)

    def resubmit(
        self, sweep_id: str, queue: str, index: int, max_attempts: int, *, task_arn: str = ""
    ) -> bool | None:
        """Count a FAILED quantum task; if attempts remain, send the experiment back to pending
        (first in line) for a new task with a new client token.

        Returns:
            True if it was sent back, False if its attempts are used up (record the failure). With
            ``task_arn``, only the first call for the task noted for the experiment counts it
            (several polls of one task may end at once): later ones return None (nothing to do).
        """
        done = int(
            self._resubmit(
                keys=[
                    keys.sweep(sweep_id, "qattempt"),
                    keys.sweep(sweep_id, "running"),
                    keys.pending(sweep_id, queue),
                    keys.sweep(sweep_id, "tasks"),
                ],
                args=[index, max_attempts, task_arn],
            )
        )
        return None if done < 0 else bool(done)
