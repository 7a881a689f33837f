"""The evaluation's images: interleaved across source photographs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from metadip.datasets.sampling import evaluation_indices, interleave_by_source


def test_round_robin_over_photographs():
    assert interleave_by_source(["a", "a", "b", "c", "b"]) == [0, 2, 3, 1, 4]
    assert interleave_by_source([]) == []


@given(st.lists(st.sampled_from("abcdef"), max_size=40), st.integers(1, 40))
def test_the_first_n_cover_as_many_photographs_as_possible(sources, n):
    order = interleave_by_source(sources)
    assert sorted(order) == list(range(len(sources)))  # a permutation
    first = order[:n]
    assert len({sources[i] for i in first}) == min(n, len(set(sources)))
    taken = {s: sum(sources[i] == s for i in first) for s in set(sources)}
    for s in taken:  # balanced: a photograph more than one crop behind another has none left
        if any(taken[t] > taken[s] + 1 for t in taken):
            assert taken[s] == sources.count(s)
    for s in set(sources):  # crops of one photograph keep their split order
        mine = [i for i in order if sources[i] == s]
        assert mine == sorted(mine)


def test_too_few_images_or_photographs_are_refused():
    with pytest.raises(ValueError, match=r"has 2 images, evaluate\.images asks for 3"):
        evaluation_indices(["a", "b"], 3)
    with pytest.raises(ValueError, match=r"from 2 source photographs, evaluate\.min_photos asks for 3"):
        evaluation_indices(["a", "a", "b", "b"], 4, min_photos=3)
    assert evaluation_indices(["a", "a", "b", "b"], 2, min_photos=2) == [0, 2]
