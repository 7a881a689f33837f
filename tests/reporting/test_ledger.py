"""The confirmatory ledger (metadip.reporting.ledger): the first read of a set of photographs is
confirmatory, a repeat of the same read adds nothing, a read under another protocol or recipe is
exploratory, a malformed ledger is refused."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from metadip.core.errors import InputError
from metadip.reporting.ledger import COLUMNS, photographs_of, preamble, read_ledger, record_read

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def rows(photos=("a.jpg", "b.jpg"), dataset="fresh", commit="c0ffee"):
    return [
        {"dataset": dataset, "source_file": p, "git_commit": commit, "image_index": i} for i, p in enumerate(photos * 2)
    ]


def test_first_read_is_confirmatory_and_a_repeat_adds_nothing(tmp_path):
    ledger = tmp_path / "ledger.tsv"
    first = record_read(ledger, rows(), "p" * 64, "recipe1", "results/confirm/claims.json", now=NOW)
    assert first.label == "confirmatory" and first.photographs == 2 and first.datasets == "fresh"
    assert first.commits == "c0ffee" and first.date == "2026-12-05T12:00:00+00:00"
    again = record_read(ledger, rows(), "p" * 64, "recipe1", "results/confirm/claims.json")
    assert again == first and read_ledger(ledger) == [first]
    assert ledger.read_text().splitlines()[0].split("\t") == COLUMNS
    assert "Confirmatory read" in preamble(first)


@pytest.mark.parametrize("change", ["protocol", "recipe"])
def test_a_second_read_of_the_same_photographs_is_exploratory(tmp_path, change):
    ledger = tmp_path / "ledger.tsv"
    record_read(ledger, rows(), "p" * 64, "recipe1", "x.json", now=NOW)
    protocol, recipe = ("q" * 64, "recipe1") if change == "protocol" else ("p" * 64, "recipe2")
    second = record_read(ledger, rows(), protocol, recipe, "x.json", now=NOW)
    assert second.label == "exploratory" and "Exploratory read" in preamble(second)
    assert [e.label for e in read_ledger(ledger)] == ["confirmatory", "exploratory"]
    assert record_read(ledger, rows(), protocol, recipe, "x.json") == second  # its repeat adds nothing either
    assert len(read_ledger(ledger)) == 2


def test_other_photographs_are_a_new_confirmatory_read(tmp_path):
    ledger = tmp_path / "ledger.tsv"
    record_read(ledger, rows(), "p" * 64, "recipe1", "x.json", now=NOW)
    other = record_read(ledger, rows(photos=("c.jpg",)), "p" * 64, "recipe2", "y.json", now=NOW)
    assert other.label == "confirmatory" and len(read_ledger(ledger)) == 2


def test_photographs_are_named_by_dataset_and_file():
    assert photographs_of(rows() + rows(dataset="other")) == [
        "fresh/a.jpg",
        "fresh/b.jpg",
        "other/a.jpg",
        "other/b.jpg",
    ]


def test_a_malformed_ledger_is_refused(tmp_path):
    ledger = tmp_path / "ledger.tsv"
    ledger.write_text("date\tverdict\n2026\tholds\n")
    with pytest.raises(InputError, match="not a confirmatory ledger"):
        record_read(ledger, rows(), "p" * 64, "r", "x.json")
    assert ledger.read_text() == "date\tverdict\n2026\tholds\n"  # untouched
