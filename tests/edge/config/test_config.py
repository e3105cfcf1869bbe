"""edge/config/ and `nv-edge config check`: the example file with its paths moved to a temp folder,
real model bundles (the shipped one, and an audio bundle made from it), real certificates and key files."""

from __future__ import annotations

import dataclasses
import importlib.util
import os
from pathlib import Path
from string import Template

import pytest
from broker import make_pki

from edge.cli import main as cli
from edge.config import (ConfigError, FolderSource, HttpSource, MicrophoneSource, broker_settings, load_config,
                         outbox_limits, publisher_options)
from edge.decisions.events import EventRules
from edge.delivery.outbox import OutboxLimits
from edge.model.bundle import read_bundle, write_bundle

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "systemd" / "edge.example.toml"
SHIPPED = ROOT / "models" / "mining-s2" / "mining-s2.nvm"
SHIPPED_AUDIO = ROOT / "models" / "mining-audio" / "mining-audio.nvm"
DEVICE = "unit-07"


@dataclasses.dataclass(frozen=True)
class Site:
    """What a field unit's disk holds: /etc/naturevision, the models, the watched folders, the state dir."""

    dir: Path
    etc: Path
    image_model: Path
    audio_model: Path
    incoming: Path
    done: Path
    state: Path

    def write(self, text: str, name: str = "edge.toml") -> Path:
        """A config from a template: $etc, $image_model, $audio_model, $incoming, $done and $state."""
        path = self.dir / name
        path.write_text(Template(text).substitute(
            etc=self.etc, image_model=self.image_model, audio_model=self.audio_model,
            incoming=self.incoming, done=self.done, state=self.state))
        return path

    def example(self) -> Path:
        """The shipped example with its absolute paths moved here, nothing else changed."""
        text = EXAMPLE.read_text()
        for old, new in (("/opt/naturevision/models/mining-s2/mining-s2.nvm", self.image_model),
                         ("/opt/naturevision/models/mining-audio/mining-audio.nvm", self.audio_model),
                         ("/etc/naturevision", self.etc), ("/srv/naturevision/incoming", self.incoming),
                         ("/srv/naturevision/done", self.done), ("/var/lib/naturevision", self.state)):
            assert old in text, f"the example no longer names {old}"
            text = text.replace(old, str(new))
        path = self.dir / "edge.toml"
        path.write_text(text)
        return path


def audio_bundle(path: Path) -> Path:
    """The shipped audio model with alert labels of its own (chainsaw, engine): the config is checked
    against its real tensors, as the service would load it."""
    bundle = read_bundle(SHIPPED_AUDIO)
    manifest = dataclasses.replace(bundle.manifest, alert_labels=("chainsaw", "engine"), groups=None, events=None,
                                   thresholds={"chainsaw": 0.6, "engine": 0.65})
    write_bundle(path, bundle.model_bytes, manifest)
    return path


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    pki = make_pki(tmp_path_factory.mktemp("pki"), [DEVICE])
    models = tmp_path_factory.mktemp("models")
    return pki, audio_bundle(models / "mining-audio.nvm")


@pytest.fixture
def site(shared, tmp_path) -> Site:
    pki, audio_model = shared
    etc = tmp_path / "etc"
    etc.mkdir()
    cert, key = pki.clients[DEVICE]
    for name, source in (("ca.crt", pki.ca), (f"{DEVICE}.crt", cert), (f"{DEVICE}.key", key)):
        (etc / name).write_bytes(source.read_bytes())
    (etc / "mqtt.password").write_text("s3cret-mqtt\n")
    (etc / "camera.password").write_text("s3cret-camera\n")
    for folder in ("incoming", "done", "state"):
        (tmp_path / folder).mkdir()
    return Site(tmp_path, etc, SHIPPED, audio_model, tmp_path / "incoming", tmp_path / "done", tmp_path / "state")


# -- the example ---------------------------------------------------------------------------------------

def test_the_example_loads_with_every_section(site):
    cfg = load_config(site.example())
    assert cfg.device.id == DEVICE and cfg.device.state_dir == site.state
    assert (cfg.device.location.lat, cfg.device.location.lon, cfg.device.location.alt_m) == (-3.4653, -62.2159, 80.0)
    image = cfg.image
    assert image.manifest.name == "mining-s2" and image.model == SHIPPED
    assert image.resolved_thresholds() == {"mining": 0.8}
    assert image.tile is None and image.overlap == 0.25 and image.threads == 2 and image.thumbnails is True
    folder, http = image.sources
    assert folder == FolderSource(path=site.incoming, settle_s=2.0, poll_s=1.0, after="move", done_dir=site.done)
    assert isinstance(http, HttpSource) and http.username == "viewer" and http.password() == "s3cret-camera"
    assert "s3cret" not in repr(cfg)  # secrets stay in their files
    assert image.events == EventRules(k=1, n=1, hysteresis=0.05, cooldown_s=0, max_gap_s=None)  # frames: no gap limit unless given
    audio = cfg.audio
    assert audio.manifest.task == "audio" and audio.source == MicrophoneSource(device="USB")
    assert audio.resolved_thresholds() == {"chainsaw": 0.6, "engine": 0.65}, "the example leaves the model's"
    assert audio.events == EventRules(k=2, n=3, hysteresis=0.1, cooldown_s=30, update_s=600, max_gap_s=5)
    assert audio.per_window is False
    assert cfg.outbox.path == site.state / "outbox.db"
    assert outbox_limits(cfg).max_bytes == 512 * 2**20
    assert cfg.mqtt.host == "base.example" and cfg.mqtt.port == 8883 and cfg.mqtt.tls.ca == site.etc / "ca.crt"


def test_broker_settings_name_the_unit_by_its_device_id_and_read_the_password_file(site):
    cfg = load_config(site.example())
    settings = broker_settings(cfg)
    assert (settings.username, settings.client_id, settings.password) == (DEVICE, f"nv-edge-{DEVICE}", "s3cret-mqtt")
    assert (settings.cafile, settings.certfile, settings.keyfile) == (
        site.etc / "ca.crt", site.etc / f"{DEVICE}.crt", site.etc / f"{DEVICE}.key")
    assert settings.address == "base.example:8883" and settings.keepalive == 60 and settings.v5
    options = publisher_options(cfg)
    assert options.device == DEVICE and options.confirm == "receipt" and options.heartbeat_s == 60.0
    assert [m["name"] for m in options.models] == ["mining-s2", "mining-audio"]
    assert options.models[0]["sha256"] == read_bundle(SHIPPED).manifest.model_sha256


def test_config_check_prints_ok_and_what_would_run(site, capsys):
    path = site.example()
    assert cli.main(["config", "check", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"OK: {path}\n")
    for expected in ("unit-07", "mining-s2", "mining 0.8", f"folder {site.incoming}", "http://192.168.1.64",
                     "microphone USB", "base.example:8883 (TLS + client certificate)", str(site.state / "outbox.db")):
        assert expected in out


def test_config_check_prints_the_error_and_exits_1(site, capsys):
    path = site.write('[device]\nid = "Unit 7"\n')
    assert cli.main(["config", "check", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"{path}: [device.id]: 'Unit 7' cannot be a device id" in err


# -- defaults and paths ----------------------------------------------------------------------------------

def test_only_the_device_id_is_required_and_the_rest_defaults(site):
    cfg = load_config(site.write('[device]\nid = "unit-07"\n'))
    assert (cfg.image, cfg.audio, cfg.mqtt) == (None, None, None)
    assert cfg.device.state_dir == Path("/var/lib/naturevision") and cfg.device.location is None
    assert cfg.outbox.path == Path("/var/lib/naturevision/outbox.db")
    assert outbox_limits(cfg) == OutboxLimits()
    with pytest.raises(ConfigError, match=r"\[mqtt\]: no such section"):
        broker_settings(cfg)


def test_section_defaults(site):
    cfg = load_config(site.write('''
[device]
id = "unit-07"
[image]
model = "$image_model"
[[image.sources]]
type = "folder"
path = "$incoming"
[audio]
model = "$audio_model"
[audio.source]
type = "files"
path = "$incoming"
[mqtt]
host = "base.local"
'''))
    assert (cfg.image.tile, cfg.image.overlap, cfg.image.backend, cfg.image.threads, cfg.image.thumbnails,
            cfg.image.events, cfg.image.thresholds) == (None, 0.25, None, None, False, None, {})
    assert cfg.image.resolved_thresholds() == {"mining": read_bundle(SHIPPED).manifest.thresholds["mining"]}
    assert cfg.image.sources == (FolderSource(path=site.incoming),)
    assert (cfg.audio.hop_s, cfg.audio.rms_gate_dbfs, cfg.audio.per_window) == (0.5, -60.0, False)
    assert cfg.audio.events == EventRules()  # audio always goes through events
    assert cfg.audio.source == FolderSource(path=site.incoming)
    m = cfg.mqtt
    assert (m.port, m.tls, m.password_file, m.protocol, m.confirm) == (1883, None, None, "5", "receipt")
    settings = broker_settings(cfg)
    assert settings.password is None and settings.cafile is None and settings.username == DEVICE


def test_relative_paths_resolve_against_the_config_folder_and_the_outbox_against_the_state_dir(site):
    (site.dir / "models").mkdir()
    (site.dir / "models" / "m.nvm").write_bytes(SHIPPED.read_bytes())
    (site.dir / "inbox").mkdir()
    (site.dir / "mqtt.pw").write_text("pw")
    cfg = load_config(site.write('''
[device]
id = "unit-07"
state_dir = "state"
[image]
model = "models/m.nvm"
[[image.sources]]
type = "folder"
path = "inbox"
[outbox]
path = "queue/out.db"
[mqtt]
host = "base.local"
password_file = "mqtt.pw"
'''))
    assert cfg.device.state_dir == site.dir / "state"
    assert cfg.image.model == site.dir / "models" / "m.nvm"
    assert cfg.image.sources[0].path == site.dir / "inbox"
    assert cfg.outbox.path == site.dir / "state" / "queue" / "out.db"
    assert broker_settings(cfg).password == "pw"


# -- errors: each names the file and the key -----------------------------------------------------------

HEAD = '[device]\nid = "unit-07"\nstate_dir = "$state"\n'
IMAGE = HEAD + '[image]\nmodel = "$image_model"\n'
FOLDER = '[[image.sources]]\ntype = "folder"\npath = "$incoming"\n'
AUDIO = HEAD + '[audio]\nmodel = "$audio_model"\n'
MQTT = HEAD + '[mqtt]\nhost = "base.local"\n'
TLS = MQTT + '[mqtt.tls]\nca = "$etc/ca.crt"\n'

ERRORS = {
    # unknown keys, at every level
    "unknown section": (HEAD + "[camera]\nx = 1\n", "[camera]: unknown section 'camera'; expected one of: device, image"),
    "unknown device key": (HEAD + "name = 'x'\n", "[device]: unknown key 'name'; expected one of: id, state_dir, location"),
    "unknown location key": (HEAD + "location = { lat = 1, lon = 2, height = 3 }\n", "[device.location]: unknown key 'height'"),
    "unknown image key": (IMAGE + "tiles = 2\n" + FOLDER, "[image]: unknown key 'tiles'; expected one of: sources, model, models, tile"),
    "unknown source key": (IMAGE + FOLDER + "settle = 2\n",
                           "[image.sources[1]]: unknown key 'settle'; expected one of: type, path, settle_s, poll_s, after, done_dir"),
    "unknown key in the second source": (IMAGE + FOLDER + '[[image.sources]]\ntype = "http"\nurl = "http://cam/x"\nuser = "a"\n',
                                         "[image.sources[2]]: unknown key 'user'"),
    "unknown events key": (IMAGE + "events = { k = 1, m = 2 }\n" + FOLDER, "[image.events]: unknown key(s) 'm'; known keys: k, n"),
    "unknown audio key": (AUDIO + "hop = 1\n[audio.source]\ntype = 'microphone'\n", "[audio]: unknown key 'hop'"),
    "unknown audio source key": (AUDIO + "[audio.source]\ntype = 'microphone'\nrate = 16000\n", "[audio.source]: unknown key 'rate'"),
    "unknown outbox key": (HEAD + "[outbox]\nmax_gb = 1\n", "[outbox]: unknown key 'max_gb'"),
    "unknown mqtt key": (MQTT + "user = 'x'\n", "[mqtt]: unknown key 'user'"),
    "unknown tls key": (TLS + "cafile = 'x'\n", "[mqtt.tls]: unknown key 'cafile'"),
    # wrong types
    "device id not a string": ("[device]\nid = 7\n", "[device.id]: got an integer 7; expected a non-empty string"),
    "bad device id": ('[device]\nid = "unit/7"\n', "[device.id]: 'unit/7' cannot be a device id"),
    "overlap not a number": (IMAGE + "overlap = 'a'\n" + FOLDER, "[image.overlap]: got a string 'a'; expected a number from 0 to 0.9"),
    "thumbnails not a bool": (IMAGE + "thumbnails = 'yes'\n" + FOLDER, "[image.thumbnails]: got a string 'yes'; expected true or false"),
    "port not a whole number": (MQTT + "port = 1.5\n", "[mqtt.port]: got a number 1.5; expected a whole number from 1 to 65535"),
    "sources not tables": (IMAGE + "sources = ['a']\n", "[image.sources]: got an array; expected one or more [[image.sources]] tables"),
    "location not a table": (HEAD + "location = 'here'\n", "[device.location]: got a string 'here'; expected a table"),
    "bad source type": (IMAGE + '[[image.sources]]\ntype = "rtsp"\n', "[image.sources[1].type]: got a string 'rtsp'; expected one of: folder, http, picamera2"),
    "bad backend": (IMAGE + "backend = 'gpu'\n" + FOLDER, "[image.backend]: got a string 'gpu'; expected one of: litert, tflite-runtime, tensorflow"),
    "bad url": (IMAGE + '[[image.sources]]\ntype = "http"\nurl = "rtsp://cam/1"\n', "[image.sources[1].url]: 'rtsp://cam/1' is not an http(s) URL"),
    # out of range
    "overlap too large": (IMAGE + "overlap = 0.95\n" + FOLDER, "[image.overlap]: 0.95 is out of range; expected a number from 0 to 0.9"),
    "latitude": (HEAD + "location = { lat = 91, lon = 2 }\n", "[device.location.lat]: 91 is out of range; expected a number from -90 to 90"),
    "port too large": (MQTT + "port = 70000\n", "[mqtt.port]: 70000 is out of range"),
    "negative tile": (IMAGE + "tile = -1\n" + FOLDER, "[image.tile]: -1 is out of range; expected a whole number >= 0"),
    "threshold above 1": (IMAGE + "thresholds = { mining = 1.5 }\n" + FOLDER, "[image.thresholds.mining]: 1.5 is out of range"),
    "k more than n": (IMAGE + "events = { k = 3, n = 2 }\n" + FOLDER, "[image.events]: k (3) must not exceed n (2)"),
    "threads zero": (AUDIO + "threads = 0\n[audio.source]\ntype = 'microphone'\n", "[audio.threads]: 0 is out of range"),
    "rms gate above 0 dBFS": (AUDIO + "rms_gate_dbfs = 3\n[audio.source]\ntype = 'microphone'\n", "[audio.rms_gate_dbfs]: 3 is out of range"),
    "timeout longer than interval": (IMAGE + '[[image.sources]]\ntype = "http"\nurl = "http://cam/x"\ninterval_s = 5\ntimeout_s = 10\n',
                                     "[image.sources[1].timeout_s]: 10.0 s is longer than interval_s 5.0 s"),
    # missing required keys
    "no device section": ('[mqtt]\nhost = "x"\n', "[device]: missing; expected device in the top level"),
    "no device id": ("[device]\nstate_dir = '/tmp'\n", "[device.id]: missing; expected id in [device]"),
    "no image model": (HEAD + "[image]\n" + FOLDER, "[image.model]: missing; expected model = \"PATH.nvm\" for one image model"),
    "no image sources": (IMAGE, "[image.sources]: missing; expected sources in [image]"),
    "no source type": (IMAGE + '[[image.sources]]\npath = "$incoming"\n', "[image.sources[1].type]: missing"),
    "no folder path": (IMAGE + '[[image.sources]]\ntype = "folder"\n', "[image.sources[1].path]: missing"),
    "move without done_dir": (IMAGE + FOLDER + 'after = "move"\n', "[image.sources[1].done_dir]: missing (after = \"move\")"),
    "done_dir without move": (IMAGE + FOLDER + 'done_dir = "$done"\n', "[image.sources[1].done_dir]: given but after = 'keep' moves nothing"),
    "no audio source": (AUDIO, "[audio.source]: missing; expected source in [audio]"),
    "no mqtt host": (HEAD + "[mqtt]\nport = 1883\n", "[mqtt.host]: missing"),
    "no tls ca": (MQTT + "[mqtt.tls]\ncert = '$etc/unit-07.crt'\n", "[mqtt.tls.ca]: missing"),
    "cert without key": (TLS + "cert = '$etc/unit-07.crt'\n", "[mqtt.tls]: cert and key must be given together"),
    "username without password": (IMAGE + '[[image.sources]]\ntype = "http"\nurl = "http://cam/x"\nusername = "a"\n',
                                  "[image.sources[1]]: username and password_file must be given together"),
    # missing or unusable files
    "missing model": (HEAD + '[image]\nmodel = "$etc/none.nvm"\n' + FOLDER, "[image.model]: $etc/none.nvm: no such file"),
    "not a bundle": (HEAD + '[image]\nmodel = "$etc/ca.crt"\n' + FOLDER, "[image.model]: $etc/ca.crt: not a model bundle"),
    "missing CA": (MQTT + "tls = { ca = '$etc/none.crt' }\n", "[mqtt.tls.ca]: $etc/none.crt: no such file"),
    "CA that is no certificate": (MQTT + "tls = { ca = '$etc/mqtt.password' }\n", "[mqtt.tls.ca]: $etc/mqtt.password is not a usable CA certificate"),
    "key of another certificate": (TLS + "cert = '$etc/unit-07.crt'\nkey = '$etc/ca.crt'\n", "[mqtt.tls.cert]: $etc/unit-07.crt with key $etc/ca.crt cannot be used"),
    "missing password file": (MQTT + "password_file = '$etc/none.password'\n", "[mqtt.password_file]: $etc/none.password: cannot be read (No such file or directory)"),
    "empty password file": (MQTT + "password_file = '$etc/empty.password'\n", "[mqtt.password_file]: $etc/empty.password: the file is empty"),
    "missing camera password": (IMAGE + '[[image.sources]]\ntype = "http"\nurl = "http://cam/x"\nusername = "a"\npassword_file = "$etc/none"\n',
                                "[image.sources[1].password_file]: $etc/none: cannot be read"),
    "missing watched folder": (IMAGE + '[[image.sources]]\ntype = "folder"\npath = "$etc/nowhere"\n', "[image.sources[1].path]: $etc/nowhere: no such folder"),
    "credentials in the url": (IMAGE + '[[image.sources]]\ntype = "http"\nurl = "http://admin:pw@cam/x"\n',
                               "[image.sources[1].url]: has a user name or password in it"),
    "bad suffixes": (IMAGE + FOLDER + 'suffixes = ["jpg"]\n', "[image.sources[1].suffixes]: got an array; expected a list of file suffixes"),
    "ca_file for plain http": (IMAGE + '[[image.sources]]\ntype = "http"\nurl = "http://cam/x"\nca_file = "$etc/ca.crt"\n',
                               "[image.sources[1].ca_file]: given for a plain http URL"),
    # thresholds and tasks checked against the model
    "threshold for a label the model lacks": (IMAGE + "thresholds = { gold = 0.5 }\n" + FOLDER,
                                              "[image.thresholds.gold]: 'gold' is not an alert label of this model (alert labels: mining)"),
    "threshold for a label that raises no alert": (IMAGE + "thresholds = { not_mining = 0.5 }\n" + FOLDER,
                                                   "[image.thresholds.not_mining]: 'not_mining' is not an alert label"),
    "audio threshold label": (AUDIO + "thresholds = { mining = 0.5 }\n[audio.source]\ntype = 'microphone'\n",
                              "[audio.thresholds.mining]: 'mining' is not an alert label of this model (alert labels: chainsaw, engine)"),
    "image model in [audio]": (HEAD + '[audio]\nmodel = "$image_model"\n[audio.source]\ntype = "microphone"\n',
                               "[audio.model]: $image_model: is an image model, not an audio model; pass an audio model bundle (.nvm); "
                               "expected an audio model bundle"),
    "audio model in [image]": (HEAD + '[image]\nmodel = "$audio_model"\n' + FOLDER,
                               "[image.model]: $audio_model: is an audio model, not an image model; pass an image model bundle"),
}


@pytest.mark.parametrize("case", list(ERRORS))
def test_errors_name_the_file_and_the_key(site, case):
    text, expected = ERRORS[case]
    (site.etc / "empty.password").write_text("\n")
    path = site.write(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ["), message
    assert Template(expected).substitute(etc=site.etc, image_model=site.image_model, audio_model=site.audio_model) in message


def test_toml_syntax_errors_and_missing_files_name_the_file(site):
    with pytest.raises(ConfigError, match=r"edge\.toml: not valid TOML: .*line 2"):
        load_config(site.write('[device]\nid = unit-07\n'))
    with pytest.raises(ConfigError, match=r"nowhere\.toml: no such config file"):
        load_config(site.dir / "nowhere.toml")


@pytest.mark.skipif(importlib.util.find_spec("picamera2") is not None, reason="picamera2 is installed here")
def test_a_picamera2_source_is_refused_where_the_library_is_missing(site):
    path = site.write(IMAGE + '[[image.sources]]\ntype = "picamera2"\n')
    with pytest.raises(ConfigError, match=r"\[image\.sources\[1\]\.type\]: picamera2 is not installed here"):
        load_config(path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_password_file_is_an_error(site):
    secret = site.etc / "mqtt.password"
    secret.chmod(0)
    with pytest.raises(ConfigError, match=r"\[mqtt\.password_file\]: .*cannot be read \(Permission denied\)"):
        load_config(site.write(MQTT + f"password_file = '{secret}'\n"))
