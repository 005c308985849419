"""CSV and GitHub-flavoured Markdown tables, numbers at two decimals: every report modsent writes uses these."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Sequence

__all__ = ["csv_text", "markdown_table", "format_cell"]


def format_cell(value: object) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.2f}"
    return str(value)


def csv_text(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """CSV with floats at two decimals (NaN as an empty cell)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([format_cell(v) for v in row] for row in rows)
    return buffer.getvalue()


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A GitHub-flavoured Markdown table; numbers right-aligned at two decimals.

    >>> print(markdown_table(["pair", "m"], [["deu", 81.234]]))
    | pair | m |
    | --- | ---: |
    | deu | 81.23 |
    """
    rows = [list(row) for row in rows]
    numeric = [bool(rows) and all(isinstance(row[i], (int, float)) for row in rows) for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |",
             "| " + " | ".join("---:" if is_num else "---" for is_num in numeric) + " |"]
    lines += ["| " + " | ".join(format_cell(v).replace("|", "\\|") for v in row) + " |" for row in rows]
    return "\n".join(lines)
