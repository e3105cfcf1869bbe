"""The base station's TOML: checked whole, errors name the file and the key."""

from __future__ import annotations

import pytest

from basestation.baseconfig import ConfigError, load

GOOD = """
[serve]
host = "0.0.0.0"
port = 8443
overlay = "/srv/overview.png"
overlay_bounds = [-4.0, -61.0, -3.0, -60.0]
public_url = "https://base.example:8443/"

[smtp]
host = "127.0.0.1"
port = 2525
sender = "nv-base@example.org"

[homeassistant]
enabled = true

[groups]
machinery = ["engine", "drilling", "chainsaw"]

[[rules]]
name = "mining"
labels = ["mining"]
min_score = 0.8
webhook = "http://127.0.0.1:9000/hook"

[[rules]]
name = "machines"
group = "machinery"
units = ["unit-7"]
email = ["ops@example.org"]
max_per_hour = 4

[[rules]]
name = "all-alerts"
mqtt_topic = "naturevision-alerts/all"
phases = ["start", "end"]
"""


def write(tmp_path, text: str):
    path = tmp_path / "base.toml"
    path.write_text(text)
    return path


def test_a_good_config_reads_whole(tmp_path):
    config = load(write(tmp_path, GOOD))
    assert (config.serve.host, config.serve.port, config.serve.overlay_bounds) == ("0.0.0.0", 8443, (-4.0, -61.0, -3.0, -60.0))
    assert [(r.name, r.channel) for r in config.rules] == [("mining", "webhook"), ("machines", "email"), ("all-alerts", "mqtt")]
    assert config.rules[1].labels == ("engine", "drilling", "chainsaw") and config.rules[1].max_per_hour == 4
    assert config.homeassistant.enabled and config.smtp.port == 2525


@pytest.mark.parametrize("change, message", [
    (("min_score = 0.8", "min_score = 'high'"), "rules[1].min_score: a number from 0 to 1, not 'high'"),
    (("min_score = 0.8", "min_scor = 0.8"), "rules[1].min_scor: unknown key"),
    (('group = "machinery"', 'group = "machines"'), "rules[2].group: no group 'machines' in [groups]"),
    (('webhook = "http://127.0.0.1:9000/hook"', 'webhook = "ftp://x"'), "rules[1].webhook: an http:// or https:// address"),
    (('webhook = "http://127.0.0.1:9000/hook"', ''), "rules[1]: give exactly one of webhook, email, mqtt_topic"),
    (('port = 8443', 'port = 0'), "serve.port: a whole number from 1 to 65535, not 0"),
    (('overlay_bounds = [-4.0, -61.0, -3.0, -60.0]', 'overlay_bounds = [-3.0, -61.0, -4.0, -60.0]'), "serve.overlay_bounds"),
    (('name = "machines"', 'name = "mining"'), "two rules are named 'mining'"),
    (('[smtp]\nhost = "127.0.0.1"\nport = 2525\nsender = "nv-base@example.org"\n', ''), "rules[2].email: e-mail needs an [smtp] section"),
    (('phases = ["start", "end"]', 'phases = ["begin"]'), "rules[3].phases"),
    (('enabled = true', 'enabled = "yes"'), "homeassistant.enabled: true or false"),
])
def test_errors_name_the_file_and_the_key(tmp_path, change, message):
    path = write(tmp_path, GOOD.replace(*change))
    with pytest.raises(ConfigError) as caught:
        load(path)
    assert str(caught.value).startswith(f"{path}: ") and message in str(caught.value)


def test_not_toml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not valid TOML"):
        load(write(tmp_path, "[serve\n"))
    with pytest.raises(ConfigError, match="cannot read"):
        load(tmp_path / "nope.toml")


def test_the_shipped_example_reads(tmp_path):
    from pathlib import Path

    example = Path(__file__).resolve().parents[2] / "systemd" / "base.example.toml"
    config = load(example)
    assert config.serve.port == 8080 and not config.homeassistant.enabled and config.rules == ()
    uncommented = "\n".join(line[2:] if line.startswith("# ") and "=" in line or line.startswith("# [") else line
                            for line in example.read_text().splitlines())
    full = load(write(tmp_path, uncommented))  # every commented key is a real one
    assert [r.name for r in full.rules] == ["mining-ops", "machines-by-mail", "all-alerts"]


def test_listen_and_config_check_name_the_bad_key(tmp_path):
    from test_cli import nv_base

    bad = write(tmp_path, GOOD.replace("min_score = 0.8", "min_score = 2"))
    proc = nv_base("listen", "--db", tmp_path / "b.db", "--config", bad, "--host", "127.0.0.1", "--port", "1")
    assert proc.returncode == 1 and f"{bad}: rules[1].min_score: a number from 0 to 1, not 2" in proc.stderr
    proc = nv_base("config", "check", bad)
    assert proc.returncode == 1 and "rules[1].min_score" in proc.stderr
    good = nv_base("config", "check", write(tmp_path, GOOD))
    assert good.returncode == 0 and "3 notification rule(s)" in good.stdout and "Home Assistant discovery: on" in good.stdout
