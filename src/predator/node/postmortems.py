"""Post-mortems written as incidents happen, not only when someone asks for them.

A node given a post-mortem directory writes the report of every critical incident (a
reconciliation mismatch, a kill-switch trip, an invariant violation) the moment it is
journaled, with the timeline so far; at the end of a run it writes every incident's
report again with the events that followed and what resumed trading, plus an index.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from predator.core.bus import MessageBus
from predator.core.events import Event
from predator.ledger.journal import Journal
from predator.validation.postmortem import build_postmortems, find_incidents, write_postmortems

__all__ = ["IMMEDIATE_INCIDENTS", "PostmortemWriter"]

IMMEDIATE_INCIDENTS = frozenset(
    {"ReconciliationMismatch", "KillSwitchTripped", "InvariantViolated"}
)
"""Incidents whose report is written the moment they are journaled."""


class PostmortemWriter:
    """Writes post-mortems of a kernel's journal into ``out_dir`` (see the module docstring)."""

    def __init__(self, bus: MessageBus, journal: Journal, out_dir: str | os.PathLike[str]) -> None:
        self.journal = journal
        self.out_dir = Path(out_dir)
        self.written: list[Path] = []
        # A tap: it hears the incident as it is published, right after the journal did.
        bus.tap(Event, self._on_incident, where=_is_immediate)

    def _on_incident(self, _event: Event) -> None:
        journal = self.journal
        seq = journal.last_seq  # the journal heard the incident first: it is the last record
        # The kernel committed it at once (write-ahead); reading never flushes here, so
        # writing reports does not change what a crash could lose.
        records = list(journal.records(flush=False))
        incidents = [incident for incident in find_incidents(records) if incident.seq == seq]
        if not incidents:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for report in build_postmortems(records, incidents):
            markdown = self.out_dir / f"{report.name}.md"
            markdown.write_text(report.to_markdown(), encoding="utf-8")
            document = self.out_dir / f"{report.name}.json"
            document.write_text(json.dumps(report.to_json(), indent=2) + "\n", encoding="utf-8")
            self.written += [markdown, document]

    def finish(self) -> list[Path]:
        """Write every incident's report with the whole journal, and the index; returns
        the paths written (nothing, and no directory, when nothing happened)."""
        self.journal.flush()
        records = list(self.journal.records())
        if not find_incidents(records) and not self.written:
            return []
        self.written = write_postmortems(records, self.out_dir)
        return self.written


def _is_immediate(event_type: type) -> bool:
    return event_type.__name__ in IMMEDIATE_INCIDENTS
