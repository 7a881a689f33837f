"""The confirmatory ledger (metadip.reporting.ledger): the first read of a set of photographs is
confirmatory, a repeat of the same read adds nothing, a read that shares a photograph with an earlier
entry under another protocol, recipe or code is exploratory, a malformed ledger is refused."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from metadip.core.errors import InputError
from metadip.reporting.ledger import COLUMNS, append_read, label_read, photographs_of, preamble, read_ledger

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def rows(photos=("a.jpg", "b.jpg"), dataset="fresh", commit="c0ffee"):
    return [
        {"dataset": dataset, "source_file": p, "git_commit": commit, "image_index": i} for i, p in enumerate(photos * 2)
    ]


def record(ledger, rs, protocol="p" * 64, recipe="recipe1", results="x.json"):
    """Label a read and append it when new, as the claims stage does."""
    read, new = label_read(ledger, rs, protocol, recipe, results, now=NOW)
    if new:
        append_read(ledger, read)
    return read


def test_first_read_is_confirmatory_and_a_repeat_adds_nothing(tmp_path):
    ledger = tmp_path / "ledger.tsv"
    first = record(ledger, rows(), results="results/confirm/claims.json")
    assert first.label == "confirmatory" and first.photographs == 2 and first.datasets == "fresh"
    assert first.commits == "c0ffee" and first.date == "2026-12-05T12:00:00+00:00"
    assert first.photograph_list == "fresh/a.jpg;fresh/b.jpg"
    again, new = label_read(ledger, rows(), "p" * 64, "recipe1", "results/confirm/claims.json")
    assert again == first and not new and read_ledger(ledger) == [first]
    assert ledger.read_text().splitlines()[0].split("\t") == COLUMNS
    assert "Confirmatory read" in preamble(first)


def test_nothing_is_written_until_the_read_is_appended(tmp_path):
    ledger = tmp_path / "ledger.tsv"
    read, new = label_read(ledger, rows(), "p" * 64, "recipe1", "x.json", now=NOW)
    assert new and read.label == "confirmatory" and not ledger.exists()


@pytest.mark.parametrize("change", ["protocol", "recipe", "code"])
def test_a_second_read_of_the_same_photographs_is_exploratory(tmp_path, change):
    ledger = tmp_path / "ledger.tsv"
    record(ledger, rows())
    kwargs = {"protocol": {"protocol": "q" * 64}, "recipe": {"recipe": "recipe2"}, "code": {}}[change]
    rs = rows(commit="beef") if change == "code" else rows()
    second = record(ledger, rs, **kwargs)
    assert second.label == "exploratory" and "Exploratory read" in preamble(second)
    assert [e.label for e in read_ledger(ledger)] == ["confirmatory", "exploratory"]
    assert record(ledger, rs, **kwargs) == second  # its repeat adds nothing either
    assert len(read_ledger(ledger)) == 2


def test_a_read_sharing_one_photograph_is_exploratory_and_others_are_new(tmp_path):
    ledger = tmp_path / "ledger.tsv"
    record(ledger, rows())
    fewer = record(ledger, rows(photos=("a.jpg",)), recipe="recipe2")  # a subset, e.g. fewer images per class
    assert fewer.label == "exploratory"
    other = record(ledger, rows(photos=("c.jpg",)), recipe="recipe2")
    assert other.label == "confirmatory" and len(read_ledger(ledger)) == 3


def test_photographs_are_named_by_dataset_and_file():
    names = photographs_of(rows() + rows(dataset="other"))
    assert names == ["fresh/a.jpg", "fresh/b.jpg", "other/a.jpg", "other/b.jpg"]


@pytest.mark.parametrize(
    "text, match",
    [
        ("date\tverdict\n2026\tholds\n", "not a confirmatory ledger"),
        ("\t".join(COLUMNS) + "\n2026\tconfirmed\t2\n", "line 2 is not a ledger entry"),
    ],
)
def test_a_malformed_ledger_is_refused_and_left_alone(tmp_path, text, match):
    ledger = tmp_path / "ledger.tsv"
    ledger.write_text(text)
    with pytest.raises(InputError, match=match):
        label_read(ledger, rows(), "p" * 64, "r", "x.json")
    assert ledger.read_text() == text  # untouched
