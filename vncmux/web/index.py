"""``/``: the index of a site's consoles, and ``/consoles.json``, what it refreshes from.

Each console is a card: its name (a link to its viewer, ``c/NAME/``), its device's state
(up, down, reconnecting), and, for a console whose screen is open to anyone who reaches
its VNC port (no password: ``ConsoleStatus.public``), the device, the clients attached, the
time of the last output and a live thumbnail.  A console protected by a VNC password shows
its name and state only: the index asks for no password, so it tells nothing that the
password guards.  A small script re-reads ``consoles.json`` and reloads the thumbnails every
``REFRESH`` seconds, and reloads the page when consoles are added or removed.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any
from urllib.parse import quote

from twisted.web.resource import Resource
from twisted.web.server import Request

from vncmux.web.state import ConsoleStatus, statuses

#: Seconds between two refreshes of the index's states and thumbnails.
REFRESH = 3.0


def describe_clients(clients: dict[str, int]) -> str:
    """``2 vnc, 1 socket`` or ``no clients``."""
    parts = [f"{n} {kind.replace('_', ' ')}" for kind, n in sorted(clients.items()) if n]
    return ", ".join(parts) if parts else "no clients"


def listing(consoles: Sequence[ConsoleStatus], now: float) -> dict[str, Any]:
    """What ``consoles.json`` answers (and the page is drawn from): for each console its
    name and state, and the rest only for a public one."""
    items: list[dict[str, Any]] = []
    for c in consoles:
        item: dict[str, Any] = {
            "name": c.name,
            "state": c.state,
            "viewer": f"c/{quote(c.name)}/" if c.viewer else None,
            "public": c.public,
        }
        if c.public:
            item.update(
                device=c.device,
                clients=c.clients,
                clients_text=describe_clients(c.clients),
                last_output=c.last_output,
                thumbnail=f"c/{quote(c.name)}/thumbnail.png",
            )
        items.append(item)
    return {"now": now, "consoles": items}


_STYLE = """
body { margin: 0; background: #222; color: #ddd; font: 14px/1.4 sans-serif; }
header { padding: 8px 16px; background: #333; }
h1 { font-size: 18px; margin: 0; }
main { display: flex; flex-wrap: wrap; gap: 16px; padding: 16px; }
article { background: #2c2c2c; border: 1px solid #444; border-radius: 4px; padding: 8px;
  width: 330px; }
article h2 { font-size: 16px; margin: 0 0 4px; }
a { color: #9cf; }
.state { padding: 0 6px; border-radius: 3px; color: #111; }
.state-up { background: #7c7; } .state-down { background: #e77; }
.state-reconnecting { background: #ec6; }
.thumb { display: block; width: 320px; min-height: 40px; background: #000; margin-top: 6px; }
.details { color: #aaa; font-size: 12px; }
"""

_SCRIPT = """
const refresh = %(refresh)d;
const known = %(names)s;
function ago(t, now) {
  if (t === null || t === undefined) return 'never';
  const s = Math.max(0, Math.round(now - t));
  return s < 90 ? s + ' s ago' : s < 5400 ? Math.round(s / 60) + ' min ago'
    : Math.round(s / 3600) + ' h ago';
}
async function update() {
  let data;
  try {
    data = await (await fetch('consoles.json', {cache: 'no-store'})).json();
  } catch (e) { return; }
  const names = data.consoles.map(c => c.name);
  if (names.join('/') !== known.join('/')) { location.reload(); return; }
  for (const c of data.consoles) {
    const card = document.querySelector(`article[data-name="${CSS.escape(c.name)}"]`);
    if (!card) continue;
    const state = card.querySelector('.state');
    state.textContent = c.state;
    state.className = 'state state-' + c.state;
    if (!c.public) continue;
    card.querySelector('.clients').textContent = c.clients_text;
    card.querySelector('.last').textContent = ago(c.last_output, data.now);
    card.querySelector('.thumb').src = c.thumbnail + '?t=' + Date.now();
  }
}
setInterval(update, refresh * 1000);
update();
"""


def _card(item: dict[str, Any], now: float) -> str:
    name = html.escape(item["name"])
    title = f'<a href="{html.escape(item["viewer"])}">{name}</a>' if item["viewer"] else name
    state = html.escape(item["state"])
    head = (
        f'<article data-name="{name}"><h2>{title} '
        f'<span class="state state-{state}">{state}</span></h2>'
    )
    if not item["public"]:
        why = "password required" if item["viewer"] else "no viewer (no VNC server)"
        return head + f'<div class="details">{why}</div></article>'
    last = item["last_output"]
    last_text = "never" if last is None else f"{max(0, round(now - last))} s ago"
    img = f'<img class="thumb" alt="screen of {name}" src="{html.escape(item["thumbnail"])}">'
    if item["viewer"]:
        img = f'<a href="{html.escape(item["viewer"])}">{img}</a>'
    return (
        head + f'<div class="details">device <span class="device">{html.escape(item["device"])}'
        f'</span> · <span class="clients">{html.escape(item["clients_text"])}</span>'
        f' · last output <span class="last">{html.escape(last_text)}</span></div>'
        + img
        + "</article>"
    )


def index_page(consoles: Sequence[ConsoleStatus], now: float, title: str = "vncmux") -> bytes:
    """The whole index page."""
    data = listing(consoles, now)
    cards = "\n".join(_card(item, now) for item in data["consoles"]) or "<p>No consoles.</p>"
    names = json.dumps([c.name for c in consoles]).replace("</", "<\\/")
    script = _SCRIPT % {"refresh": REFRESH, "names": names}
    name = html.escape(title)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{name}</title><style>{_STYLE}</style>"
        f'<script type="module">{script}</script></head>'
        f"<body><header><h1>{name}: {len(consoles)} consoles</h1></header>"
        f"<main>{cards}</main></body></html>\n"
    ).encode()


class _StatusResource(Resource):
    """A page made fresh on every GET from the consoles ``instances()`` returns then."""

    isLeaf = True

    def __init__(self, instances: Callable[[], Iterable[Any]], clock: Any) -> None:
        super().__init__()
        self._instances = instances
        self._clock = clock


class IndexResource(_StatusResource):
    """``/``: ``index_page`` over the consoles ``instances()`` returns when asked."""

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        request.setHeader(b"cache-control", b"no-store")
        request.setHeader(b"x-frame-options", b"DENY")
        return index_page(statuses(self._instances()), self._clock.seconds())


class ListingResource(_StatusResource):
    """``/consoles.json``: ``listing`` as JSON."""

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"content-type", b"application/json; charset=utf-8")
        request.setHeader(b"cache-control", b"no-store")
        body = listing(statuses(self._instances()), self._clock.seconds())
        return json.dumps(body).encode("utf-8") + b"\n"
