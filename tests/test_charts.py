"""The report's charts: plain data in, SVG out. Tables of cases: what a chart says in text, and what it draws."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import datetime, timezone

import pytest

from tbr import charts

SVG = "{http://www.w3.org/2000/svg}"


def parse(figure: str) -> ET.Element:
    return ET.fromstring(figure.replace("<figure", "<figure xmlns:x='x'", 1))  # well-formed XML, or it raises


def bars(figure: str) -> list[str]:
    """Each bar drawn, by its own title."""
    return [r.find(f"{SVG}title").text for r in parse(figure).iter(f"{SVG}rect")]


@pytest.mark.parametrize("days,sla,expected", [
    ([], 2, [0, 0, 0, 0, 0]),
    ([0.0, 0.49, 0.5, 1.99, 2.0, 3.99, 4.0, 12.5], 2, [3, 1, 1, 1, 2]),
    ([0.3, 1.2, 2.4], 1, [1, 1, 1]),
])
def test_signoff_bins_count_each_value_once_and_mark_past_the_sla(days, sla, expected):
    bins = charts.signoff_bins(days, sla, width=1)  # a bin a business day
    assert [n for _, n, _ in bins] == expected
    assert sum(n for _, n, _ in bins) == len(days)
    assert [past for _, _, past in bins] == [(i + 1) > sla for i in range(len(bins))]
    assert bins[-1][0] == f"≥{2 * sla}"


@pytest.mark.parametrize("series,desc,drawn", [
    ([("approved", "approved", [3, 0]), ("follow-up", "followup", [1, 2])],
     "2 bars; in all 3 approved, 3 follow-up", ["w1: 3 approved", "w1: 1 follow-up", "w2: 2 follow-up"]),
    ([("approved", "approved", [0, 0])], "2 bars; in all 0 approved", []),
])
def test_stacked_bars_draw_each_non_zero_value_and_say_the_totals(series, desc, drawn):
    figure = charts.stacked_bars("c", "Changes", ["w1", "w2"], series)
    root = parse(figure)
    assert root.find(f".//{SVG}desc").text == desc and root.find(f".//{SVG}title").text == "Changes"
    assert bars(figure) == drawn
    assert "<script" not in figure


def test_no_data_is_said_not_drawn():
    figure = charts.stacked_bars("c", "Exceptions", [], [("declared", "declared", [])])
    assert "Nothing to show in this period." in figure and bars(figure) == []


def test_text_is_escaped_in_titles_and_labels():
    figure = charts.stacked_bars("c", "A <b> & c", ["<x>"], [("\"q\"", "approved", [1])])
    assert parse(figure).find(f".//{SVG}title").text == "A <b> & c" and bars(figure) == ['<x>: 1 "q"']


def test_histogram_draws_the_sla_line_between_the_last_bin_within_and_the_first_past():
    bins = charts.signoff_bins([0.2, 1.7, 2.2, 5], 2)
    figure = charts.histogram("h", "Sign-off", bins, 2)
    assert "4 follow-ups signed off: 2 within 2 business days, 2 after" in figure
    slot = (charts.WIDTH - charts.LEFT - charts.RIGHT) / len(bins)
    assert f'<line x1="{charts.LEFT + slot * 4:.1f}"' in figure  # bins 0-0.5 .. 1.5-2 are within


def utc(s):
    return datetime.fromisoformat(s).replace(tzinfo=timezone.utc)


@pytest.mark.parametrize("spans,legend", [
    ([], ["running"]),
    ([(utc("2026-11-10 12:00"), utc("2026-11-10 12:05"), "gap", "gap of 5 min")], ["running", "gap"]),
    ([(utc("2026-11-01"), utc("2026-11-05"), "backfilled", "before tbr, backfilled")],
     ["running", "before tbr, backfilled"]),
    ([(utc("2026-11-01"), utc("2026-11-05"), "before", "before tbr")], ["running", "before tbr"]),
])
def test_timeline_shades_before_tbr_apart_from_gaps_and_never_loses_a_short_gap(spans, legend):
    figure = charts.timeline("t", "Coverage", utc("2026-11-01"), utc("2026-12-01"), spans,
                             [(utc("2026-11-10 12:10"), "sweep")] if spans else [])
    assert re.findall(r'</i>([^<]*)</span>', figure)[:len(legend)] == legend
    for frm, to, colour, label in spans:
        width = float(re.search(rf'width="([\d.]+)" height="60" fill="{charts.COLOURS[colour]}"><title>{label}',
                                figure).group(1))
        assert width >= 1.5
    assert ("0 gaps" if not spans or spans[0][2] != "gap" else "1 gap,") in figure
