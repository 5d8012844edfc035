"""The Redis key layout of a deployment: every key the system uses, named in one place.

All keys start with ``orch:``. Per sweep (``sweep:{id}:...``):

* ``meta``              hash: state, config, code versions, counters (n_completed, n_failed, ...),
                        cost, total (every experiment of the sweep from the start, less those
                        constraints exclude as the cursor passes them), fill cursor (a position
                        of :class:`core.order.WalkOrder`: every point before it is materialised,
                        none after it except ``picked``; ``n_picked`` counts those ever picked),
                        deadline, optimizer summary
* ``pending:{queue}``   sorted set of experiment indices, score = priority (higher first): the next
                        few thousand only, topped up from the cursor as it drains
* ``picked``            set of points materialised ahead of the cursor (optimizer picks); the
                        cursor skips them, and forgets them as it passes
* ``picks``             sorted set point -> score: the optimizer's choice from its candidate pool,
                        materialised (with the reuse check) by the coordinator's next fill
* ``queued:{queue}``    set of indices published but not yet started
* ``running``           hash index -> JSON {host, since[, task_arn]}
* ``terminal``          hash index -> final status (written once: the idempotency anchor)
* ``attempts``          hash index -> deliveries so far (until its row is final)
* ``lease:{index}``     held while an experiment runs; refreshed by a heartbeat
* ``results``           stream of result rows, drained by the coordinator into Parquet
                        (consumer group ``writer``)
* ``events``            list of alerts and notable events (newest first, capped), each with an id
* ``events:seq``        the last event id given (ids let an SSE client resume: Last-Event-ID)
* ``coordinator``       the token of the coordinator serving the sweep (a lock with a TTL)
* ``obs``               hash index -> compact finished result, what the optimizer reads
* ``added``             hash point -> parameters of refinement points the optimizer added
* ``ladder``            hash ``project|rung|point`` -> added point: a fidelity ladder's promotions
* ``stage``             hash index -> low_done | full | stopped (shots as a budget)
* ``partials``          hash experiment id -> intermediate values of a running experiment
* ``stop``              set of running experiment ids a refit asked to stop
* ``es:*``              early stopping decided at each report: per-step and per-rung sorted sets,
                        the stopped set (the share cap), low-shot rows, the published threshold
                        (documented in :mod:`orchestrator.store.pruning`)
* ``optimizer:lock``    held while one process refits the sweep's model
* ``optimizer:history`` list of the last refits' summaries (newest first)
* ``tasks``             hash index -> JSON {arn, device, qattempt}: the sweep's quantum tasks
* ``qattempt``          hash index -> quantum tasks of the experiment known to have FAILED

Deployment-wide:

* ``sweeps``                          set of sweep ids a coordinator should serve
* ``done``                            set of experiment ids with a successful result, any sweep
* ``workers``                         hash hostname -> JSON {queues, concurrency, seen}
* ``held:{hostname}``                 sorted set of delivery tags a worker received, by time: a
                                      lost worker's messages are restored at once
* ``coordinators``                    hash token -> last heartbeat of each live coordinator
* ``wake``                            list: a sweep was just served (wakes an idle coordinator)
* ``budget:sweep:{id}``, ``budget:global``   budget ledgers: hash {limit, reserved, spent}, with
                                      ``:reservations`` and ``:settled`` (hashes by reservation id),
                                      ``:fired`` (thresholds alerted) and ``:alerts`` (list)
* ``throttle:{name}``                 token bucket shared by every worker (CreateQuantumTask)
* ``limits:open:{device}``            open quantum tasks per device (concurrency slots)
* ``braket:attempt:{exp}:{n}``        the quantum task of a submission attempt (never paid twice)
* ``braket:task:{arn}``               -> the attempt key of the task
* ``braket:sweep:{id}``               set of the sweep's task ARNs (for cancelling it)
* ``braket:local:{arn}``              the result of a task that failed over to the local simulator
* ``code:{digest}``                   a project's code archive (:mod:`core.archive`), bytes
* ``code:{digest}:users``             set of sweep ids using it (the last to let go deletes it)

kombu's own keys (the queues, ``unacked``, ``unacked_index``) are not prefixed. The Braket ledgers'
keys take the prefix as an argument (tests give each test its own); ``PREFIX`` is its one default.
"""

from __future__ import annotations

PREFIX = "orch:"
UNACKED = "unacked"  # kombu's Redis hash of delivered, unacked messages (its default name)
SWEEPS = f"{PREFIX}sweeps"
DONE = f"{PREFIX}done"
WORKERS = f"{PREFIX}workers"
COORDINATORS = f"{PREFIX}coordinators"
WAKE = f"{PREFIX}wake"


def sweep(sweep_id: str, part: str) -> str:
    """``orch:sweep:{id}:{part}``."""
    return f"{PREFIX}sweep:{sweep_id}:{part}"


def pending(sweep_id: str, queue: str) -> str:
    return sweep(sweep_id, f"pending:{queue}")


def queued(sweep_id: str, queue: str) -> str:
    return sweep(sweep_id, f"queued:{queue}")


def lease(sweep_id: str, index: int) -> str:
    return sweep(sweep_id, f"lease:{index}")


def held(hostname: str) -> str:
    return f"{PREFIX}held:{hostname}"


def sweep_of(key: str) -> str:
    """The sweep id in a per-sweep key."""
    return key.split(":")[2]


def code(digest: str) -> str:
    return f"{PREFIX}code:{digest}"


def code_users(digest: str) -> str:
    return f"{PREFIX}code:{digest}:users"


# -- the Braket ledgers (orchestrator.store.budget, slots, throttle, submissions) -------------------


def budget(sweep_id: str | None, part: str = "", *, prefix: str = PREFIX) -> str:
    """``budget:sweep:{id}`` (``budget:global`` when ``sweep_id`` is None), or one of its ``part``s."""
    scope = f"{prefix}budget:global" if sweep_id is None else f"{prefix}budget:sweep:{sweep_id}"
    return f"{scope}:{part}" if part else scope


def open_tasks(device_arn: str, *, prefix: str = PREFIX) -> str:
    """``limits:open:{device}``: the device's concurrency slots."""
    return f"{prefix}limits:open:{device_arn}"


def throttle(name: str, *, prefix: str = PREFIX) -> str:
    """``throttle:{name}``: a token bucket."""
    return f"{prefix}throttle:{name}"


def submission(experiment_id: str, attempt: int, *, prefix: str = PREFIX) -> str:
    """``braket:attempt:{exp}:{n}``: the submission record of one attempt."""
    return f"{prefix}braket:attempt:{experiment_id}:{attempt}"


def task_submission(task_arn: str, *, prefix: str = PREFIX) -> str:
    """``braket:task:{arn}``: the key of the task's submission record."""
    return f"{prefix}braket:task:{task_arn}"


def sweep_tasks(sweep_id: str, *, prefix: str = PREFIX) -> str:
    """``braket:sweep:{id}``: the sweep's task ARNs."""
    return f"{prefix}braket:sweep:{sweep_id}"


def local_result(task_arn: str, *, prefix: str = PREFIX) -> str:
    """``braket:local:{arn}``: a local failover's result."""
    return f"{prefix}braket:local:{task_arn}"
