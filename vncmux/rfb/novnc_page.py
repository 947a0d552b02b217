"""The small HTML page served at ``/`` of the WebSocket port, and where to find noVNC.

vncmux ships no JavaScript.  The page loads noVNC from wherever the user installed it
(the Debian ``novnc`` package in /usr/share/novnc, or an npm ``@novnc/novnc`` directory
named by ``$VNCMUX_NOVNC``), served read-only under ``/novnc/``, and connects it back to
the port it came from.  When noVNC is not installed the page says how to get it, so a
user who opens the URL printed at start-up is never left with a blank screen.
"""

from __future__ import annotations

import html
import os
from collections.abc import Mapping

from twisted.logger import Logger

log = Logger()

#: Where the Debian/Ubuntu ``novnc`` package installs noVNC.
DEBIAN_NOVNC = "/usr/share/novnc"
#: Environment variable naming a noVNC directory (e.g. ``node_modules/@novnc/novnc``).
NOVNC_ENV = "VNCMUX_NOVNC"


def find_novnc(environ: Mapping[str, str] | None = None) -> str | None:
    """The noVNC directory to serve: ``$VNCMUX_NOVNC`` first, then /usr/share/novnc.

    A directory counts only if it holds ``core/rfb.js`` (the ES module the page
    imports), so a stale or wrong path falls back to the install instructions instead of
    serving a page that fails in the browser console; a ``$VNCMUX_NOVNC`` passed over so
    is logged (a typo in it would otherwise go unseen)."""
    env = os.environ if environ is None else environ
    chosen = env.get(NOVNC_ENV, "")
    for candidate in (chosen, DEBIAN_NOVNC):
        if candidate and os.path.isfile(os.path.join(candidate, "core", "rfb.js")):
            if chosen and candidate != chosen:
                log.warn(
                    "${name}={chosen} holds no noVNC (no core/rfb.js): using {candidate}",
                    name=NOVNC_ENV,
                    chosen=chosen,
                    candidate=candidate,
                )
            return os.path.realpath(candidate)
    if chosen:
        log.warn("${name}={chosen} holds no noVNC (no core/rfb.js)", name=NOVNC_ENV, chosen=chosen)
    return None


_STYLE = """
html, body { margin: 0; height: 100%; background: #222; color: #ddd;
  font: 14px/1.4 sans-serif; }
#bar { padding: 4px 8px; background: #333; display: flex; gap: 1em; align-items: center;
  height: 22px; }
#bar a { color: #9cf; }
#login { display: flex; gap: 0.5em; align-items: center; margin: 0; }
#login[hidden], #login [hidden] { display: none; }
#login input { background: #222; color: #ddd; border: 1px solid #666; padding: 1px 4px; }
#screen { position: absolute; top: 30px; bottom: 0; left: 0; right: 0; }
main { max-width: 40em; margin: 3em auto; }
code { background: #333; padding: 1px 4px; }
"""

# The script: a WebSocket URL for ``websockify`` next to this very page (ws: or wss: after
# the page's own scheme): ``/websockify`` on the websocket= port, ``/c/NAME/websockify`` on
# the --web site (the server accepts the upgrade on every path under the page).  When the
# server asks for credentials noVNC fires 'credentialsrequired' with the kinds it needs
# (a password; a user name too for VeNCrypt Plain): the form in the bar shows the fields
# asked for, and submitting it hands them to noVNC.  No prompt(): it blocks the page and
# hangs headless browsers.  ``?resize=`` picks what the window size does, with noVNC's own
# vnc.html values: ``scale`` (default: the picture scales to the window), ``remote`` (the
# console is asked for the size of the window: SetDesktopSize, see --viewer-resize), ``off``
# (1:1); the link to the full client carries the choice over.
_SCRIPT = """
import RFB from './novnc/core/rfb.js';
const status = document.getElementById('status');
const form = document.getElementById('login');
const user = document.getElementById('username');
const pass = document.getElementById('password');
const url = new URL('websockify', location.href);
url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
const rfb = new RFB(document.getElementById('screen'), url.href);
let failure = '';
const resize = new URLSearchParams(location.search).get('resize') || 'scale';
rfb.scaleViewport = resize === 'scale';
rfb.resizeSession = resize === 'remote';
const full = document.getElementById('full');
if (full) {
  const u = new URL(full.href);
  u.searchParams.set('resize', resize);
  full.href = u.href;
}
rfb.focusOnClick = true;
window.vncmuxRFB = rfb;
rfb.addEventListener('connect', () => { status.textContent = 'connected'; rfb.focus(); });
rfb.addEventListener('disconnect', e => {
  form.hidden = true;
  status.textContent = failure || (e.detail.clean ? 'disconnected' : 'connection lost'); });
rfb.addEventListener('securityfailure', e => {
  failure = 'authentication failed' + (e.detail.reason ? ': ' + e.detail.reason : ''); });
rfb.addEventListener('credentialsrequired', e => {
  const types = (e.detail && e.detail.types) || ['password'];
  user.hidden = !types.includes('username');
  pass.hidden = !types.includes('password');
  form.hidden = false;
  status.textContent = 'password required';
  (user.hidden ? pass : user).focus();
});
form.addEventListener('submit', e => {
  e.preventDefault();
  const credentials = {};
  if (!user.hidden) credentials.username = user.value;
  if (!pass.hidden) credentials.password = pass.value;
  pass.value = '';
  form.hidden = true;
  status.textContent = 'authenticating…';
  rfb.sendCredentials(credentials);
});
rfb.addEventListener('desktopname', e => { document.title = e.detail.name; });
"""


def page(
    novnc: str | None,
    title: str = "vncmux",
    *,
    ws_path: str = "websockify",
    index: str | None = None,
) -> bytes:
    """The HTML for a console's page: a full-window noVNC viewer, or install instructions.

    ``novnc`` is the directory found by :func:`find_novnc` (only whether it is None
    matters here; the files are served by the web server under ``novnc/`` next to the
    page).  ``ws_path`` is the WebSocket's path from the host's root, for the link to
    noVNC's full client (which takes it as a parameter); ``index``, when given, the
    (relative) address of the list of consoles, linked from the bar."""
    name = html.escape(title)
    if novnc is None:
        body = f"""<main>
<h1>{name}: noVNC is not installed</h1>
<p>This port speaks VNC over WebSocket, so any noVNC client can connect to it, but the
browser page needs noVNC, which vncmux does not ship. Install it with one of:</p>
<ul>
<li><code>apt install novnc</code> (Debian, Ubuntu: it goes to /usr/share/novnc)</li>
<li><code>npm install @novnc/novnc</code>, then start vncmux with
<code>VNCMUX_NOVNC=$PWD/node_modules/@novnc/novnc</code></li>
</ul>
<p>then restart vncmux and reload this page. A VNC viewer on the TCP port works
without it.</p>
</main>"""
        return _document(name, body, script="")
    link = html.escape(f"novnc/vnc.html?autoconnect=1&path={ws_path}&resize=scale")
    back = f' <a href="{html.escape(index)}">all consoles</a>' if index else ""
    body = f"""<div id="bar"><span id="status">connecting…</span>
<form id="login" hidden>
<input id="username" name="username" autocomplete="username" placeholder="user name"
 aria-label="user name" hidden>
<input id="password" name="password" type="password" autocomplete="current-password"
 placeholder="password" aria-label="password">
<button type="submit">Connect</button>
</form>
<a id="full" href="{link}">full noVNC client</a>{back}</div>
<div id="screen"></div>"""
    return _document(name, body, script=_SCRIPT)


def _document(title: str, body: str, script: str) -> bytes:
    module = f'<script type="module">{script}</script>' if script else ""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{title}</title><style>{_STYLE}</style>{module}</head>"
        f"<body>{body}</body></html>\n"
    ).encode()
