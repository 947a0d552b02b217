"""vncmux.preflight: the start-up look at what the parsed options name, after parsing (which
looks at nothing) and before anything listens."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vncmux import preflight
from vncmux.config import build_config
from vncmux.errors import ConfigError


def refusal(**kwargs: object) -> str:
    """The one-line ConfigError preflight raises for the options ``kwargs``."""
    config = build_config(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(ConfigError) as info:
        preflight.check(config)
    message = str(info.value)
    assert "\n" not in message
    return message


def secret(tmp_path: Path, name: str, text: str, mode: int = 0o600) -> str:
    path = tmp_path / name
    path.write_text(text)
    path.chmod(mode)
    return str(path)


def test_parsing_looks_at_no_file() -> None:
    """Every file below is missing, yet parsing succeeds: looking is preflight's job."""
    config = build_config(
        device="/dev/ttyNOPE",
        vnc=":0,tls-cert=/nope/c.pem,tls-key=/nope/k.pem,tls-ca=/nope/ca.pem,x509verify=on",
        password_file="/nope/pw",
        view_password_file="/nope/view",
        users_file="/nope/users",
        sockets=["ssl:4443:privateKey=/nope/key.pem"],
    )
    assert config.vnc.tls is not None and config.vnc.tls.verify
    assert "does not exist" in refusal(
        device="/dev/ttyNOPE", wait_device=True, password_file="/nope/pw"
    )


@pytest.mark.parametrize(
    ("option", "needle"),
    [
        ("tls-cert", "--vnc tls-cert={path} does not exist"),
        ("tls-key", "--vnc tls-key={path} does not exist"),
        ("tls-ca", "--vnc tls-ca={path} does not exist"),
    ],
)
def test_tls_files_must_exist(tmp_path: Path, option: str, needle: str) -> None:
    files = {name: secret(tmp_path, name, "pem") for name in ("tls-cert", "tls-key", "tls-ca")}
    missing = str(tmp_path / "missing.pem")
    files[option] = missing
    vnc = ":0," + ",".join(f"{k}={v}" for k, v in files.items()) + ",x509verify=on"
    assert needle.format(path=missing) in refusal(vnc=vnc)
    present = ":0," + ",".join(f"{k}={secret(tmp_path, k, 'pem')}" for k in files)
    preflight.check(build_config(vnc=present))  # all there: no error


def test_users_and_view_password_files_must_exist(tmp_path: Path) -> None:
    nope = str(tmp_path / "nope")
    assert refusal(view_password_file=nope) == f"--view-password-file {nope} does not exist"
    tls = f":0,tls-cert={secret(tmp_path, 'c', 'pem')}"
    assert refusal(vnc=tls, users_file=nope) == f"--users-file {nope} does not exist"


def test_view_password_equal_to_the_full_password_is_refused(tmp_path: Path) -> None:
    """Whoever holds the view-only password would have control: refuse to start."""
    full = secret(tmp_path, "full", "s3cret\n")
    same = secret(tmp_path, "same", "s3cret\r\n")  # another line ending, the same password
    message = refusal(password_file=full, view_password_file=same)
    assert "--view-password-file" in message and "same password" in message
    other = secret(tmp_path, "other", "look\n")
    preflight.check(build_config(password_file=full, view_password_file=other))


def test_view_password_that_is_the_same_des_key_is_refused(tmp_path: Path) -> None:
    """VNC authentication ignores the top bit of each password byte (DES parity): 'a' (0x61)
    and 0xe1 open the same door, so they are the same password."""
    full = secret(tmp_path, "full", "abc\n")
    twin = tmp_path / "twin"
    twin.write_bytes(b"\xe1bc\n")
    twin.chmod(0o600)
    assert "same password" in refusal(password_file=full, view_password_file=str(twin))


def test_warnings_for_secrets_other_users_can_read(tmp_path: Path) -> None:
    pw = secret(tmp_path, "pw", "pw\n", 0o644)
    view = secret(tmp_path, "view", "look\n", 0o640)
    users = secret(tmp_path, "users", "a:b\n", 0o604)
    key = secret(tmp_path, "key.pem", "pem", 0o644)
    cert = secret(tmp_path, "cert.pem", "pem", 0o644)  # public: no warning
    config = build_config(
        vnc=f":0,tls-cert={cert},tls-key={key}",
        password_file=pw,
        view_password_file=view,
        users_file=users,
    )
    lines = preflight.warnings(config)
    assert lines == [
        f"--password-file {pw} is readable by its group and every user (mode 0644): whoever "
        f"reads it can use it to reach the console (chmod 600 {pw})",
        f"--view-password-file {view} is readable by its group (mode 0640): whoever "
        f"reads it can use it to reach the console (chmod 600 {view})",
        f"--users-file {users} is readable by every user (mode 0604): whoever "
        f"reads it can use it to reach the console (chmod 600 {users})",
        f"--vnc tls-key={key} is readable by its group and every user (mode 0644): whoever "
        f"reads it can use it to reach the console (chmod 600 {key})",
    ]
    for path in (pw, view, users, key):
        os.chmod(path, 0o600)
    assert preflight.warnings(config) == []


def test_key_inside_the_certificate_file_is_a_secret(tmp_path: Path) -> None:
    both = secret(tmp_path, "both.pem", "cert and key", 0o644)
    lines = preflight.warnings(build_config(vnc=f":0,tls-cert={both}"))
    assert len(lines) == 1 and lines[0].startswith(f"--vnc tls-cert={both} is readable")
    nope = str(tmp_path / "nope.pem")  # the missing file is named as the user typed it
    assert refusal(vnc=f":0,tls-cert={nope}") == f"--vnc tls-cert={nope} does not exist"
