"""``GET /metrics``: every console's live counters in Prometheus' text format.

A custom ``prometheus_client`` collector reads the running consoles when scraped: the
numbers live where the work is counted (the hub, the RFB factory), so nothing is kept twice
and a console that is removed simply stops being reported.  One registry per web service
(never the library's global one), with the process' own CPU and memory figures.

Per console (label ``console``)::

    vncmux_device_up                        1 while the device is open
    vncmux_device_reconnects_total          openings after the first
    vncmux_device_output_bytes_total        bytes read from the device
    vncmux_device_input_bytes_total         bytes written to it
    vncmux_input_dropped_bytes_total        input dropped (device down or not reading)
    vncmux_last_output_timestamp_seconds    when the device last said something
    vncmux_clients{kind}                    clients attached now: socket, pty, logfile,
                                            vnc, websocket, api_stream
    vncmux_stalled_clients_dropped_total{kind}  clients dropped for not reading: byte
                                            backends (hub) and viewers (vnc)
    vncmux_auth_failures_total              failed VNC authentications
    vncmux_frames_sent_total                FramebufferUpdates sent to viewers
    vncmux_encode_seconds_total             time spent encoding them
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector
from twisted.web.resource import Resource
from twisted.web.server import Request

from vncmux.web.state import client_kinds, device_state

#: The client kinds always reported (0 when none), so a dashboard's series never vanish.
CLIENT_KINDS = ("socket", "pty", "logfile", "vnc", "websocket", "api_stream")


class ConsoleCollector(Collector):
    """Reads ``instances()`` (the running consoles) at each scrape."""

    def __init__(self, instances: Callable[[], Iterable[Any]]) -> None:
        self._instances = instances

    def describe(self) -> list[Metric]:
        return []  # no fixed description: the consoles come and go

    def collect(self) -> Iterator[Metric]:
        label = ["console"]
        up = GaugeMetricFamily(
            "vncmux_device_up", "1 while the console's device is open", labels=label
        )
        reconnects = CounterMetricFamily(
            "vncmux_device_reconnects", "Device openings after the first", labels=label
        )
        out = CounterMetricFamily(
            "vncmux_device_output_bytes", "Bytes read from the device", labels=label
        )
        into = CounterMetricFamily(
            "vncmux_device_input_bytes", "Bytes written to the device", labels=label
        )
        dropped = CounterMetricFamily(
            "vncmux_input_dropped_bytes",
            "Input dropped because the device was down or not reading",
            labels=label,
        )
        last = GaugeMetricFamily(
            "vncmux_last_output_timestamp_seconds",
            "Unix time of the device's last output",
            labels=label,
        )
        clients = GaugeMetricFamily(
            "vncmux_clients", "Clients attached now, by kind", labels=["console", "kind"]
        )
        stalled = CounterMetricFamily(
            "vncmux_stalled_clients_dropped",
            "Clients dropped because they stopped reading, by kind",
            labels=["console", "kind"],
        )
        auth = CounterMetricFamily(
            "vncmux_auth_failures", "Failed VNC authentications", labels=label
        )
        frames = CounterMetricFamily(
            "vncmux_frames_sent", "FramebufferUpdates sent to VNC viewers", labels=label
        )
        encode = CounterMetricFamily(
            "vncmux_encode_seconds", "Seconds spent encoding FramebufferUpdates", labels=label
        )
        for instance in self._instances():
            name = [instance.name]
            hub = instance.hub
            up.add_metric(name, 1.0 if device_state(instance) == "up" else 0.0)
            reconnects.add_metric(name, max(0, hub.deviceConnects - 1))
            out.add_metric(name, hub.outputBytes)
            into.add_metric(name, hub.inputBytes)
            dropped.add_metric(name, hub.droppedInput)
            if getattr(hub, "lastOutput", None) is not None:
                last.add_metric(name, hub.lastOutput)
            kinds = client_kinds(instance)
            for kind in sorted(set(CLIENT_KINDS) | set(kinds)):
                clients.add_metric([instance.name, kind], kinds.get(kind, 0))
            stalled.add_metric([instance.name, "byte"], getattr(hub, "stalledBackends", 0))
            factory = getattr(instance, "vnc_factory", None)
            stats = getattr(factory, "stats", None)
            if stats is not None:
                stalled.add_metric([instance.name, "vnc"], stats.stalled)
                auth.add_metric(name, stats.auth_failures)
                frames.add_metric(name, stats.frames)
                encode.add_metric(name, stats.encode_seconds)
        yield from (up, reconnects, out, into, dropped, last, clients, stalled, auth, frames)
        yield encode


def makeRegistry(instances: Callable[[], Iterable[Any]]) -> CollectorRegistry:
    """A registry of its own: the consoles' collector and the process' figures."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ConsoleCollector(instances))
    ProcessCollector(namespace="vncmux", registry=registry)
    return registry


class MetricsResource(Resource):
    """``/metrics``: ``registry`` in the text format Prometheus scrapes."""

    isLeaf = True

    def __init__(self, registry: CollectorRegistry) -> None:
        super().__init__()
        self.registry = registry

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"content-type", CONTENT_TYPE_LATEST.encode("ascii"))
        request.setHeader(b"cache-control", b"no-store")
        return generate_latest(self.registry)
