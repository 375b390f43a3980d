"""Service configuration: defaults < TOML file < environment < flags; typos and bad values are errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.config import ServiceConfig, load_config


def test_defaults_and_data_dir_under_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACECOMPARE_HOME", str(tmp_path))
    monkeypatch.delenv("FACECOMPARE_DATA", raising=False)
    config = load_config(env={})
    assert config == ServiceConfig(data_dir=tmp_path / "data")
    assert (config.host, config.port, config.backend) == ("127.0.0.1", 8080, "onnxruntime")
    monkeypatch.setenv("FACECOMPARE_DATA", str(tmp_path / "elsewhere"))
    assert load_config(env={}).data_dir == tmp_path / "elsewhere"


def test_file_then_environment_then_flags(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[service]\nport = 9000\nmax_batch = 8\nclient_allowlist = ["10.0.0.0/8"]\n'
                    'max_wait_ms = 5\n')
    env = {"FACECOMPARE_PORT": "9100", "FACECOMPARE_CALLBACK_ALLOWLIST": "192.168.0.0/16, 10.1.0.0/16",
           "FACECOMPARE_DATA": str(tmp_path / "d")}
    config = load_config(path, env=env, overrides={"port": 9200, "host": None})
    assert config.port == 9200 and config.max_batch == 8 and config.max_wait_ms == 5.0
    assert config.client_allowlist == ("10.0.0.0/8",)
    assert config.callback_allowlist == ("192.168.0.0/16", "10.1.0.0/16")
    assert config.data_dir == tmp_path / "d" and config.host == "127.0.0.1"
    assert load_config(path, env={"FACECOMPARE_CONFIG": "/nonexistent"}).port == 9000
    env_file = tmp_path / "env.toml"
    env_file.write_text("workers = 2\n")
    assert load_config(env={"FACECOMPARE_CONFIG": str(env_file)}).workers == 2


@pytest.mark.parametrize("text", ["prot = 1\n", "port = 'eighty'\n", "max_batch = 0\n", "workers = true\n",
                                  "callback_base_delay = 0\n", "photos_at_once = 'sometimes'\n"])
def test_typos_and_bad_values_are_errors(tmp_path: Path, text: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(ValueError):
        load_config(path, env={})


def test_bad_environment_value_names_the_key() -> None:
    with pytest.raises(ValueError, match="queue_size"):
        load_config(env={"FACECOMPARE_QUEUE_SIZE": "lots"})


def test_photos_at_once_is_a_switch_for_the_pipeline(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("photos_at_once = false\n")
    assert ServiceConfig().pipeline_config().photos_at_once is True
    assert load_config(path, env={}).pipeline_config().photos_at_once is False
    assert load_config(path, env={"FACECOMPARE_PHOTOS_AT_ONCE": "on"}).pipeline_config().photos_at_once is True
    assert load_config(env={"FACECOMPARE_PHOTOS_AT_ONCE": "0"}).photos_at_once is False
    with pytest.raises(ValueError, match="photos_at_once"):
        load_config(env={"FACECOMPARE_PHOTOS_AT_ONCE": "sometimes"})
