"""styx.app.engine: STYX_PULUMI_LOG (Pulumi's automatic log off by default for the pulumi processes styx
starts: a PULUMI_HOME view whose `logs` is a file; `on` leaves PULUMI_HOME as it is), a bad value names
the variable and the allowed values."""

from __future__ import annotations

import os

import pytest

from styx.app import engine as eng


@pytest.fixture
def homes(tmp_path, monkeypatch):
    home = tmp_path / "pulumi"
    (home / "plugins" / "resource-command-v1.2.1").mkdir(parents=True)
    (home / "logs").mkdir()
    (home / "logs" / "old.log").write_text("x")
    (home / "credentials.json").write_text("{}")
    monkeypatch.setenv("STYX_HOME", str(tmp_path / "styx"))
    monkeypatch.setenv("PULUMI_HOME", str(home))
    monkeypatch.delenv("STYX_PULUMI_LOG", raising=False)
    return home


def test_off_by_default_a_view_of_pulumi_home_without_its_log_folder(homes):
    assert eng.pulumi_log_mode() == "off"
    view = eng.process_pulumi_home()
    assert view != homes and view.parent == eng.styx_home() / "pulumi-nolog"
    assert (view / "logs").is_file() and "STYX_PULUMI_LOG=on" in (view / "logs").read_text()
    for name in ("plugins", "workspaces", "credentials.json"):
        assert (view / name).is_symlink() and (view / name).resolve() == (homes / name).resolve()
    assert (view / "plugins" / "resource-command-v1.2.1").is_dir()  # the plugins are found through it
    assert eng.engine_env("p")["PULUMI_HOME"] == str(view)
    assert (homes / "logs" / "old.log").exists()  # the real home is left as it is


def test_the_view_is_made_again_idempotently_and_follows_the_home(homes):
    view = eng.process_pulumi_home()
    before = sorted((p.name, os.readlink(p) if p.is_symlink() else "file") for p in view.iterdir())
    assert eng.process_pulumi_home() == view
    assert sorted((p.name, os.readlink(p) if p.is_symlink() else "file") for p in view.iterdir()) == before
    (homes / "policies").mkdir()  # added to the home later: linked at the next call
    assert (eng.process_pulumi_home() / "policies").is_symlink()
    (view / "logs").unlink()
    (view / "logs").mkdir()  # a log folder a pulumi process made between two calls
    (view / "logs" / "x.log").write_text("x")
    assert (eng.process_pulumi_home() / "logs").is_file()


def test_another_pulumi_home_gets_its_own_view(homes, tmp_path, monkeypatch):
    a = eng.process_pulumi_home()
    monkeypatch.setenv("PULUMI_HOME", str(tmp_path / "other"))
    b = eng.process_pulumi_home()
    assert a != b and (tmp_path / "other" / "plugins").is_dir()


@pytest.mark.parametrize("value", ["on", "ON", " on "])
def test_on_runs_pulumi_with_its_home_and_its_log(homes, monkeypatch, value):
    monkeypatch.setenv("STYX_PULUMI_LOG", value)
    assert eng.process_pulumi_home() == homes
    assert eng.engine_env("p")["PULUMI_HOME"] == str(homes)
    assert not (eng.styx_home() / "pulumi-nolog").exists()


def test_a_bad_value_names_the_variable_and_the_allowed_values(homes, monkeypatch):
    monkeypatch.setenv("STYX_PULUMI_LOG", "quiet")
    with pytest.raises(ValueError, match=r"STYX_PULUMI_LOG='quiet': allowed values are off, on"):
        eng.engine_env("p")
