"""Signals sent once per real transition of a site's maintenance (or read-only) state.

Receivers get keyword arguments ``site`` (the Site, or None for every site), ``source``
(``"admin"``, ``"command"``, ``"schedule"`` or ``"switch"``), ``user`` (or None) and
``reason`` (text, may be empty). Read-only mode changes send no signal: they are recorded in
the audit trail (``MaintenanceEvent`` with ``readonly=True``) only.
"""

from __future__ import annotations

from django.dispatch import Signal

maintenance_started = Signal()
maintenance_ended = Signal()
