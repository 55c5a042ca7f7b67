"""Drawing to files, for every report in ppo.lab: matplotlib is the optional `plots` extra, so a report asks
`pyplot` for it (None, with a one-line notice, where it is not installed: the report then writes its tables
only), and `save` writes a figure and closes it."""

from __future__ import annotations

from pathlib import Path


def pyplot(who: str):
    """matplotlib's pyplot drawing to files only, or None, with a one-line notice, where the `plots` extra is not
    installed: a runner then writes its tables without figures."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only, no display
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"[{who}] matplotlib is not installed (pip install -e .[plots]): the tables only, no figures")
        return None
    return plt


def save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")  # the legend sits outside the axes
    import matplotlib.pyplot as plt

    plt.close(fig)  # pyplot keeps every open figure until it is closed
    return path
