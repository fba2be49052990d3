"""Helpers for projects testing their own pages under maintenance.

``override_maintenance`` takes effect at once (no TTL wait, no database write) and
restores the previous state on exit::

    from maintenance_flags.testutils import override_maintenance

    @override_maintenance()                     # every site in maintenance
    def test_home_is_down(client): ...

    with override_maintenance(site_id=2):       # only site 2
        ...
    with override_maintenance(on=False):        # no site, whatever the switches say
        ...

For pytest, add ``from maintenance_flags.testutils import maintenance_mode`` to your
``conftest.py`` and take the ``maintenance_mode`` fixture: it puts every site in
maintenance for the test (call ``maintenance_mode(on=False)`` or with ``site_id`` to change).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from django.test.utils import TestContextDecorator

from maintenance_flags.state import overrides


class override_maintenance(TestContextDecorator):
    """Put one site (``site_id``) or every site (``site_id=None``) in or out of maintenance."""

    def __init__(self, on: bool = True, site_id: int | None = None) -> None:
        self.on = on
        self.site_id = site_id
        self._previous: dict[int | None, bool] = {}
        super().__init__()

    def enable(self) -> None:
        self._previous = dict(overrides)
        if self.site_id is None:
            overrides.clear()
        overrides[self.site_id] = self.on

    def disable(self) -> None:
        overrides.clear()
        overrides.update(self._previous)


try:
    import pytest
except ImportError:  # pragma: no cover - pytest is optional
    pass
else:

    @pytest.fixture
    def maintenance_mode() -> Iterator[Callable[..., None]]:
        """Every site in maintenance for this test; call it to change: ``maintenance_mode(on=False)``."""
        active: list[override_maintenance] = []

        def switch(on: bool = True, site_id: int | None = None) -> None:
            override = override_maintenance(on=on, site_id=site_id)
            override.enable()
            active.append(override)

        switch()
        yield switch
        for override in reversed(active):
            override.disable()
