"""The audit log (vncmux.audit): JSON line format, input escaping, flushing per event, reopen
for logrotate (SIGHUP through vncmux.sighup), and a full disk that is logged once and never
stops the console."""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path

import pytest
from twisted.internet.testing import Clock
from twisted.logger import capturedLogs, formatEvent
from zope.interface.verify import verifyObject

from vncmux import sighup
from vncmux.audit import AppendFile, AuditLog, AuditService, audit_record, escape_input, iso_time
from vncmux.events import (
    ATTACH,
    INPUT,
    START,
    TAKEOVER,
    Client,
    Event,
    EventBus,
    IEventListener,
)

ALICE = Client.of("vnc", "192.0.2.1:5000", user="alice")
BOB = Client.of("socket", "[2001:db8::2]:4000")


def lines(path: Path) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


# -- the line ------------------------------------------------------------------------------


def test_time_is_utc_iso_8601_with_milliseconds() -> None:
    assert iso_time(0) == "1970-01-01T00:00:00.000Z"
    assert iso_time(1796661600.1239) == "2026-12-07T16:40:00.123Z"


def test_an_attach_line() -> None:
    line = audit_record(Event(1796661600.5, ATTACH, ALICE))
    assert line.endswith("\n") and line.count("\n") == 1
    assert json.loads(line) == {
        "time": "2026-12-07T16:40:00.500Z",
        "event": "attach",
        "client": {"kind": "vnc", "peer": "192.0.2.1:5000", "credential": "alice"},
    }
    assert list(json.loads(line)) == ["time", "event", "client"]  # a fixed order


def test_an_input_line_has_the_count_and_only_with_audit_input_the_bytes() -> None:
    event = Event(0, INPUT, BOB, data=b"pa\\ss\r\x03\xc3\xa9\x7f")
    plain = json.loads(audit_record(event))
    assert plain["bytes"] == 10 and "input" not in plain
    full = json.loads(audit_record(event, with_input=True, console="board"))
    assert full["console"] == "board"
    assert full["input"] == "pa\\\\ss\\r\\x03\\xc3\\xa9\\x7f"


def test_escaping_is_printable_ascii_and_lossless() -> None:
    every = bytes(range(256))
    text = escape_input(every)
    assert text.isascii() and text.isprintable()
    assert text.encode("ascii").decode("unicode_escape").encode("latin-1") == every
    assert escape_input(b"ls -l\n\t") == "ls -l\\n\\t"


def test_takeover_names_the_previous_holder_and_detail() -> None:
    event = Event(0, TAKEOVER, ALICE, detail="Ctrl+Alt+T", previous=BOB)
    record = json.loads(audit_record(event))
    assert record["previous"] == {
        "kind": "socket",
        "peer": "[2001:db8::2]:4000",
        "credential": "full",
    }
    assert record["detail"] == "Ctrl+Alt+T"


def test_the_log_is_an_event_listener() -> None:
    assert verifyObject(IEventListener, AuditLog("/nonexistent/x"))


# -- the file ------------------------------------------------------------------------------


def test_each_event_is_on_disk_when_event_returns_and_the_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    audit = AuditLog(str(path))
    audit.event(Event(0, ATTACH, ALICE))
    assert lines(path)[0]["event"] == "attach"  # no close, no flush: already written
    audit.event(Event(1, INPUT, ALICE, data=b"x"))
    assert [r["event"] for r in lines(path)] == ["attach", "input"]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    audit.close()


def test_reopen_after_logrotate_moved_the_file(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    audit = AuditLog(str(path))
    audit.event(Event(0, ATTACH, ALICE))
    os.rename(path, tmp_path / "audit.jsonl.1")
    audit.event(Event(1, INPUT, ALICE, data=b"a"))  # still the old file (as logrotate wants)
    audit.reopen()
    audit.event(Event(2, INPUT, ALICE, data=b"b"))
    assert [r["event"] for r in lines(tmp_path / "audit.jsonl.1")] == ["attach", "input"]
    assert [r["time"] for r in lines(path)] == ["1970-01-01T00:00:02.000Z"]
    audit.close()


class FullDisk:
    """A file whose writes fail with ENOSPC while ``full`` (or write ``short`` bytes)."""

    def __init__(self) -> None:
        self.full = True
        self.short: int | None = None
        self.data = b""
        self.closed = False

    def write(self, data: bytes) -> int:
        if self.short is not None:
            n, self.short = self.short, None
            self.data += data[:n]
            return n
        if self.full:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.data += data
        return len(data)

    def close(self) -> None:
        self.closed = True


def test_a_full_disk_is_logged_once_counted_and_writing_resumes() -> None:
    disk = FullDisk()
    audit = AuditLog("/var/log/audit.jsonl", opener=lambda path: disk)  # type: ignore[arg-type,return-value]
    with capturedLogs() as logged:
        for n in range(5):
            audit.event(Event(n, INPUT, BOB, data=b"x"))  # never raises
        disk.full = False
        audit.event(Event(9, INPUT, BOB, data=b"y"))
    text = [formatEvent(e) for e in logged]
    errors = [t for t in text if "No space left on device" in t]
    assert len(errors) == 1 and "/var/log/audit.jsonl" in errors[0]
    assert any("writing again; 5 record(s) were lost" in t for t in text)
    assert audit.file.lost == 5
    assert [json.loads(x)["time"] for x in disk.data.decode().splitlines()] == [iso_time(9)]


def test_a_short_write_starts_the_next_line_fresh() -> None:
    disk = FullDisk()
    disk.full = False
    disk.short = 7
    file = AppendFile("/x", "Audit log", opener=lambda path: disk)  # type: ignore[arg-type,return-value]
    with capturedLogs():
        assert not file.write(b'{"a":1}\n' * 2)
    assert file.write(b'{"b":2}\n')
    assert disk.data.split(b"\n") == [b'{"a":1}', b'{"b":2}', b""]


def test_a_file_that_cannot_be_opened_is_retried_and_not_fatal(tmp_path: Path) -> None:
    path = tmp_path / "later" / "audit.jsonl"
    audit = AuditLog(str(path))
    with capturedLogs() as logged:
        audit.event(Event(0, ATTACH, ALICE))
        audit.event(Event(1, ATTACH, BOB))
        path.parent.mkdir()
        audit.event(Event(2, ATTACH, BOB))
    assert sum("cannot open it" in formatEvent(e) for e in logged) == 1
    assert [r["time"] for r in lines(path)] == [iso_time(2)]
    assert audit.file.lost == 2


# -- the service: start line, SIGHUP ----------------------------------------------------------


class ImmediateReactor:
    """callFromThread at once (what the reactor does a moment later)."""

    def callFromThread(self, f, *args):  # type: ignore[no-untyped-def]
        f(*args)


def test_the_service_writes_start_and_reopens_on_sighup(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    bus = EventBus(Clock())
    service = AuditService(
        AuditLog(str(path), console="lab"), bus, "vncmux 0.1.0", ImmediateReactor()
    )
    service.startService()
    try:
        bus.emit(ATTACH, ALICE)
        os.rename(path, tmp_path / "old")
        sighup.runCallbacks()  # what the signal handler schedules
        bus.emit(START)  # any event: it lands in the new file
    finally:
        service.stopService()
    old = lines(tmp_path / "old")
    assert [(r["event"], r.get("detail")) for r in old] == [
        ("start", "vncmux 0.1.0"),
        ("attach", None),
    ]
    assert old[0]["console"] == "lab"
    assert [r["event"] for r in lines(path)] == ["start"]
    bus.emit(ATTACH, BOB)  # stopped: unsubscribed
    assert len(lines(path)) == 1


# -- the options -----------------------------------------------------------------------------


def test_options_parse_into_the_config() -> None:
    from vncmux.config import build_config

    config = build_config(
        device="unix:/x", audit_log="/l/a.jsonl", audit_input=True, record="/r/%Y.cast"
    )
    assert (config.audit_log, config.audit_input) == ("/l/a.jsonl", True)
    assert (config.record, config.record_input) == ("/r/%Y.cast", False)
    assert build_config(device="unix:/x").audit_log is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"audit_input": True}, "--audit-input needs --audit-log FILE"),
        ({"record_input": True}, "--record-input needs --record FILE"),
        ({"audit_log": " "}, "--audit-log: an empty file name"),
        ({"audit_log": "/x", "record": "/x"}, "name the same file"),
    ],
)
def test_option_mistakes(kwargs: dict, message: str) -> None:  # type: ignore[type-arg]
    from vncmux.config import build_config
    from vncmux.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        build_config(device="unix:/x", **kwargs)


def test_preflight_checks_the_files_can_be_written(tmp_path: Path) -> None:
    from vncmux.config import build_config
    from vncmux.errors import ConfigError
    from vncmux.preflight import check

    check(build_config(device="unix:/x", audit_log=str(tmp_path / "a"), record=str(tmp_path / "r")))
    with pytest.raises(ConfigError, match=r"^--audit-log .*/nope/a: the directory .* does not"):
        check(build_config(device="unix:/x", audit_log=str(tmp_path / "nope" / "a")))
    with pytest.raises(ConfigError, match=r"^--record .* is a directory"):
        check(build_config(device="unix:/x", record=str(tmp_path)))


def test_tap_exits_2_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    from vncmux.tap import Options

    with pytest.raises(SystemExit) as exit:
        Options().parseOptions(["--device", "unix:/x", "--record-input"])
    assert exit.value.code == 2
    assert "--record-input needs --record FILE" in capsys.readouterr().err
