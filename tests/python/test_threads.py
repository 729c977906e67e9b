"""One Client shared by threads, each recording its own run."""

from __future__ import annotations

import threading

import numpy as np

N = 20000


def test_threads_record_their_own_runs_through_one_client(daemon, client, campaign):
    ids = {}
    errors = []

    def work(k):
        try:
            with client.open_run(campaign, params={"k": k}) as run:
                ids[k] = run.id
                for i in range(N):
                    run.record("i", i)
                    run.record("y", np.full(3, k * N + i, dtype=np.int64))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    # flushes from another thread while they record: must not disturb their blocks
    while any(t.is_alive() for t in threads):
        client.flush()
    for t in threads:
        t.join()
    assert not errors, errors
    client.flush()
    with daemon.view(campaign) as f:
        for k, rid in ids.items():
            assert np.array_equal(f[f"runs/{rid}/i"][()], np.arange(N))
            assert np.array_equal(f[f"runs/{rid}/y"][()][:, 2], k * N + np.arange(N))
