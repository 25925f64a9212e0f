class SimulatedKill(BaseException):
    """A kill -9 as the code after it sees one: nothing more runs (not an `Exception`, so nothing catches it)."""
