"""Plots for the cards: matplotlib set up once for files, never for a screen."""

from types import ModuleType


def pyplot() -> ModuleType:
    """
    Returns `matplotlib.pyplot` on the non-interactive `Agg` backend, so that saving a figure works on servers and in
    CI without a display. Imported on demand: matplotlib is slow to import and only the cards need it.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
