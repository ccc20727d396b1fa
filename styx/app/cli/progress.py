"""What `styx launch` and `styx down` show while they run: a Tracker (styx.app.events) drawn on stderr,
a live table on a terminal, else one line per phase change."""

from __future__ import annotations

from typing import Any

from styx.app.events import (  # noqa: F401  (re-exported: the CLI's commands and tests read them here)
    CLUSTER_ROW,
    NameMap,
    PhaseState,
    PlanCollector,
    Tracker,
    split_urn,
)


def render_table(tracker: Tracker, title: str = ""):
    from rich.table import Table
    from rich.text import Text

    t = Table(title=title or None, expand=False, show_edge=False, pad_edge=False)
    for col in ("node", "phase", "status", "done", "elapsed", "output"):
        t.add_column(col, overflow="fold" if col == "output" else "ellipsis", no_wrap=col != "output")
    styles = {"running": "yellow", "done": "green", "failed": "bold red", "waiting": "dim"}
    for r in tracker.rows():
        tail = r["tail"]
        if len(tail) > 70:
            tail = tail[:67] + "..."
        t.add_row(r["node"], r["phase"], Text(r["status"], style=styles.get(r["status"], "")), str(r["done"]),
                  f"{r['elapsed_s']:.0f}s", Text(tail, style="dim"))
    return t


RUNNING_WORDS = {"create": "started", "update": "updating", "replace": "replacing",
                 "create-replacement": "replacing", "delete": "deleting", "delete-replaced": "deleting old",
                 "refresh": "refreshing", "read": "reading"}


class ProgressUI:
    """Shows a Tracker on stderr: a live table on a terminal, else one line per phase change."""

    def __init__(self, tracker: Tracker, title: str, console: Any = None, live: bool | None = None):
        import threading

        from rich.console import Console

        self.tracker = tracker
        self.title = title
        self.console = console or Console(stderr=True, highlight=False)
        if not self.console.is_terminal:
            self.console.soft_wrap = True  # a log: one line per change, never wrapped
        self.live_mode = self.console.is_terminal if live is None else live
        self._live: Any = None
        self._lock = threading.Lock()

    def __enter__(self) -> ProgressUI:
        if self.live_mode:
            from rich.live import Live

            self._live = Live(get_renderable=lambda: render_table(self.tracker, self.title), console=self.console,
                              refresh_per_second=4, transient=False)
            self._live.start()
        else:
            self.tracker.on_change = self._line
        return self

    def _line(self, node: str, ph: PhaseState) -> None:
        t = self.tracker.clock() - self.tracker.started
        status = ph.status
        if ph.status == "running":
            status = RUNNING_WORDS.get(ph.op, ph.op)
        elif ph.status == "done" and ph.op in ("delete", "delete-replaced"):
            status = "deleted"
        elif ph.status == "failed" and ph.error:
            lines = [ln for ln in ph.error.splitlines() if ln.strip()]
            status = f"failed: {lines[-1][:160]}" if lines else "failed"
        with self._lock:
            self.console.print(f"[{t:7.1f}s] {node:<14} {ph.name:<24} {status}", markup=False, highlight=False)

    def note(self, msg: str) -> None:
        with self._lock:
            self.console.print(msg, markup=False, highlight=False)

    def __exit__(self, *exc: Any) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
        self.tracker.on_change = None
