"""The Statistics page's SVG charts: well-formed, proportional, escaped, and with their numbers."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

import pytest

from asynctask_operator.gateway.console.charts import bar_chart, column_chart, percent, seconds

NS = "{http://www.w3.org/2000/svg}"


def parsed(svg: str) -> ET.Element:
    root = ET.fromstring(svg)  # raises on anything but well-formed XML
    assert root.tag == NS + "svg"
    return root


def of_class(root: ET.Element, css: str) -> list[ET.Element]:
    return [e for e in root.iter() if e.get("class") == css]


def texts(root: ET.Element, css: str) -> list[str]:
    return [e.text or "" for e in of_class(root, css) if e.tag == NS + "text"]


def title_of(element: ET.Element) -> str | None:
    title = element.find(NS + "title")
    return None if title is None else title.text


@pytest.mark.parametrize(
    "svg",
    [
        bar_chart("Success rate", [("a", 1.0)]),
        bar_chart("Success rate", []),
        column_chart("Success rate", [("00:00", 3)]),
        column_chart("Success rate", []),
    ],
)
def test_a_chart_names_itself_scales_and_has_no_inline_style_or_script(svg: str) -> None:
    root = parsed(svg)
    assert (root.get("role"), root.get("aria-label"), root.get("width"), root.get("class")) == (
        "img", "Success rate", "100%", "chart",
    )  # fmt: skip
    assert root.get("viewBox", "").startswith("0 0 600 ")
    assert root[0].tag == NS + "title" and root[0].text == "Success rate"
    elements = list(root.iter())
    assert not [e for e in elements if "style" in e.attrib or e.tag in (NS + "style", NS + "script")]
    assert not [e for e in elements if any("href" in name for name in e.attrib)]  # no external references


@pytest.mark.parametrize(
    ("bars", "widths", "values"),
    [
        ([("a", 10.0), ("b", 5.0), ("c", 0.0)], [320.0, 160.0, 0.0], ["10", "5", "0"]),  # the largest full, half half
        ([("a", 2.0), ("b", None), ("c", 8.0)], [80.0, 320.0], ["2", "—", "8"]),  # None: "—" and no bar
        ([("a", None)], [], ["—"]),
        ([("a", 0.0), ("b", 0.0)], [0.0, 0.0], ["0", "0"]),  # nothing to scale to: no division by zero
        ([("a", -1.0), ("b", 4.0)], [0.0, 320.0], ["-1", "4"]),
    ],
)
def test_bars_are_proportional_and_carry_their_values(
    bars: list[tuple[str, float | None]], widths: list[float], values: list[str]
) -> None:
    root = parsed(bar_chart("t", bars))
    assert [float(r.get("width", "nan")) for r in of_class(root, "bar")] == widths
    assert texts(root, "bar-label") == [label for label, _ in bars]
    assert texts(root, "bar-value") == values


def test_values_are_formatted_with_their_unit() -> None:
    root = parsed(bar_chart("t", [("a", 0.975), ("b", 0.5)], fmt=percent))
    assert texts(root, "bar-value") == ["97.5%", "50%"]
    root = parsed(bar_chart("t", [("a", 3.0)], unit="tasks"))
    assert texts(root, "bar-value") == ["3 tasks"]


@pytest.mark.parametrize("label", ['<script>alert("x")</script>', "R&D", "a > b ' \""])
def test_labels_and_titles_are_escaped(label: str) -> None:
    for svg in (bar_chart(label, [(label, 1.0)]), column_chart(label, [(label, 1)])):
        assert "<script" not in svg
        root = parsed(svg)
        assert root.get("aria-label") == label and root[0].text == label
        assert texts(root, "bar-label") == [label]


def test_a_long_label_is_shortened_but_kept_whole_in_its_title() -> None:
    label = "a-task-type-with-a-very-long-name"
    root = parsed(bar_chart("t", [(label, 1.0)]))
    [shown] = texts(root, "bar-label")
    assert shown.endswith("…") and label.startswith(shown[:-1]) and len(shown) < len(label)
    [row] = root.iter(NS + "g")
    assert title_of(row) == f"{label}: 1"


@pytest.mark.parametrize("chart", [bar_chart, column_chart])
def test_no_data(chart: Callable[[str, list[Any]], str]) -> None:
    root = parsed(chart("t", []))
    assert of_class(root, "bar") == [] and texts(root, "bar-label") == ["no data"]


@pytest.mark.parametrize(
    ("count", "labels"),
    [
        (1, ["0"]),
        (12, [str(i) for i in range(12)]),
        (13, [str(i) for i in range(0, 13, 2)]),
        (24, [str(i) for i in range(0, 24, 2)]),
        (168, [str(i) for i in range(0, 168, 14)]),
    ],
)
def test_column_labels_are_thinned_to_about_twelve(count: int, labels: list[str]) -> None:
    root = parsed(column_chart("t", [(str(i), i) for i in range(count)]))
    assert len(of_class(root, "bar")) == count
    assert texts(root, "bar-label") == labels


def test_columns_are_proportional_with_the_maximum_on_the_axis_and_each_value_in_a_title() -> None:
    root = parsed(column_chart("t", [("00:00", 4), ("01:00", 0), ("02:00", 2)], unit="tasks"))
    columns = of_class(root, "bar")
    heights = [float(c.get("height", "nan")) for c in columns]
    assert heights[0] > 0 and heights[1] == 0 and heights[2] == heights[0] / 2
    assert [float(c.get("y", "nan")) + h for c, h in zip(columns, heights, strict=True)] == [heights[0] + 24] * 3
    assert [title_of(c) for c in columns] == ["00:00: 4 tasks", "01:00: 0 tasks", "02:00: 2 tasks"]
    assert texts(root, "axis") == ["4 tasks"]


@pytest.mark.parametrize(
    ("value", "text"),
    [(0.975, "97.5%"), (1.0, "100%"), (0.0, "0%"), (1 / 3, "33.3%"), (0.99999, "100%")],
)
def test_percent(value: float, text: str) -> None:
    assert percent(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.0, "0 ms"), (0.85, "850 ms"), (0.9999, "1.0 s"), (12.34, "12.3 s"), (59.97, "1 m 00 s"),
        (245.0, "4 m 05 s"), (3599.6, "1 h 00 m"), (7380.0, "2 h 03 m"), (90000.0, "25 h 00 m"),
    ],
)  # fmt: skip
def test_seconds(value: float, text: str) -> None:
    assert seconds(value) == text
