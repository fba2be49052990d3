"""Settings are read at use time: every change a test makes takes effect."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings as django_settings
from django.test import Client, override_settings

from maintenance_flags import conf as conf_module
from maintenance_flags.conf import conf
from tests.utils import run, turn


def test_defaults() -> None:
    assert conf.MAINTENANCE_RETRY_AFTER == 3600
    assert conf.MAINTENANCE_STATE_TTL == 2.0
    assert conf.MAINTENANCE_FAIL_MODE == "closed"
    assert conf.MAINTENANCE_STATE_CACHE is None


def test_override_settings_take_effect_and_are_undone() -> None:
    with override_settings(MAINTENANCE_RETRY_AFTER=60):
        assert conf.MAINTENANCE_RETRY_AFTER == 60
    assert conf.MAINTENANCE_RETRY_AFTER == 3600


def test_pytest_django_settings_fixture(settings: Any) -> None:
    settings.MAINTENANCE_RETRY_AFTER = 61
    assert conf.MAINTENANCE_RETRY_AFTER == 61


def test_a_setting_deleted_through_the_settings_fixture(settings: Any) -> None:
    """pytest-django sends no ``setting_changed`` for ``del settings.X``: 1.0 kept the old value."""
    assert conf.SITE_ID == 1
    del settings.SITE_ID
    assert conf.SITE_ID is None


@pytest.mark.django_db
def test_a_deleted_site_id_changes_what_the_command_and_middleware_do(settings: Any) -> None:
    turn(True)
    assert Client().get("/").status_code == 503
    del settings.SITE_ID
    with pytest.raises(Exception, match="SITE_ID is not set"):
        run("on")
    settings.ALLOWED_HOSTS = ["unknown.example"]
    assert Client().get("/", headers={"Host": "unknown.example"}).status_code == 200  # no site: global only


def test_settings_assigned_directly_need_forget_settings() -> None:
    django_settings.MAINTENANCE_RETRY_AFTER = 62
    try:
        conf_module.forget_settings()
        assert conf.MAINTENANCE_RETRY_AFTER == 62
    finally:
        del django_settings.MAINTENANCE_RETRY_AFTER  # type: ignore[misc]  # not one of Django's settings
        conf_module.forget_settings()
    assert conf.MAINTENANCE_RETRY_AFTER == 3600


@pytest.mark.django_db
def test_memos_follow_every_settings_change(settings: Any, staff_client: Any) -> None:
    """What is derived from settings (here, the verdict for staff) follows a change made under one
    snapshot, even one made without a ``setting_changed`` signal."""
    turn(True)
    assert staff_client.get("/").status_code == 200
    settings.MAINTENANCE_BLOCK_STAFF = True
    assert staff_client.get("/").status_code == 503
    del settings.MAINTENANCE_BLOCK_STAFF  # no setting_changed: seen by the generation alone
    assert staff_client.get("/").status_code == 200


def test_a_wrong_number_falls_back_to_the_default(settings: Any) -> None:
    settings.MAINTENANCE_STATE_TTL = "soon"  # reported by check E004
    assert conf.MAINTENANCE_STATE_TTL == 2.0


def test_state_cache_alias(settings: Any) -> None:
    settings.MAINTENANCE_STATE_CACHE = "state"
    assert conf.MAINTENANCE_STATE_CACHE == "state"
    settings.MAINTENANCE_STATE_CACHE = ["state"]  # reported by check E004: the tier stays off
    assert conf.MAINTENANCE_STATE_CACHE is None


def test_setting_descriptor_on_the_class() -> None:
    assert isinstance(conf_module.Settings.SITE_ID, conf_module.setting)


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "value"), [("MAINTENANCE_STATE_TTL", None), ("MAINTENANCE_RETRY_AFTER", "soon")])
def test_bad_numbers_in_settings_fall_back_to_defaults(name: str, value: Any) -> None:
    turn(True)
    with override_settings(**{name: value}):
        response = Client().get("/")
    assert response.status_code == 503
    assert response["Retry-After"] == "3600"


def test_celery_name_lists(settings: Any) -> None:
    assert not conf.MAINTENANCE_CELERY_EXEMPT_QUEUES
    settings.MAINTENANCE_CELERY_EXEMPT_QUEUES = ["emails", "sms"]
    settings.MAINTENANCE_CELERY_BEAT_ALLOWED = ("app.tasks.ping",)
    assert sorted(conf.MAINTENANCE_CELERY_EXEMPT_QUEUES) == ["emails", "sms"]
    assert sorted(conf.MAINTENANCE_CELERY_BEAT_ALLOWED) == ["app.tasks.ping"]
    settings.MAINTENANCE_CELERY_EXEMPT_QUEUES = "emails"  # E004: not a list, so no queue is exempt
    assert not conf.MAINTENANCE_CELERY_EXEMPT_QUEUES
