"""Signals sent once per real transition of a site's maintenance (or read-only) state.

Receivers get keyword arguments ``site`` (the Site, or None for every site), ``source``
(``"admin"``, ``"command"``, ``"schedule"`` or ``"switch"``), ``user`` (or None),
``reason`` (text, may be empty) and ``readonly`` (True for read-only mode changes).
"""

from django.dispatch import Signal

maintenance_started = Signal()
maintenance_ended = Signal()
