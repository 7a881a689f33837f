"""The claims protocol file (metadip.reporting.protocol): the shipped one parses, its hash names its
bytes, every number has a source, and a broken file is refused in one line."""

from __future__ import annotations

import hashlib

import pytest
import yaml
from workflow_helpers import ROOT

from metadip.core.errors import InputError
from metadip.reporting.protocol import load_protocol

SHIPPED = ROOT / "config" / "protocol.yaml"


def test_the_shipped_protocol():
    p = load_protocol(SHIPPED)
    assert p.sha256 == hashlib.sha256(SHIPPED.read_bytes()).hexdigest()
    ids = [c.id for c in p.checks]
    assert ids[:4] == ["1-quality", "1-quality-paper-gap", "1-quality-stopped", "1-speed"]
    assert {"2", "2-control", "3", "4"} <= set(ids)
    primary = {c.id: c for c in p.checks if c.reading == "primary"}
    # the paper's own words: within 1 dB of DIP(1000), the same bound in every setting
    assert primary["1-quality"].bound == -1.0 and primary["1-quality"].versus == "long"
    assert primary["1-speed"].statistic == "time_to_quality"
    assert primary["4"].versus == "transfer" and primary["2-control"].versus == "control"
    assert all(c.source.split(":")[0] in ("paper", "ours") for c in p.checks)
    assert p.interval == "cluster_t" and p.level == 0.95 and p.min_photos >= 2


def test_a_byte_changes_the_hash(tmp_path):
    other = tmp_path / "protocol.yaml"
    other.write_bytes(SHIPPED.read_bytes() + b"\n# a comment\n")
    assert load_protocol(other).sha256 != load_protocol(SHIPPED).sha256


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda d: d["checks"]["1-quality"].update(bound="half"), "checks/1-quality/bound"),
        (lambda d: d["checks"]["1-quality"].pop("source"), "'source' is a required property"),
        (lambda d: d["checks"]["2"].update(versus="nobody"), "checks/2/versus"),
        (lambda d: d["inference"].update(min_photos=1), "inference/min_photos"),
        (lambda d: d["checks"]["1-quality-paper-gap"].pop("slack_db"), "paper_gap needs statistic psnr, versus long"),
        (
            lambda d: d["checks"]["1-quality-paper-gap"].update(versus="short"),
            "paper_gap needs statistic psnr, versus long",
        ),
        (lambda d: d["checks"]["2"].update(text="{method} beats {rival}"), "its text uses an unknown field"),
    ],
)
def test_a_broken_protocol_is_refused_in_one_line(tmp_path, edit, match):
    doc = yaml.safe_load(SHIPPED.read_text())
    edit(doc)
    path = tmp_path / "protocol.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(InputError, match=match) as err:
        load_protocol(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_a_repeated_check_id_is_refused(tmp_path):
    path = tmp_path / "protocol.yaml"
    text = SHIPPED.read_text()
    path.write_text(text + '  "3":\n' + text.split('  "3":\n')[1].split('  "4":')[0])
    with pytest.raises(InputError, match="not a valid claims protocol"):
        load_protocol(path)


def test_a_missing_protocol_is_named(tmp_path):
    with pytest.raises(InputError, match="cannot read the claims protocol"):
        load_protocol(tmp_path / "none.yaml")
