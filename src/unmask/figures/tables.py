"""A figure's tables (CSV + Markdown) and its plot files (PNG + PDF, matplotlib with Agg)."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Table:
    """Rows of named columns. ``name``: the file stem; ``title``: the Markdown heading."""

    name: str
    title: str
    columns: list[str]
    rows: list[dict[str, Any]] = field(default_factory=list)
    note: str = ""

    def column(self, name: str) -> list[Any]:
        return [row.get(name) for row in self.rows]

    def where(self, **equal: Any) -> list[dict[str, Any]]:
        return [row for row in self.rows if all(row.get(k) == v for k, v in equal.items())]

    def markdown(self) -> str:
        lines = [f"### {self.title}", ""]
        if self.note:
            lines += [self.note, ""]
        lines.append("| " + " | ".join(self.columns) + " |")
        lines.append("|" + "|".join("---" for _ in self.columns) + "|")
        for row in self.rows:
            lines.append("| " + " | ".join(format_value(row.get(c)) for c in self.columns) + " |")
        return "\n".join(lines) + "\n"

    def write_csv(self, path: Path) -> Path:
        with open(path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=self.columns, extrasaction="ignore")
            writer.writeheader()
            for row in self.rows:
                writer.writerow({c: "" if row.get(c) is None else row.get(c) for c in self.columns})
        return path


def format_value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
            return f"{value:.3g}"
        return f"{value:.4g}" if abs(value) < 100 else f"{value:.1f}"
    return str(value)


def write_tables(tables: list[Table], out_dir: Path, stem: str, heading: str = "") -> list[Path]:
    """``<stem>.csv`` for the first table, ``<stem>_<name>.csv`` for the others, and one
    ``<stem>.md`` holding every table."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for i, table in enumerate(tables):
        written.append(table.write_csv(out_dir / (f"{stem}.csv" if i == 0 else f"{stem}_{table.name}.csv")))
    text = (f"## {heading}\n\n" if heading else "") + "\n".join(t.markdown() for t in tables)
    (out_dir / f"{stem}.md").write_text(text)
    written.append(out_dir / f"{stem}.md")
    return written


def pyplot():
    """matplotlib's pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"figure.dpi": 110, "savefig.dpi": 150, "font.size": 9, "axes.grid": True})
    plt.rcParams.update({"grid.alpha": 0.3, "legend.fontsize": 7, "axes.titlesize": 9})
    return plt


def save_figure(fig: Any, out_dir: Path, stem: str) -> list[Path]:
    """``<stem>.png`` and ``<stem>.pdf``; the figure is closed."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{stem}.png", out_dir / f"{stem}.pdf"]
    fig.tight_layout()
    for path in paths:
        fig.savefig(path, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return paths


def finite(values: list[Any]) -> list[float]:
    return [float(v) for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
