"""The embedded broker: messages put from several producers while a consumer drains the queue all arrive whole,
and a file that is not a message (half-written by an older producer) is skipped instead of stopping the worker."""

from __future__ import annotations

import multiprocessing
import threading

import pytest
from kombu import Connection
from kombu.transport import TRANSPORT_ALIASES

from config import broker


def _connection(tmp_path):
    for sub in ("queue", "processed"):
        (tmp_path / sub).mkdir(exist_ok=True)
    return Connection(
        "filesystem://",
        transport_options={
            "data_folder_in": str(tmp_path / "queue"),
            "data_folder_out": str(tmp_path / "queue"),
            "processed_folder": str(tmp_path / "processed"),
            "control_folder": str(tmp_path / "control"),
        },
    )


def _produce(tmp_path, n: int, each: int) -> None:
    with _connection(tmp_path) as conn:
        queue = conn.SimpleQueue("slabs")
        for i in range(each):
            queue.put({"producer": n, "i": i, "padding": "x" * 20_000})


def test_filesystem_means_the_transport_that_writes_messages_whole():
    assert TRANSPORT_ALIASES["filesystem"] == "config.broker:Transport"


def test_messages_put_while_the_queue_is_drained_all_arrive_whole(tmp_path):
    producers, each = 4, 60
    received, errors = [], []
    with _connection(tmp_path) as conn:
        queue = conn.SimpleQueue("slabs")
        done = threading.Event()

        def consume():
            with _connection(tmp_path) as mine:
                q = mine.SimpleQueue("slabs")
                while len(received) < producers * each and not done.is_set():
                    try:
                        message = q.get(timeout=0.05)
                    except q.Empty:
                        continue
                    except Exception as error:  # the bug: a half-written file read as a message
                        errors.append(error)
                        return
                    received.append(message.payload)
                    message.ack()

        consumer = threading.Thread(target=consume)
        consumer.start()
        # Producers in processes of their own, as the web server and the workers are.
        context = multiprocessing.get_context("fork")
        processes = [context.Process(target=_produce, args=(tmp_path, n, each)) for n in range(producers)]
        for p in processes:
            p.start()
        for p in processes:
            p.join()
        consumer.join(timeout=60)
        done.set()
        queue.close()
    assert not errors
    assert sorted((m["producer"], m["i"]) for m in received) == [(n, i) for n in range(producers) for i in range(each)]
    assert all(len(m["padding"]) == 20_000 for m in received)
    assert not list((tmp_path / "staging").glob("*"))  # nothing left half-way


def test_a_file_that_is_not_a_message_is_skipped_and_the_next_message_arrives(tmp_path, caplog):
    with _connection(tmp_path) as conn:
        # (a queue name of its own: kombu keeps declared queues in a state shared by its connections)
        queue = conn.SimpleQueue("assembly")
        (tmp_path / "queue" / "1_half-written.assembly.msg").write_bytes(b"")
        queue.put({"slab": 7})
        message = queue.get(timeout=10)
        assert message.payload == {"slab": 7}
        message.ack()
        with pytest.raises(queue.Empty):
            queue.get(timeout=0.1)
        queue.close()
    assert "skipped an unreadable message" in caplog.text


def test_install_is_idempotent():
    broker.install()
    broker.install()
    assert TRANSPORT_ALIASES["filesystem"] == "config.broker:Transport"


def test_a_message_enters_the_queue_folder_only_once_written_whole(tmp_path, monkeypatch):
    import json
    import os
    from pathlib import Path

    moments = []
    real_replace = os.replace

    def spy(source, target):
        # Just before the rename: what a consumer listing the queue would find, and what was written.
        moments.append((os.listdir(tmp_path / "queue"), Path(source).read_bytes()))
        real_replace(source, target)

    monkeypatch.setattr(broker.os, "replace", spy)
    with _connection(tmp_path) as conn:
        queue = conn.SimpleQueue("volumes")
        queue.put({"job": 3, "padding": "y" * 50_000})
        ((listing, written),) = moments
        assert listing == []  # nothing half-written to find
        assert json.loads(written)["body"]  # the whole message, before it became visible
        message = queue.get(timeout=10)
        assert message.payload["job"] == 3 and len(message.payload["padding"]) == 50_000
        message.ack()
        queue.close()
