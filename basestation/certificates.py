"""The units' client certificates: issued, revoked and listed in a CRL by the base station's CA,
with `openssl ca` (the openssl command line, so no crypto package is added to the base station).

The CA keeps its records in `tls.ca_dir`: `index.txt` (every certificate issued, valid or revoked,
by serial and subject), `crlnumber`, a copy of each issued certificate under `issued/`, and the
`openssl.cnf` that says so. Serials are random (rand_serial), so they never collide with
certificates the same CA signed by hand (`openssl x509 -req -CAcreateserial`, docs/mqtt.md).

A unit's private key is made in a temporary folder, goes into its archive, and is never kept here.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from basestation.settings import Tls

EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


class CertificateError(Exception):
    """openssl failed; the message says what it was asked to do and what it answered."""


@dataclass(frozen=True)
class Issued:
    cert: bytes
    key: bytes
    serial: str
    not_after: str  # ISO 8601 date


@dataclass(frozen=True)
class IndexEntry:
    """One line of `index.txt`: V(alid), R(evoked) or E(xpired)."""

    status: str
    expires: str  # ASN.1 time, YYMMDDHHMMSSZ
    serial: str
    subject: str

    @property
    def name(self) -> str:
        return self.subject.rsplit("/CN=", 1)[-1]


def openssl(*args: str, cwd: Path | None = None) -> str:
    try:
        proc = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=120)
    except FileNotFoundError:
        raise CertificateError("openssl is not installed: apt install openssl") from None
    if proc.returncode != 0:
        raise CertificateError(f"openssl {args[0]} {' '.join(a for a in args[1:] if not a.startswith('/'))[:200]} "
                               f"failed: {proc.stderr.strip()[-800:]}")
    return proc.stdout


def prepare(tls: Tls) -> Path:
    """The CA's record folder (mode 700) with its index and config; returns the config's path."""
    d = tls.ca_dir
    (d / "issued").mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(d, 0o700)
    for name, text in (("index.txt", ""), ("index.txt.attr", "unique_subject = no\n"), ("crlnumber", "1000\n")):
        if not (d / name).exists():
            (d / name).write_text(text)
    conf = d / "openssl.cnf"
    conf.write_text(f"""# Written by nv-base unit (basestation/certificates.py) from {tls.ca_key.parent}; rewritten on every use.
[ca]
default_ca = units
[units]
database = {d / 'index.txt'}
new_certs_dir = {d / 'issued'}
certificate = {tls.ca}
private_key = {tls.ca_key}
crlnumber = {d / 'crlnumber'}
rand_serial = yes
unique_subject = no
default_md = sha256
policy = by_name
copy_extensions = none
[by_name]
commonName = supplied
[unit]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
""")
    return conf


def issue(tls: Tls, name: str) -> Issued:
    """A new key and a certificate for CN=name, signed by the CA."""
    conf = prepare(tls)
    with tempfile.TemporaryDirectory(prefix="nv-unit-") as tmp:
        tmp = Path(tmp)
        openssl("req", "-new", *EC, "-keyout", str(tmp / "unit.key"), "-out", str(tmp / "unit.csr"),
                "-subj", f"/CN={name}")
        openssl("ca", "-batch", "-config", str(conf), "-in", str(tmp / "unit.csr"), "-out", str(tmp / "unit.crt"),
                "-days", str(tls.days), "-extensions", "unit", "-notext")
        cert = (tmp / "unit.crt").read_bytes()
        key = (tmp / "unit.key").read_bytes()
        fields = dict(line.split("=", 1) for line in openssl("x509", "-in", str(tmp / "unit.crt"), "-noout",
                                                             "-serial", "-enddate").splitlines())
    not_after = datetime.strptime(fields["notAfter"], "%b %d %H:%M:%S %Y %Z").date().isoformat()
    return Issued(cert=cert, key=key, serial=fields["serial"].upper(), not_after=not_after)


def entries(tls: Tls) -> list[IndexEntry]:
    index = tls.ca_dir / "index.txt"
    if not index.exists():
        return []
    found = []
    for line in index.read_text().splitlines():
        parts = line.split("\t")
        if len(parts) == 6:
            found.append(IndexEntry(status=parts[0], expires=parts[1], serial=parts[3].upper(), subject=parts[5]))
    return found


def valid_serials(tls: Tls, name: str) -> list[str]:
    return [e.serial for e in entries(tls) if e.status == "V" and e.name == name]


def revoke(tls: Tls, serial: str) -> None:
    conf = prepare(tls)
    copy = tls.ca_dir / "issued" / f"{serial}.pem"
    if not copy.exists():
        raise CertificateError(f"{copy}: the CA's copy of certificate {serial} is missing; it cannot be revoked "
                               f"without it")
    openssl("ca", "-config", str(conf), "-revoke", str(copy), "-crl_reason", "cessationOfOperation")


def write_crl(tls: Tls) -> str:
    """(Re)write mosquitto's crlfile from the index; returns its next update (ISO date). Written beside
    and renamed, so the broker never reads half a file; the mode and owner of the old one are kept
    (mosquitto's user must read it)."""
    conf = prepare(tls)
    tmp = tls.crl.with_name(f".{tls.crl.name}.new")
    openssl("ca", "-config", str(conf), "-gencrl", "-crldays", str(tls.crl_days), "-out", str(tmp))
    if tls.crl.exists():
        st = tls.crl.stat()
        os.chmod(tmp, st.st_mode & 0o777)
        if os.geteuid() == 0:
            os.chown(tmp, st.st_uid, st.st_gid)
    else:
        os.chmod(tmp, 0o644)  # a CRL is public
    os.replace(tmp, tls.crl)
    return crl_next_update(tls)


def crl_next_update(tls: Tls) -> str | None:
    if not tls.crl.exists():
        return None
    line = openssl("crl", "-in", str(tls.crl), "-noout", "-nextupdate").strip()
    when = datetime.strptime(line.split("=", 1)[1], "%b %d %H:%M:%S %Y %Z").replace(tzinfo=timezone.utc)
    return when.date().isoformat()
