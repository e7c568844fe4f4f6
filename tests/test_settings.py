"""Settings: defaults carry sources, the written file round-trips, errors name the field."""

from __future__ import annotations

import pytest

from sanigrid.layers._errors import SettingsError
from sanigrid.layers.settings import Settings, load_settings, save_settings


def test_written_file_round_trips_with_comments(tmp_path):
    path = tmp_path / "sanigrid.toml"
    s = Settings()
    s.facilities["toilets"].radius_m = 250
    save_settings(s, path)
    text = path.read_text(encoding="utf-8")
    assert "# line ends closer than this are joined" in text
    assert load_settings(path) == s


def test_every_facility_preset_has_a_source():
    for kind, preset in Settings().facilities.items():
        assert preset.source and preset.radius_m > 0, kind
    assert Settings().facilities["toilets"].radius_m == 300  # GB 55013-2021 §5.0.1


def test_bad_value_names_file_and_field(tmp_path):
    path = tmp_path / "sanigrid.toml"
    path.write_text('[facilities.toilets]\nradius_m = -5\nsource = "x"\n', encoding="utf-8")
    with pytest.raises(SettingsError, match=r"facilities\.toilets\.radius_m"):
        load_settings(path)


def test_duplicate_problem_category_refused(tmp_path):
    path = tmp_path / "sanigrid.toml"
    path.write_text('[[problems.categories]]\nname = "暴露垃圾"\n[[problems.categories]]\nname = "暴露垃圾"\n',
                    encoding="utf-8")
    with pytest.raises(SettingsError, match="暴露垃圾"):
        load_settings(path)


def test_unknown_key_refused(tmp_path):
    path = tmp_path / "sanigrid.toml"
    path.write_text("[network]\nsnap_tolerence_m = 2\n", encoding="utf-8")
    with pytest.raises(SettingsError, match="snap_tolerence_m"):
        load_settings(path)
