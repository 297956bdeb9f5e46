"""Charts for the evidence report: plain data in, inline SVG text out. Pure; no I/O, no script.

Each chart is a `<figure>` holding an `<svg role="img">` whose `<title>` and `<desc>` say what it shows
(a screen reader reads those, and the desc states the figures, so nothing is only in the picture), and
a caption with the legend in text. Every bar carries its own `<title>`: its label and count on hover.
Colours are fill attributes, so the charts print as they show without a stylesheet.
"""

from __future__ import annotations

import html
import math
from datetime import datetime

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 40, 10, 10, 40  # room for the axis labels

# Decisions and exception kinds keep one colour across charts (colour-blind safe: Okabe-Ito).
COLOURS = {"approved": "#009E73", "followup": "#E69F00", "unapproved": "#D55E00", "pending": "#999999",
           "declared": "#0072B2", "undeclared": "#D55E00", "push": "#CC79A7", "before_tbr": "#999999",
           "within": "#009E73", "late": "#D55E00", "running": "#009E73", "gap": "#D55E00",
           "before": "#BBBBBB", "backfilled": "#56B4E9"}


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _svg(key: str, title: str, desc: str, body: list[str], legend: list[tuple[str, str]]) -> str:
    keys = "".join(f'<span class="key"><i style="background:{COLOURS.get(c, c)}"></i>{_e(name)}</span>'
                   for name, c in legend)
    return (f'<figure class="chart" id="{key}"><svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img"'
            f' aria-labelledby="{key}-t {key}-d" xmlns="http://www.w3.org/2000/svg">'
            f'<title id="{key}-t">{_e(title)}</title><desc id="{key}-d">{_e(desc)}</desc>'
            + "".join(body) + f'</svg><figcaption><b>{_e(title)}</b> {keys}</figcaption></figure>')


def _axis(top: int) -> list[str]:
    """The y axis from 0 to `top`, with its middle and top marked."""
    plot = HEIGHT - TOP - BOTTOM
    out = [f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{HEIGHT - BOTTOM}" stroke="#57606a"/>',
           f'<line x1="{LEFT}" y1="{HEIGHT - BOTTOM}" x2="{WIDTH - RIGHT}" y2="{HEIGHT - BOTTOM}" stroke="#57606a"/>']
    for value in sorted({0, top // 2, top}):
        y = HEIGHT - BOTTOM - plot * value / top if top else HEIGHT - BOTTOM
        out.append(f'<text x="{LEFT - 4}" y="{y + 4:.1f}" text-anchor="end" font-size="11">{value}</text>')
    return out


def _labels(labels: list[str], slot: float) -> list[str]:
    """x labels, thinned so they never overlap (about 8 characters each)."""
    every = max(1, math.ceil(60 / slot))
    return [f'<text x="{LEFT + slot * (i + .5):.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle"'
            f' font-size="11">{_e(label)}</text>' for i, label in enumerate(labels) if i % every == 0]


def stacked_bars(key: str, title: str, labels: list[str], series: list[tuple[str, str, list[int]]]) -> str:
    """One bar per label, stacked by series (name, colour key, a value per label)."""
    totals = [sum(values[i] for _, _, values in series) for i in range(len(labels))]
    top = max(totals, default=0)
    plot, slot = HEIGHT - TOP - BOTTOM, (WIDTH - LEFT - RIGHT) / max(len(labels), 1)
    body = _axis(top)
    for i, label in enumerate(labels):
        y = HEIGHT - BOTTOM
        for name, colour, values in series:
            if not values[i]:
                continue
            h = plot * values[i] / top
            y -= h
            body.append(f'<rect x="{LEFT + slot * i + slot * .15:.1f}" y="{y:.1f}" width="{slot * .7:.1f}"'
                        f' height="{h:.1f}" fill="{COLOURS.get(colour, colour)}"><title>{_e(label)}: {values[i]}'
                        f' {_e(name)}</title></rect>')
    body += _labels(labels, slot)
    sums = [(name, sum(values)) for name, _, values in series]
    desc = (f"{len(labels)} bars; in all " + ", ".join(f"{n} {name}" for name, n in sums) if labels
            else "Nothing to show in this period.")
    return _svg(key, title, desc, body, [(f"{name} ({n})", colour) for (name, colour, _), (_, n) in zip(series, sums)])


def signoff_bins(days: list[float], sla_days: int, width: float = 0.5) -> list[tuple[str, int, bool]]:
    """Business days to sign-off in bins of `width` up to twice the SLA, then one bin for the rest:
    (label, count, past the SLA)."""
    edges = int(2 * sla_days / width)
    counts = [0] * (edges + 1)
    for d in days:
        counts[min(int(d / width), edges)] += 1
    return [(f"{i * width:g}–{(i + 1) * width:g}" if i < edges else f"≥{edges * width:g}", n, (i + 1) * width > sla_days)
            for i, n in enumerate(counts)]


def histogram(key: str, title: str, bins: list[tuple[str, int, bool]], sla_days: int) -> str:
    """Bars per bin, coloured within or past the SLA, with a line where the SLA ends."""
    top = max((n for _, n, _ in bins), default=0)
    plot, slot = HEIGHT - TOP - BOTTOM, (WIDTH - LEFT - RIGHT) / max(len(bins), 1)
    body = _axis(top)
    within = late = 0
    for i, (label, n, past) in enumerate(bins):
        within, late = within + (0 if past else n), late + (n if past else 0)
        if n:
            h = plot * n / top
            body.append(f'<rect x="{LEFT + slot * i + 1:.1f}" y="{HEIGHT - BOTTOM - h:.1f}" width="{slot - 2:.1f}"'
                        f' height="{h:.1f}" fill="{COLOURS["late" if past else "within"]}"><title>{_e(label)}'
                        f' business days: {n}</title></rect>')
    edge = next((i for i, (_, _, past) in enumerate(bins) if past), len(bins))
    x = LEFT + slot * edge
    body.append(f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{HEIGHT - BOTTOM}" stroke="#1f2328"'
                f' stroke-dasharray="4 3"/><text x="{x + 4:.1f}" y="{TOP + 12}" font-size="11">SLA: {sla_days}'
                " business days</text>")
    body += _labels([label for label, _, _ in bins], slot)
    body.append(f'<text x="{(WIDTH + LEFT) / 2:.0f}" y="{HEIGHT - 6}" text-anchor="middle" font-size="11">'
                "business days from the change to its sign-off</text>")
    desc = (f"{within + late} follow-ups signed off: {within} within {sla_days} business days, {late} after"
            if within + late else "No follow-up was signed off in this period.")
    return _svg(key, title, desc, body, [(f"within the SLA ({within})", "within"), (f"late ({late})", "late")])


def timeline(key: str, title: str, start: datetime, end: datetime,
             spans: list[tuple[datetime, datetime, str, str]], marks: list[tuple[datetime, str]]) -> str:
    """The period as one band: spans (from, to, colour key, label) over a running background, and marks
    (an instant and its label, e.g. a sweep) as ticks under the band."""
    length = (end - start).total_seconds() or 1
    span_w = WIDTH - LEFT - RIGHT

    def x(when: datetime) -> float:
        return LEFT + span_w * min(max((when - start).total_seconds() / length, 0), 1)

    band_top, band_h = TOP + 40, 60
    body = [f'<rect x="{LEFT}" y="{band_top}" width="{span_w}" height="{band_h}" fill="{COLOURS["running"]}">'
            "<title>tbr running</title></rect>"]
    for frm, to, colour, label in spans:
        # A gap of minutes is still drawn: at least a pixel wide, so it cannot vanish from the picture.
        body.append(f'<rect x="{x(frm):.1f}" y="{band_top}" width="{max(x(to) - x(frm), 1.5):.1f}"'
                    f' height="{band_h}" fill="{COLOURS.get(colour, colour)}"><title>{_e(label)}</title></rect>')
    for when, label in marks:
        body.append(f'<path d="M{x(when):.1f} {band_top + band_h + 2} l-5 9 h10 z" fill="#0072B2">'
                    f"<title>{_e(label)}</title></path>")
    body += [f'<text x="{LEFT}" y="{HEIGHT - 12}" font-size="11">{_e(start.date().isoformat())}</text>',
             f'<text x="{WIDTH - RIGHT}" y="{HEIGHT - 12}" font-size="11" text-anchor="end">{_e(end.date().isoformat())}</text>']
    kinds = {colour for _, _, colour, _ in spans}
    legend = [("running", "running")] + [(name, c) for name, c in (
        ("before tbr", "before"), ("before tbr, backfilled", "backfilled"), ("gap", "gap")) if c in kinds]
    gaps = sum(1 for _, _, c, _ in spans if c == "gap")
    desc = (f"From {start.date()} to {end.date()}: {gaps} gap{'' if gaps == 1 else 's'}, {len(marks)} sweep"
            f"{'' if len(marks) == 1 else 's'} marked. " + "; ".join(label for *_, label in spans))
    if marks:
        legend.append(("▲ sweep", "#0072B2"))
    return _svg(key, title, desc, body, legend)
