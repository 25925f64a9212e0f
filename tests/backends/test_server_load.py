from instrl_trl.backends.server_load import ClientLoad, ServerLoad, client_held_back, servers_kept_waiting
from tests.backends.steady_loads import steady_load


def test_server_load_integrates_the_calls_in_flight_over_time():
    now = [0.0]
    load = ServerLoad(limit=2, clock=lambda: now[0])
    assert load.fill is None  # nothing ended yet
    for time_, event in [(10.0, load.start), (11.0, load.start), (13.0, load.end), (14.0, load.end)]:
        now[0] = time_
        event()
    # 1 call in flight for 1 s, 2 for 2 s, 1 for 1 s: 6 call-seconds over 4 s of 2 slots
    assert load.requests == 2 and load.seconds == 4.0 and load.busy_seconds == 6.0
    assert load.fill == 0.75


def test_client_load_measures_the_process_cpu_and_the_loops_waiting():
    now, cpu = [100.0], [5.0]
    client = ClientLoad(clock=lambda: now[0], cpu_clock=lambda: cpu[0], cores=2)
    with client.waiting():
        now[0] += 9.0
    now[0] += 1.0
    cpu[0] += 17.0
    client.stop()
    now[0], cpu[0] = 200.0, 50.0
    client.stop()  # the first stop counts
    assert client.seconds == 10.0 and client.waiting_seconds == 9.0 and client.cpu_seconds == 17.0
    assert client.waiting_share == 0.9 and client.cores_busy == 1.7
    assert client.describe() == (
        "this process kept 1.7 of its 2 CPU cores busy, and its loop waited for answers 90% of the time"
    )


def test_cores_busy_so_far_reads_a_running_loop_and_stops_with_it():
    now, cpu = [100.0], [5.0]
    client = ClientLoad(clock=lambda: now[0], cpu_clock=lambda: cpu[0], cores=2)
    assert client.cores_busy_so_far() == 0.0  # no time passed yet
    now[0], cpu[0] = 104.0, 11.0
    assert client.cores_busy_so_far() == 1.5 and client.cores_busy == 0.0  # `cores_busy` waits for the stop
    client.stop()
    now[0], cpu[0] = 200.0, 11.0
    assert client.cores_busy_so_far() == client.cores_busy == 1.5  # fixed at the stop


def test_free_slots_are_split_by_what_the_loop_was_doing():
    # A server of 4 slots, one call from t=0 to t=10. The loop works (acts) from 0 to 2 and from 6 to 10, and waits
    # for answers from 2 to 6: 3 slots free all along, 30 slot-seconds, of which 3 x 6 = 18 passed while it worked.
    # After the last answer the loop works on: that time is outside the server's span and counts for nothing
    now = [0.0]
    load = ServerLoad(limit=4, clock=lambda: now[0])
    client = ClientLoad(clock=lambda: now[0], loads=[load])
    load.start()
    now[0] = 2.0
    with client.waiting():
        now[0] = 6.0
    now[0] = 10.0
    load.end()
    now[0] = 30.0
    with client.waiting():
        now[0] = 31.0
    assert load.fill == 0.25 and load.seconds == 10.0
    assert load.held_back == 18.0 / 30.0
    assert client_held_back(load)
    # A full server has no free slot to split
    full = ServerLoad(limit=1, clock=lambda: now[0])
    full.start()
    now[0] = 32.0
    full.end()
    assert full.fill == 1.0 and full.held_back is None and not client_held_back(full)


def test_only_servers_kept_waiting_over_enough_calls_are_named():
    loads = {"idle": steady_load(1), "full": steady_load(4), "half": steady_load(2), "short": steady_load(1, calls=15)}
    assert [server.fill for server in loads.values()] == [0.25, 1.0, 0.5, 0.25]
    assert list(servers_kept_waiting(loads)) == ["idle"]  # under half full, over 4 requests per slot at least
