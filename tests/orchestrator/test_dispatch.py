"""The dispatcher against a real Redis: messages are the protocol's models, and a lost worker's
unacked messages go back to their queue at once."""

from __future__ import annotations

import base64
import json
import pickle

import redis

from core.models import Experiment
from core.protocol import BatchMessage, PollMessage, RunMessage, Task
from orchestrator.dispatch import Dispatcher, celery_app


def _experiment(index: int, sweep_id: str = "s", resource: str = "local_cpu") -> Experiment:
    return Experiment(
        sweep_id=sweep_id,
        experiment_id=f"e{index}",
        index=index,
        project="p",
        parameters={"x": index},
        resource=resource,
        reproducibility_hash="h",
    )


def _bodies(client: redis.Redis, queue: str) -> list[tuple[str, dict]]:
    """(task name, kwargs) of the messages waiting in ``queue``."""
    out = []
    for raw in client.lrange(queue, 0, -1):
        message = json.loads(raw)
        out.append((message["headers"]["task"], json.loads(base64.b64decode(message["body"]))[1]))
    return out


def test_publish_sends_the_protocol_models_by_task_name(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    dispatcher = Dispatcher(celery_app(broker_url=redis_url))
    assert dispatcher.publish([_experiment(0), _experiment(1), _experiment(2, resource="braket_sim")], 2) == 2
    ((name, kwargs),) = _bodies(client, "local_cpu")
    assert name == Task.BATCH
    assert BatchMessage.of(kwargs).experiments == (_experiment(0), _experiment(1))
    ((name, kwargs),) = _bodies(client, "braket_sim")
    assert name == Task.RUN and RunMessage.of(kwargs).experiment == _experiment(2, resource="braket_sim")


def test_restore_puts_a_lost_workers_unacked_message_back(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    app = celery_app(broker_url=redis_url)
    dispatcher = Dispatcher(app)
    dispatcher.publish([_experiment(0, sweep_id="lost")])
    with app.connection_for_read() as conn:
        received = conn.SimpleQueue("local_cpu", no_ack=False).get(timeout=5)  # received, never acked
        tag = received.delivery_tag
        assert client.llen("local_cpu") == 0 and client.hexists("unacked", tag)
        assert dispatcher.restore([tag, "unknown-tag"]) == {"lost": 1}
        assert client.llen("local_cpu") == 1 and not client.hexists("unacked", tag)
        assert dispatcher.restore([tag]) == {}, "restored once"


def test_in_flight_names_every_message_queued_or_delivered_and_unacked(redis_url: str) -> None:
    app = celery_app(broker_url=redis_url)
    dispatcher = Dispatcher(app)
    dispatcher.publish([_experiment(0), _experiment(1), _experiment(2)], batch_size=2)  # a batch, a run
    poll = PollMessage(experiment=_experiment(3, resource="braket_qpu"), task_arn="arn:3")
    dispatcher.send(Task.POLL, poll.kwargs(), "braket_qpu", countdown=30)
    with app.connection_for_read() as conn:
        conn.SimpleQueue("local_cpu", no_ack=False).get(timeout=5)  # delivered, never acked
        held = dispatcher.in_flight()
        assert held.experiments == {("s", 0), ("s", 1), ("s", 2)}
        assert held.polls == {"arn:3"}
        redis.Redis.from_url(redis_url).delete("unacked", "braket_qpu")  # both lost
        assert dispatcher.in_flight().polls == frozenset()
        assert len(dispatcher.in_flight().experiments) == 1


def test_in_flight_reads_only_our_json_messages(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    dispatcher = Dispatcher(celery_app(broker_url=redis_url))
    dispatcher.publish([_experiment(0)])
    ours = json.loads(client.lindex("local_cpu", 0))
    body = ((), RunMessage(experiment=_experiment(9, sweep_id="x")).kwargs(), {})
    pickled = {  # the app accepts JSON only: a pickle in the shared Redis is never loaded
        **ours,
        "content-type": "application/x-python-serialize",
        "content-encoding": "binary",
        "body": base64.b64encode(pickle.dumps(body)).decode(),
    }
    foreign = {**ours, "headers": {**ours["headers"], "task": "someone.elses_task"}}
    client.lpush("local_cpu", json.dumps(pickled), json.dumps(foreign), "not a message")
    assert dispatcher.in_flight().experiments == {("s", 0)}
