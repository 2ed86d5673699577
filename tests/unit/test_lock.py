from concurrent.futures import ThreadPoolExecutor

from rlthf_plugin.store.lock import acquire, holder_of, release


def test_one_holder_at_a_time(workspace):
    assert acquire(workspace.ledger, "iteration", "a")
    assert not acquire(workspace.ledger, "iteration", "b")
    assert acquire(workspace.ledger, "iteration", "a")  # renewal
    assert holder_of(workspace.ledger, "iteration") == "a"
    release(workspace.ledger, "iteration", "a")
    assert acquire(workspace.ledger, "iteration", "b")


def test_expired_lease_is_taken_over(workspace):
    assert acquire(workspace.ledger, "iteration", "dead", ttl=-1)
    assert holder_of(workspace.ledger, "iteration") is None
    assert acquire(workspace.ledger, "iteration", "alive")


def test_racing_holders_get_exactly_one(workspace):
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda i: acquire(workspace.ledger, "race", f"h{i}"), range(16)))
    assert sum(results) == 1

