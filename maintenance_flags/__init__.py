"""Maintenance mode for Django sites, stored as site-scoped django-waffle switches."""

from __future__ import annotations

__version__ = "1.1.0.dev0"
