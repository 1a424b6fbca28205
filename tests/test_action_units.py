"""Action units in the schema and in the MERR adapter: validation, and MERR -> samples -> MERR round trips."""

from __future__ import annotations

import json

import pytest

from emoreason.action_units import AU_NAMES, normalize_au_code
from emoreason.data_prep.adapters.merr import merr_entry, read_merr_coarse, read_merr_fine
from emoreason.schema import SchemaError, load_samples, parse_sample, write_samples
from merr_entries import MERR_ANGRY_ENTRY

MERR = {
    "sample_00000047": MERR_ANGRY_ENTRY,
    "sample_00000048": {
        "AU_list": ["AU06", "AU12", "AU25"],
        "visual_prior_list": ["cheek raiser", "lip corner puller", "lips part"],
        "audio_prior_list": ["bright tone", "fast pace"],
        "peak_index": "0",
        "peak_AU_list": ["AU06", "AU12"],
        "pseu_emotion": "happy",
        "text": "We won!",
        "caption": "c",
    },
    "sample_00000049": {"pseu_emotion": "sad", "caption": "no AUs annotated"},
}
MERR_FIELDS = ("AU_list", "peak_AU_list", "peak_index", "visual_prior_list", "audio_prior_list", "pseu_emotion", "text")


def test_action_units_are_valid_schema():
    sample = parse_sample({"id": "a", "action_units": {"codes": ["AU04", "AU07"], "intensities": {"AU04": 2.5},
                                                        "peak_frame": 12, "peak_codes": ["AU04"]}})
    assert sample.action_units.intensities == {"AU04": 2.5}
    assert parse_sample(sample.to_json()) == sample


@pytest.mark.parametrize(("units", "field", "message"), [
    ({"codes": ["AU99"]}, "action_units.codes", "expected FACS action unit codes.*'AU99'"),
    ({"codes": ["smile"]}, "action_units.codes", "'smile'"),
    ({"codes": ["AU04"], "peak_codes": ["AU4"]}, "action_units.peak_codes", "'AU4'"),  # the schema takes canonical codes
    ({"codes": ["AU04", "AU04"]}, "action_units.codes", "each action unit once"),
    ({"codes": ["AU04"], "intensities": {"brow": 1.0}}, "action_units.intensities", "'brow'"),
    ({"codes": ["AU04"], "intensities": {"AU04": -1}}, "action_units.intensities", "intensity >= 0"),
    ({"codes": ["AU04"], "intensities": {"AU07": 1.0}}, "action_units", r"intensities for \['AU07'\]"),
    ({"codes": ["AU04"], "peak_frame": -1}, "action_units.peak_frame", "greater than or equal to 0"),
    ({"codes": ["AU04"], "peak_frame": "12"}, "action_units.peak_frame", "expected an integer"),
    ({}, "action_units.codes", "required field is missing"),
])
def test_bad_action_units_name_the_field(units, field, message):
    with pytest.raises(SchemaError, match=rf"x\.jsonl:3: field '{field}': .*{message}"):
        parse_sample({"id": "a", "action_units": units}, "x.jsonl", 3)


def test_normalize_au_code():
    assert [normalize_au_code(t) for t in ("AU4", "au04", "4", " AU12 ", "AU3", "AU99", "smile")] == [
        "AU04", "AU04", "AU04", "AU12", None, None, None]
    assert all(normalize_au_code(code) == code for code in AU_NAMES)


@pytest.mark.parametrize("reader", [read_merr_coarse, read_merr_fine])
def test_merr_round_trips_au_fields_and_priors(tmp_path, reader):
    path = tmp_path / "merr.json"
    path.write_text(json.dumps(MERR))
    samples = reader(path)
    write_samples(tmp_path / "samples.jsonl", samples)
    reloaded = load_samples(tmp_path / "samples.jsonl")
    assert reloaded == samples
    for sample in reloaded:
        original = {f: MERR[sample.id][f] for f in MERR_FIELDS if f in MERR[sample.id]}
        assert merr_entry(sample) == original, sample.id
    assert reloaded[0].action_units.peak_frame == 12 and reloaded[0].action_units.peak_codes == ["AU04"]
    assert reloaded[2].action_units is None


def test_merr_loose_au_spellings_become_canonical(tmp_path):
    path = tmp_path / "merr.json"
    path.write_text(json.dumps({"s": {"pseu_emotion": "sad", "AU_list": ["AU1", "au04", "AU15", "AU04"], "peak_index": 3}}))
    units = read_merr_coarse(path)[0].action_units
    assert units.codes == ["AU01", "AU04", "AU15"] and units.peak_frame == 3


@pytest.mark.parametrize(("entry", "field", "message"), [
    ({"AU_list": ["AU04", "frown"]}, "AU_list", "expected FACS action unit codes such as 'AU04', got 'frown'"),
    ({"AU_list": "AU04"}, "AU_list", "expected a list of action unit codes"),
    ({"peak_AU_list": ["AU77"]}, "peak_AU_list", "expected FACS action unit codes.*got 'AU77'"),
    ({"peak_index": "twelve"}, "peak_index", "expected a frame index >= 0"),
    ({"peak_index": -2}, "peak_index", "expected a frame index >= 0"),
])
def test_merr_bad_au_fields_name_entry_and_field(tmp_path, entry, field, message):
    path = tmp_path / "merr.json"
    path.write_text(json.dumps({"bad": {"pseu_emotion": "sad", **entry}}))
    with pytest.raises(SchemaError, match=rf"merr\.json: entry 'bad': field '{field}': {message}"):
        read_merr_coarse(path)
