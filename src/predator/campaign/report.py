"""Campaign reports: the JSON document and the self-contained HTML page, in the out dir.

``write_reports`` writes ``campaign.json`` (the summary plus the chaos timeline) and
``campaign.html`` (scorecard, metrics, inline SVG equity and drawdown charts, the chaos
timeline and the incidents linked to their post-mortems); the journal and the
post-mortems are already there.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from predator.campaign.html import render_html

if TYPE_CHECKING:
    from predator.campaign.campaign import CampaignResult

__all__ = ["write_reports"]


def write_reports(result: CampaignResult, out_dir: Path, journal: Path | None) -> dict[str, str]:
    """Write the JSON and HTML reports; returns the files of the campaign by role."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"json": str(out_dir / "campaign.json"), "html": str(out_dir / "campaign.html")}
    if journal is not None:
        files["journal"] = str(journal)
    postmortems = out_dir / "postmortems"
    if postmortems.is_dir():
        files["postmortems"] = str(postmortems)
    result.files = files
    document = result.summary()
    document["chaos_log"] = result.chaos_log
    document["equity"] = result.equity
    Path(files["json"]).write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    Path(files["html"]).write_text(render_html(result, out_dir), encoding="utf-8")
    return files
