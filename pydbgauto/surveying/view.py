"""A survey as text (the command's output, ``str(result)``) and as HTML (the notebook's view)."""

from __future__ import annotations

import base64
import io
from typing import Optional

from pydbgauto.surveying.run import COST_WARNING
from pydbgauto.surveying.summary import SurveyResult


def _cut(text: Optional[str], width: int) -> str:
    value = " ".join(("<no message>" if text is None else text).split())
    return value if len(value) <= width else value[: width - 3] + "..."


def summary_head(result: SurveyResult) -> str:
    if result.pid is not None:
        who = f"pid {result.pid}"
    elif len(result.by_pid) > 1:
        who = f"{len(result.by_pid)} processes"
    else:
        who = "the process"
    if result.process:
        who += f" ({result.process})"
    text = (
        f"{who}: {result.total} exception{'' if result.total == 1 else 's'} in {result.seconds:.1f} s "
        f"({result.rate:.2f}/s), {len(result.rows)} kind{'' if len(result.rows) == 1 else 's'}; "
        f"ended: {result.ended}"
    )
    if result.ended == "exit":
        text += f" (status {result.exit_status})"
    if result.unread:
        text += f"; {result.unread} could not be read by SOS"
    return text


def summary_text(result: SurveyResult, top: int = 20) -> str:
    """The survey as text: the head line, the rows, the breakdowns, and a watch command per row."""
    lines = [summary_head(result)]
    rows = result.rows[:top]
    if rows:
        lines.append(
            f"{'#':>3} {'count':>7} {'rate/s':>8}  {'type':<40} {'threads':>7}  message pattern / thrown in"
        )
        for row in rows:
            lines.append(
                f"{row.n:>3} {row.count:>7} {row.rate:>8.2f}  {_cut(row.type or '?', 40):<40} "
                f"{len(row.threads):>7}  {_cut(row.pattern, 70)}"
            )
            lines.append(f"{'':>3} {'':>7} {'':>8}  {'':<40} {'':>7}  in {_cut(row.site or '?', 70)}")
        if len(result.rows) > top:
            lines.append(f"    ... {len(result.rows) - top} more rows (--json has them all)")
        breakdowns = [("by type", result.by_type), ("by thread", result.by_thread)]
        if len(result.by_pid) > 1:
            breakdowns.append(("by process", result.by_pid))
        for title, counts in breakdowns:
            lines.append(f"{title}:")
            lines += [f"  {c}" for c in counts[:top]]
        lines.append("to dump the exceptions of a row:")
        lines += [f"  {row.n}: {result.watch_command(row.n)}" for row in rows]
    return "\n".join(lines)


def _chart_png(result: SurveyResult, top: int) -> Optional[str]:
    """A horizontal bar chart of the top rows as a base64 PNG, or None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib.figure import Figure
    except Exception:  # absent, or broken: the table alone
        return None
    rows = list(result.rows[:top])
    if not rows:
        return None
    figure = Figure(figsize=(7, 0.35 * len(rows) + 0.8), dpi=90)
    axes = figure.add_subplot(1, 1, 1)
    labels = [f"#{r.n} {_cut((r.type or '?').rsplit('.', 1)[-1], 30)}" for r in rows]
    axes.barh(range(len(rows)), [r.rate for r in rows], color="#c0392b")
    axes.set_yticks(range(len(rows)))
    axes.set_yticklabels(labels, fontsize=8)
    axes.invert_yaxis()
    axes.set_xlabel("exceptions per second")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def survey_html(result: SurveyResult, top: int = 30) -> str:
    """The survey as HTML: a chart (with matplotlib), then the rows as a table with a bar per row and the
    watch command of each row; every value escaped."""
    from pydbgauto.display import _e, _root, _table

    parts = [f'<div class="pdg-head pdg-label">{_e(summary_head(result))}</div>']
    png = _chart_png(result, top)
    if png is not None:
        parts.append(
            f'<img class="pdg-chart" alt="exceptions per second, per row" src="data:image/png;base64,{png}"/>'
        )
    most = max((r.count for r in result.rows), default=0) or 1
    cells = []
    for row in result.rows[:top]:
        width = max(1, round(100 * row.count / most))
        bar = f'<div style="background:#c0392b;height:.7em;width:{width}px"></div>'
        threads = ", ".join(f"{t.key} ({t.count})" for t in row.threads[:5])
        cells.append(
            f"<tr><td>{row.n}</td><td>{row.count}</td><td>{row.rate:.2f}</td><td>{bar}</td>"
            f'<td class="pdg-mono">{_e(row.type or "?")}</td><td>{_e(_cut(row.pattern, 120))}</td>'
            f'<td class="pdg-mono">{_e(row.site or "?")}</td><td>{_e(threads)}</td>'
            f'<td class="pdg-mono">{_e(result.watch_command(row.n))}</td></tr>'
        )
    if cells:
        parts.append(
            _table(
                ("#", "count", "per s", "", "type", "message pattern", "thrown in", "threads", "watch it"),
                cells,
                "pdg-survey",
            )
        )
    else:
        parts.append('<div class="pdg-none">no exception was thrown while the survey watched</div>')
    parts.append(f'<div class="pdg-none">{_e(COST_WARNING)}</div>')
    return _root("survey", "".join(parts))
