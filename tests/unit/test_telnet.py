"""Telnet on byte sockets, both ends, on StringTransport: negotiation as a serial console
server and as a client of a telnet serial port, IAC escaping both ways, the NVT's CR
rules, BREAK, COM-PORT-OPTION refused without --rfc2217 (and with it: the modem state's
notifications on the wire), and the takeover escape."""

from __future__ import annotations

import pytest
from twisted.conch.telnet import BRK, DO, DONT, ECHO, IAC, SB, SE, SGA, WILL, WONT
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import Clock, StringTransport
from twisted.python.failure import Failure
from zope.interface.verify import verifyObject

from tests.support.fakes import FakeDevice
from tests.support.serial_line import FakeLine
from vncmux.devices_net import TelnetDevice
from vncmux.events import TELNET, Client
from vncmux.hub import Hub
from vncmux.interfaces import IBackend, IDevice, IPausableInput, LineCounters
from vncmux.rfc2217_notify import MODEM_POLL_INTERVAL
from vncmux.telnet import BINARY, TelnetBackend, TelnetChannel, TelnetFactory, escape

COM = bytes((44,))


class Server:
    """A telnet endpoint's connection: factory → channel → backend, on a hub."""

    def __init__(self, rfc2217: bool = False, readonly: bool = False) -> None:
        self.clock = Clock()
        self.hub = Hub(self.clock)
        self.device = FakeDevice()
        self.hub.deviceConnected(self.device, "up")
        factory = TelnetFactory(
            self.hub, "tcp:4555", readonly=readonly, rfc2217=rfc2217, clock=self.clock
        )
        self.channel: TelnetChannel = factory.buildProtocol(None)
        self.wire = StringTransport()
        self.channel.makeConnection(self.wire)
        self.backend: TelnetBackend = self.channel.protocol  # type: ignore[assignment]

    def sent(self) -> bytes:
        data = self.wire.value()
        self.wire.clear()
        return data

    def typed(self) -> bytes:
        data = b"".join(self.device.written)
        self.device.written.clear()
        return data

    def agree(self) -> None:
        """What the telnet command answers: DO ECHO, DO SGA, WILL SGA, DO/WILL BINARY."""
        self.channel.dataReceived(
            IAC
            + DO
            + ECHO
            + IAC
            + DO
            + SGA
            + IAC
            + WILL
            + SGA
            + IAC
            + DO
            + BINARY
            + IAC
            + WILL
            + BINARY
        )
        self.sent()


def test_the_server_offers_a_serial_consoles_options_at_once() -> None:
    s = Server()
    offered = s.sent()
    for request in (WILL + ECHO, WILL + SGA, WILL + BINARY):
        assert IAC + request in offered
    # one request per option at a time: DO follows the answer to WILL
    s.channel.dataReceived(IAC + DO + ECHO + IAC + DO + SGA + IAC + DO + BINARY)
    assert s.sent() == IAC + DO + SGA + IAC + DO + BINARY
    assert verifyObject(IBackend, s.backend) and verifyObject(IPausableInput, s.backend)
    assert s.backend.client == Client.of(TELNET, s.backend.label)


def test_binary_both_ways_only_iac_is_escaped() -> None:
    s = Server()
    s.agree()
    assert s.channel.binaryIn() and s.channel.binaryOut()
    s.hub.deviceOutput(b"a\xffb\r\nc\rd\n")
    assert s.sent() == b"a\xff\xffb\r\nc\rd\n"  # no CR NUL, no LF → CR LF
    s.channel.dataReceived(b"x\xff\xffy\r")
    assert s.typed() == b"x\xffy\r"  # the CR at once, not held for its partner


def test_nvt_rules_apply_where_binary_was_refused() -> None:
    s = Server()
    s.channel.dataReceived(IAC + DONT + BINARY + IAC + WONT + BINARY)
    s.sent()
    assert not s.channel.binaryIn() and not s.channel.binaryOut()
    s.channel.dataReceived(b"ls\r\0pwd\r\nx\r")
    s.channel.dataReceived(b"\0y\r")
    s.channel.dataReceived(b"\nz")
    assert s.typed() == b"ls\rpwd\rx\ry\rz"
    s.hub.deviceOutput(b"a\rb\r\n")
    assert s.sent() == b"a\r\0b\r\n"


def test_iac_split_across_reads_and_commands_in_order_with_data() -> None:
    s = Server()
    s.agree()
    s.channel.dataReceived(b"ab\xff")
    s.channel.dataReceived(b"\xffcd" + IAC + BRK + b"h")
    assert s.device.breaks == [0.25]
    assert s.typed() == b"ab\xffcdh"


def test_unknown_commands_and_long_subnegotiations_do_not_drop_the_client() -> None:
    s = Server()
    s.agree()
    s.channel.dataReceived(IAC + b"\xec" + b"a" + IAC + b"\x01" + b"b")  # IAC EOF, IAC 1
    s.channel.dataReceived(IAC + SB + b"\x18" + b"x" * 5000 + IAC + SE + b"c")
    assert s.typed() == b"abc"
    assert not s.wire.disconnecting


def test_com_port_option_is_refused_without_rfc2217() -> None:
    s = Server()
    s.sent()
    s.channel.dataReceived(IAC + WILL + COM + IAC + DO + COM)
    answer = s.sent()
    assert IAC + DONT + COM in answer and IAC + WONT + COM in answer
    s.channel.dataReceived(IAC + SB + COM + b"\x01\x00\x00\x25\x80" + IAC + SE)
    assert s.sent() == b""  # not agreed: no answer


def test_com_port_option_is_accepted_with_rfc2217() -> None:
    s = Server(rfc2217=True)
    s.sent()
    s.channel.dataReceived(IAC + WILL + COM)
    assert s.sent() == IAC + DO + COM
    s.channel.dataReceived(IAC + SB + COM + b"\x00" + IAC + SE)  # signature, please
    assert s.sent() == IAC + SB + COM + b"\x64vncmux" + IAC + SE


def rfc2217Server(modem: int | None) -> tuple[Server, FakeLine]:
    """A telnet endpoint with --rfc2217 whose device has a line with modem lines ``modem``
    (None: none, as a pty) and counters."""
    s = Server(rfc2217=True)
    line = FakeLine()
    line.modem = modem
    line.counts = None if modem is None else LineCounters()
    s.device.line = line  # type: ignore[attr-defined]
    s.sent()
    return s, line


def sb(payload: bytes) -> bytes:
    return IAC + SB + COM + payload + IAC + SE


def test_once_agreed_the_client_gets_the_modem_state_then_its_changes() -> None:
    s, line = rfc2217Server(modem=0x30)
    s.channel.dataReceived(IAC + WILL + COM)
    assert s.sent() == IAC + DO + COM  # the answer first, alone
    s.clock.advance(0)
    assert s.sent() == sb(b"\x6b\x30")
    line.modem = 0xB0
    s.clock.advance(MODEM_POLL_INTERVAL)
    assert s.sent() == sb(b"\x6b\xb8")  # carrier, DDCD
    s.channel.dataReceived(IAC + SB + COM + b"\x0b" + IAC + IAC + IAC + SE)  # mask 255
    assert s.sent() == sb(b"\x6f\xff\xff") + sb(b"\x6b\xb0")  # 255 doubled in the ack


def test_a_255_modem_state_is_doubled_on_the_wire() -> None:
    s, line = rfc2217Server(modem=0x40)
    s.channel.dataReceived(IAC + DO + COM)  # agreed the other way: as good
    assert s.sent() == IAC + WILL + COM
    s.clock.advance(0)
    assert s.sent() == sb(b"\x6b\x40")
    line.modem, line.counts = 0xF0, LineCounters(ri=1)  # and the ring pulsed meanwhile
    s.clock.advance(MODEM_POLL_INTERVAL)
    assert s.sent() == IAC + SB + COM + b"\x6b" + IAC + IAC + IAC + SE


def test_a_pty_device_reports_cts_dsr_cd_and_the_device_going_down_drops_them() -> None:
    s, _line = rfc2217Server(modem=None)
    s.channel.dataReceived(IAC + WILL + COM)
    s.clock.advance(0)
    assert s.sent() == IAC + DO + COM + sb(b"\x6b\xb0")
    assert s.clock.getDelayedCalls() == []  # nothing to poll on a pty
    s.hub.deviceLost("gone")
    assert s.sent() == sb(b"\x6b\x0b")
    s.hub.deviceConnected(s.device, "back")
    assert s.sent() == sb(b"\x6b\xbb")


def test_the_poll_ends_with_the_client_or_the_option() -> None:
    s, _line = rfc2217Server(modem=0x30)
    s.channel.dataReceived(IAC + WILL + COM + IAC + DO + COM)
    s.clock.advance(0)
    assert s.backend.comPort is not None and s.backend.comPort.watch.polling
    s.channel.dataReceived(IAC + WONT + COM)
    assert s.backend.comPort.watch.polling  # still agreed the other way
    s.channel.dataReceived(IAC + DONT + COM)
    assert not s.backend.comPort.watch.polling
    s, _line = rfc2217Server(modem=0x30)
    s.channel.dataReceived(IAC + WILL + COM)
    s.clock.advance(0)
    s.channel.connectionLost(Failure(ConnectionDone("bye")))
    assert s.clock.getDelayedCalls() == []


def test_a_read_only_telnet_client_cannot_break() -> None:
    s = Server(readonly=True)
    s.channel.dataReceived(IAC + BRK + b"typed")
    assert s.device.breaks == [] and s.typed() == b""


def test_the_takeover_escape_takes_the_keyboard_under_the_exclusive_policy() -> None:
    s = Server()
    s.agree()
    s.hub.keyboard.configure(exclusive=True, idle=30)
    other = Client.of("vnc", "10.0.0.9:1")
    assert s.hub.keyboard.allow(other, 1)
    s.channel.dataReceived(b"no")
    assert s.typed() == b""  # another client holds the keyboard
    s.channel.dataReceived(b"\x05cf")
    assert s.hub.keyboard.holder == s.backend.client
    s.channel.dataReceived(b"yes")
    assert s.typed() == b"yes"


def test_escape_doubles_every_iac() -> None:
    assert escape(b"\xff\x00\xff\xff") == b"\xff\xff\x00\xff\xff\xff\xff"


# -- the client end: --device telnet:HOST:PORT ------------------------------------------


class Client_:
    def __init__(self) -> None:
        self.output: list[bytes] = []
        self.gone: list[str] = []
        self.channel = TelnetChannel(
            lambda: TelnetDevice("telnet:h:1", self.output.append, lambda d, w: self.gone.append(w))
        )
        self.wire = StringTransport()
        self.channel.makeConnection(self.wire)
        self.device: TelnetDevice = self.channel.protocol  # type: ignore[assignment]


def test_the_telnet_device_negotiates_binary_unescapes_and_breaks_with_iac_break() -> None:
    c = Client_()
    assert verifyObject(IDevice, c.device)
    assert c.wire.value() == IAC + DO + BINARY + IAC + DO + SGA
    c.wire.clear()
    # QEMU's telnet serial: WILL ECHO, WILL SGA, WILL/DO BINARY
    c.channel.dataReceived(IAC + WILL + ECHO + IAC + WILL + SGA + IAC + WILL + BINARY)
    answered = c.wire.value()
    assert IAC + DO + ECHO in answered
    assert IAC + WILL + BINARY in answered and IAC + WILL + SGA in answered
    c.channel.dataReceived(IAC + DO + BINARY + IAC + DO + SGA)
    assert c.channel.binaryIn() and c.channel.binaryOut()
    c.wire.clear()
    c.channel.dataReceived(b"boot\xff\xff\r\n")
    assert b"".join(c.output) == b"boot\xff\r\n"
    c.device.write(b"a\xff\r")
    assert c.wire.value() == b"a\xff\xff\r"
    c.wire.clear()
    assert "IAC BREAK" in c.device.sendBreak(0.25)
    assert c.wire.value() == IAC + BRK


@pytest.mark.parametrize("option", [ECHO, SGA, BINARY])
def test_the_telnet_device_accepts_the_options_a_serial_server_offers(option: bytes) -> None:
    c = Client_()
    c.wire.clear()
    c.channel.dataReceived(IAC + WILL + option)
    assert IAC + DONT + option not in c.wire.value()


def test_the_telnet_device_reports_its_loss() -> None:
    c = Client_()
    from twisted.internet.error import ConnectionLost
    from twisted.python.failure import Failure

    c.channel.connectionLost(Failure(ConnectionLost("gone")))
    assert c.gone
