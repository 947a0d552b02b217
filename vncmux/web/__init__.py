"""The web entry of a site (``--web``): the index of its consoles with live thumbnails,
each console's noVNC page, WebSocket and API under ``/c/NAME/``, ``/healthz`` and
``/metrics``.  ``service.py`` listens; the other modules each serve one page or compute one
answer from the running consoles."""
