"""Server loads played on a fake clock, for the tests of what the stages say about them."""

from instrl_trl.backends.server_load import ServerLoad


def steady_load(in_flight: int, calls: int = 16, limit: int = 4, loop_works: bool = False) -> ServerLoad:
    """
    `calls` calls of 1 s each, `in_flight` at a time, at a server of `limit` slots (`in_flight / limit` full), the
    loop that sends them working (not waiting for answers) all along if `loop_works`.
    """
    now = [0.0]
    server = ServerLoad(limit, clock=lambda: now[0])
    server.loop_waits(not loop_works)
    for _ in range(calls // in_flight):
        for _ in range(in_flight):
            server.start()
        now[0] += 1.0
        for _ in range(in_flight):
            server.end()
    return server
