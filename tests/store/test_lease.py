"""The driver lease: one live driver per search."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest

from store import NotFound, SearchBusy, SearchRecord, Store, TrialStatus

HOST = socket.gethostname()


def _dead_pid() -> int:
    """The pid of a process of this host that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_acquire_free_then_busy(store: Store, search: SearchRecord) -> None:
    store.acquire_search(search.id, "elsewhere:1")
    rec = store.get_search("s1")
    assert rec.driver == "elsewhere:1" and rec.driver_heartbeat_at is not None
    store.acquire_search(search.id, "elsewhere:1")  # the holder itself: fine
    with pytest.raises(SearchBusy) as e:
        store.acquire_search(search.id, "other:2")
    message = str(e.value)
    assert "\n" not in message
    assert "search 's1' is being run by elsewhere:1 (last heartbeat 0 s ago)" in message
    assert "wait for it to finish, or stop it" in message
    assert store.get_search("s1").driver == "elsewhere:1"


def test_live_process_on_this_host_keeps_it(store: Store, search: SearchRecord) -> None:
    import os

    store.acquire_search(search.id, f"{HOST}:{os.getpid()}")
    with pytest.raises(SearchBusy):
        store.acquire_search(search.id, f"{HOST}:{os.getpid() + 100000000}")


def test_dead_process_on_this_host_is_taken_over_at_once(store: Store, search: SearchRecord) -> None:
    dead = f"{HOST}:{_dead_pid()}"
    store.acquire_search(search.id, dead, lease_seconds=3600)
    store.acquire_search(search.id, "me:1", lease_seconds=3600)
    assert store.get_search("s1").driver == "me:1"


def test_expired_lease_is_taken_over(store: Store, search: SearchRecord) -> None:
    store.acquire_search(search.id, "other-host:1")
    time.sleep(0.05)
    with pytest.raises(SearchBusy):
        store.acquire_search(search.id, "me:1", lease_seconds=60)
    store.acquire_search(search.id, "me:1", lease_seconds=0.01)
    assert store.get_search("s1").driver == "me:1"


def test_heartbeat(store: Store, search: SearchRecord) -> None:
    for _ in range(3):
        store.add_trial(search.id, arch={}, arch_key="k", proposer="p")
    store.acquire_search(search.id, "me:1")
    first = store.get_search("s1").driver_heartbeat_at
    store.start_trial(search.id, 0)
    store.start_trial(search.id, 1)
    before = [store.get_trial(search.id, n).heartbeat_at for n in (0, 1)]
    time.sleep(0.01)
    store.heartbeat(search.id, "me:1", running=[0, 2])
    assert store.get_search("s1").driver_heartbeat_at > first
    assert store.get_trial(search.id, 0).heartbeat_at > before[0]
    assert store.get_trial(search.id, 1).heartbeat_at == before[1]  # not listed
    assert store.get_trial(search.id, 2).heartbeat_at is None  # listed, but not running
    # A driver whose lease was taken over learns it at its next heartbeat.
    store.acquire_search(search.id, "thief:2", lease_seconds=0)
    with pytest.raises(SearchBusy, match="taken over by thief:2"):
        store.heartbeat(search.id, "me:1")


def test_release(store: Store, search: SearchRecord) -> None:
    store.acquire_search(search.id, "me:1")
    store.release_search(search.id, "other:2")  # not the holder: nothing happens
    assert store.get_search("s1").driver == "me:1"
    store.release_search(search.id, "me:1")
    rec = store.get_search("s1")
    assert rec.driver is None and rec.driver_heartbeat_at is None
    store.acquire_search(search.id, "other:2", lease_seconds=3600)
    assert store.get_search("s1").driver == "other:2"


def test_resume_after_a_dead_driver(store: Store, search: SearchRecord) -> None:
    """The resume path: take over a dead driver's search, requeue its orphans."""
    dead = f"{HOST}:{_dead_pid()}"
    store.acquire_search(search.id, dead)
    store.add_trial(search.id, arch={}, arch_key="k", proposer="p")
    store.start_trial(search.id, 0, worker=dead)
    store.acquire_search(search.id, f"{HOST}:1")
    assert [t.number for t in store.requeue_trials(search.id)] == [0]
    assert store.get_trial(search.id, 0).status == TrialStatus.PROPOSED


def test_lease_on_missing_search(store: Store) -> None:
    for call in (store.acquire_search, store.heartbeat, store.release_search):
        with pytest.raises(NotFound, match="no search with id 999"):
            call(999, "me:1")
