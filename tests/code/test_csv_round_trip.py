"""Every CSV forgetflow writes goes through the csv module: any printable id survives a write
and a read (the exclusion manifest is what keeps forgotten rows out of every later version)."""

from __future__ import annotations

import io

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from forgetflow.adapters.datarepo import Exclusions
from forgetflow.core.data.manifest import Manifest

# printable text: letters of any script, punctuation (commas, quotes), spaces; no controls
printable = st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=40)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(printable, printable, printable, printable), max_size=20))
def test_exclusions_round_trip_any_printable_ids(rows):
    text = Exclusions(rows).to_csv()
    assert Exclusions.from_csv(text).rows == rows
    assert Exclusions.from_csv(text).ids == {r[0] for r in rows}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(printable, st.integers(0, 999), printable), min_size=1, max_size=20))
def test_manifest_round_trip_any_printable_ids(rows):
    ids, labels, subjects = (np.asarray(c, dtype=object) for c in zip(*rows, strict=True))
    manifest = Manifest(ids, labels.astype(np.int64), np.full(len(rows), "train", dtype=object),
                        subjects)
    out = io.StringIO()
    manifest.write_csv_to(out)
    back = Manifest.read_csv(io.StringIO(out.getvalue(), newline=""))
    assert back.ids.tolist() == ids.tolist() and back.subject.tolist() == subjects.tolist()
    assert back.labels.tolist() == labels.tolist() and back.digest() == manifest.digest()


def test_exclusions_written_before_the_csv_module_still_read():
    old = "id,request_id,batch_id,data_version\nfashion-mnist:train:3,7,b-1,v2\n"
    assert Exclusions.from_csv(old).rows == [("fashion-mnist:train:3", "7", "b-1", "v2")]
