"""The HTTP/JSON API (``--api``): scripts read the console as text and drive it.

``resource.py`` routes ``/api/v1/...`` to small handlers; ``auth.py`` decides who may do
what (bearer tokens, or no token on a UNIX socket); ``screen.py`` turns the terminal into
JSON and text; ``keynames.py`` turns key names into bytes through the VNC key mapper;
``wait.py`` answers ``/wait`` when a pattern shows up, event-driven, and ``pattern.py``
compiles its patterns with RE2 (linear time), within bounds; ``follow.py`` streams output
as it comes; ``status.py`` gathers counters; ``service.py`` listens.
"""
