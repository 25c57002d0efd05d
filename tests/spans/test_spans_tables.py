"""The per-slot-type table, the plot of slot-type frequency per split, and the manifest's `entities` entry (chapter 1a)."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pandas as pd

from ainative.spans import Span, bio_tags, entity_statistics, plot_slot_types, slot_type_table


def frame(rows: list[tuple[str, str | None, list[Span]]]) -> pd.DataFrame:
    return pd.DataFrame({"text": [r[0] for r in rows], "label": [r[1] for r in rows], "entities": [r[2] for r in rows]})


SPLITS = {
    "train": frame([("to boston", "travel", [Span(3, 9, "city")]), ("to paris", "travel", [Span(3, 8, "city")]),
                    ("rate it 5", "rate", [Span(8, 9, "rating")]), ("boston weather", "weather", [Span(0, 6, "city")])]),
    "validation": frame([("to lima", "travel", [Span(3, 7, "city")])]),
    "test": frame([("at noon", "weather", [Span(3, 7, "time")]), ("hello", "chitchat", [])]),
}


def test_table_counts_types_per_split_with_values_and_intents():
    table = slot_type_table(SPLITS)
    assert list(table.index) == ["city", "rating", "time"]  # most frequent in train first
    assert table.loc["city", ["train", "validation", "test"]].tolist() == [3, 1, 0]
    assert table.loc["time", ["train", "validation", "test"]].tolist() == [0, 0, 1]
    assert table.loc["city", "distinct values (train)"] == 2  # "boston" twice
    assert table.loc["city", "intents (train)"] == "travel, weather"
    assert table.index.name == "slot type"


def test_table_of_ner_only_data_has_no_intents():
    table = slot_type_table({"train": frame([("to boston", None, [Span(3, 9, "city")])])})
    assert table.loc["city", "intents (train)"] == ""


def test_plot_has_a_bar_per_type_and_split():
    figure = plot_slot_types(SPLITS)
    axes = figure.axes[0]
    assert axes.get_title().startswith("Entity types") and axes.get_xlabel() == "% of the split's spans"
    assert [label.get_text() for label in axes.get_yticklabels()] == ["time", "rating", "city"]  # most frequent on top
    assert len(axes.patches) == 3 * 3
    assert [text.get_text() for text in axes.get_legend().get_texts()] == ["train (4 spans)", "validation (1 spans)", "test (1 spans)"]


def test_manifest_entry():
    statistics = entity_statistics(SPLITS, {"train": 1, "test": 0})
    assert statistics["slot_labels"] == ["city", "rating"] and "O" not in statistics["slot_labels"]
    assert bio_tags(statistics["slot_labels"]) == ["O", "B-city", "I-city", "B-rating", "I-rating"]
    assert statistics["span_counts"]["train"] == {"city": 3, "rating": 1}
    assert statistics["unseen_slot_labels"] == {"test": ["time"]}
    assert statistics["repaired_tags"] == {"total": 1, "train": 1, "test": 0}
