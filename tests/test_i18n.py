"""Translations: the 503 page, JSON problem details, banner, admin and command in French, German, Spanish;
and the catalogues themselves (complete, no fuzzy entries, placeholders kept, .mo matching .po, in sync
with the source)."""

from __future__ import annotations

import gettext
import json
import re
import shutil
from dataclasses import dataclass, field
from datetime import timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings
from django.core.management import CommandError, call_command
from django.test import AsyncClient, Client, override_settings
from django.utils import timezone, translation

import maintenance_flags
from maintenance_flags import bypass
from maintenance_flags.management.commands.setmaintenance import Command
from maintenance_flags.models import IgnoredURL, MaintenanceWindow
from maintenance_flags.names import readonly_switch_name
from maintenance_flags.switches import set_switch
from tests.utils import BUILTIN_ONLY, turn

PACKAGE = Path(maintenance_flags.__file__).resolve().parent
LOCALE = PACKAGE / "locale"
LANGUAGES = ("fr", "de", "es")

DEMO_MARKER = "served from testproject/templates/503.html"


def run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("setmaintenance", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


# --- the 503 page and the JSON problem details --------------------------------------------------

PAGE = {
    "fr": ("Ce site est en maintenance. Veuillez réessayer plus tard.", "Nous serons bientôt de retour"),
    "de": ("Diese Website wird gerade gewartet. Bitte versuchen Sie es später erneut.", "Wir sind bald wieder"),
    "es": ("Este sitio está en mantenimiento. Vuelva a intentarlo más tarde.", "Volveremos pronto"),
}
EXPECTED_BACK = {"fr": "Retour prévu dans environ", "de": "Voraussichtlich wieder erreichbar", "es": "Volveremos en"}


@pytest.mark.django_db
@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("templates", ["builtin", "demo"])
def test_503_page_in_the_visitors_language(language: str, templates: str) -> None:
    turn(True)
    with override_settings(TEMPLATES=BUILTIN_ONLY) if templates == "builtin" else override_settings():
        response = Client().get("/", headers={"Accept-Language": f"{language},en;q=0.5"})
    html = response.content.decode()
    assert response.status_code == 503
    assert (DEMO_MARKER in html) == (templates == "demo")
    assert f'<html lang="{language}">' in html
    message, heading = PAGE[language]
    assert message in html
    assert heading in html
    assert EXPECTED_BACK[language] in html
    assert "This site is down" not in html
    assert "back soon" not in html
    assert response["Content-Language"] == language
    assert "Accept-Language" in response["Vary"]


@pytest.mark.django_db
def test_503_page_title_and_regional_variant() -> None:
    """``fr-CA`` gets the French page; the <title> is translated too."""
    turn(True)
    with override_settings(TEMPLATES=BUILTIN_ONLY):
        html = Client().get("/", headers={"Accept-Language": "fr-CA"}).content.decode()
    assert "<title>En maintenance" in html
    assert "Ce site est en maintenance" in html


@pytest.mark.django_db
def test_503_page_in_english_for_other_languages() -> None:
    turn(True)
    with override_settings(TEMPLATES=BUILTIN_ONLY):
        response = Client().get("/", headers={"Accept-Language": "it"})
    html = response.content.decode()
    assert "This site is down for maintenance. Please try again later." in html
    assert "We’ll be back soon" in html
    assert '<html lang="en">' in html


@pytest.mark.django_db
def test_503_page_async_stack_in_german() -> None:
    turn(True)
    with override_settings(TEMPLATES=BUILTIN_ONLY):
        response = async_to_sync(AsyncClient().get)("/async/", headers={"Accept-Language": "de"})
    assert response.status_code == 503
    assert PAGE["de"][0] in response.content.decode()


@pytest.mark.django_db
def test_custom_message_is_not_translated() -> None:
    """The operator's own message is shown as written, in every language."""
    run("on", "--message", "Back at 02:00 UTC")
    html = Client().get("/", headers={"Accept-Language": "fr"}).content.decode()
    assert "Back at 02:00 UTC" in html
    assert "Nous serons bientôt de retour" in html
    assert PAGE["fr"][0] not in html


PROBLEM = {
    "fr": ("Service indisponible", "Ce site est en maintenance. Veuillez réessayer plus tard."),
    "de": ("Dienst nicht verfügbar", "Diese Website wird gerade gewartet. Bitte versuchen Sie es später erneut."),
    "es": ("Servicio no disponible", "Este sitio está en mantenimiento. Vuelva a intentarlo más tarde."),
}


@pytest.mark.django_db
@pytest.mark.parametrize("language", LANGUAGES)
def test_problem_details_in_the_clients_language(language: str) -> None:
    turn(True)
    response = Client().get("/", headers={"Accept": "application/json", "Accept-Language": language})
    assert response.status_code == 503
    assert response["Content-Type"] == "application/problem+json"
    body = json.loads(response.content)
    assert (body["title"], body["detail"]) == PROBLEM[language]
    assert body["status"] == 503


@pytest.mark.django_db
def test_problem_details_async_stack_in_french() -> None:
    turn(True)
    response = async_to_sync(AsyncClient().get)(
        "/async/", headers={"Accept": "application/json", "Accept-Language": "fr"}
    )
    assert json.loads(response.content)["title"] == "Service indisponible"


READONLY = {
    "fr": "Ce site est en lecture seule pour maintenance",
    "de": "Diese Website ist wegen Wartungsarbeiten schreibgeschützt",
    "es": "Este sitio está en modo de solo lectura por mantenimiento",
}


@pytest.mark.django_db
@pytest.mark.parametrize("language", LANGUAGES)
def test_readonly_refusal_page_json_and_banner(language: str) -> None:
    set_switch(readonly_switch_name(1), True)
    client = Client()
    headers = {"Accept-Language": language}
    refused = client.post("/submit/", headers=headers)
    assert refused.status_code == 503
    assert READONLY[language] in refused.content.decode()
    problem = json.loads(client.post("/submit/", headers={**headers, "Accept": "application/json"}).content)
    assert problem["detail"].startswith(READONLY[language])
    assert READONLY[language] in client.get("/", headers=headers).content.decode()  # the banner, for everyone


# --- the banner ---------------------------------------------------------------------------------

STAFF_BANNER = {
    "fr": "Le mode maintenance est activé",
    "de": "Der Wartungsmodus ist aktiv",
    "es": "El modo de mantenimiento está activado",
}
VISITOR_BANNER = {
    "fr": "Ce site est en maintenance",
    "de": "Diese Website wird gewartet",
    "es": "Este sitio está en mantenimiento",
}
UPCOMING = {
    "fr": "Maintenance programmée le",
    "de": "Geplante Wartung am",
    "es": "Mantenimiento programado el",
}


@pytest.mark.django_db
@pytest.mark.parametrize("language", LANGUAGES)
def test_staff_banner(staff_client: Client, language: str) -> None:
    turn(True)
    html = staff_client.get("/", headers={"Accept-Language": language}).content.decode()
    assert STAFF_BANNER[language] in html
    assert "Maintenance mode is on" not in html


@pytest.mark.django_db
@pytest.mark.parametrize("language", LANGUAGES)
def test_visitor_banner_on_ignored_url(language: str) -> None:
    IgnoredURL.objects.create(pattern="^ignored-page/$")
    turn(True)
    html = Client().get("/ignored-page/", headers={"Accept-Language": language}).content.decode()
    assert VISITOR_BANNER[language] in html
    assert "under maintenance" not in html


@pytest.mark.django_db
@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("with_end", [True, False])
def test_upcoming_window_banner(language: str, with_end: bool) -> None:
    start = timezone.now() + timedelta(hours=1)
    MaintenanceWindow.objects.create(
        site_id=1, starts_at=start, ends_at=start + timedelta(hours=2) if with_end else None
    )
    html = Client().get("/", headers={"Accept-Language": language}).content.decode()
    assert UPCOMING[language] in html
    assert "Scheduled maintenance" not in html
    assert "%(" not in html and "{{" not in html  # every placeholder was filled


@pytest.mark.django_db
def test_upcoming_window_banner_exact_french_wording() -> None:
    start = timezone.now() + timedelta(hours=1)
    MaintenanceWindow.objects.create(site_id=1, starts_at=start, ends_at=start + timedelta(hours=2))
    html = Client().get("/", headers={"Accept-Language": "fr"}).content.decode()
    assert re.search(r"Maintenance programmée le .+ de \d{1,2}:\d\d à \d{1,2}:\d\d", html), html


# --- the admin ----------------------------------------------------------------------------------


@pytest.fixture
def superuser_client(db: None, django_user_model: Any) -> Client:
    client = Client()
    client.force_login(django_user_model.objects.create_superuser("boss", password="pw"))
    return client


ADMIN_INDEX = {
    "fr": ["Maintenance des sites", "URL ignorées", "Fenêtres de maintenance", "Jetons de contournement"],
    "de": ["Wartung", "Website-Wartung", "Ignorierte URLs", "Wartungsfenster", "Wartungsereignisse"],
    "es": ["Mantenimiento", "Mantenimiento de sitios", "URL ignoradas", "Ventanas de mantenimiento"],
}
ADMIN_PAGE = {
    "fr": ["Maintenance des sites", "En mode maintenance", "Tous les sites", "Lecture seule", "Historique complet"],
    "de": ["Website-Wartung", "Im Wartungsmodus", "Alle Websites", "Schreibgeschützt", "Gesamter Verlauf"],
    "es": ["Mantenimiento de sitios", "En modo de mantenimiento", "Todos los sitios", "Solo lectura"],
}


@pytest.mark.parametrize("language", LANGUAGES)
def test_admin_labels(superuser_client: Client, language: str) -> None:
    headers = {"Accept-Language": language}
    index = superuser_client.get("/admin/", headers=headers).content.decode()
    for label in ADMIN_INDEX[language]:
        assert label in index, label
    assert "Ignored URLs" not in index
    assert "Site maintenance" not in index
    page = superuser_client.get("/admin/maintenance_flags/sitemaintenance/", headers=headers).content.decode()
    for label in ADMIN_PAGE[language]:
        assert label in page, label
    assert "In maintenance mode" not in page


def test_admin_language_from_the_language_cookie(superuser_client: Client) -> None:
    """The user's chosen language (Django's language cookie) wins over the browser's."""
    superuser_client.cookies[settings.LANGUAGE_COOKIE_NAME] = "fr"
    page = superuser_client.get("/admin/maintenance_flags/sitemaintenance/", headers={"Accept-Language": "de"})
    html = page.content.decode()
    assert "En mode maintenance" in html
    assert 'aria-label="En mode maintenance\u00a0: example.com"' in html
    assert "Im Wartungsmodus" not in html


def test_admin_ignored_url_form_and_validation_in_french(superuser_client: Client) -> None:
    headers = {"Accept-Language": "fr"}
    form = superuser_client.get("/admin/maintenance_flags/ignoredurl/add/", headers=headers).content.decode()
    assert "Motif" in form
    assert "Laissez vide pour ignorer ce motif sur tous les sites." in form
    response = superuser_client.post(
        "/admin/maintenance_flags/ignoredurl/add/", {"pattern": "(", "description": ""}, headers=headers
    )
    assert response.status_code == 200
    assert "Saisissez une expression régulière valide" in response.content.decode()


def test_admin_save_message_in_spanish(superuser_client: Client) -> None:
    response = superuser_client.post(
        "/admin/maintenance_flags/sitemaintenance/", {"site-1": "on"}, headers={"Accept-Language": "es"}, follow=True
    )
    assert "Modo de mantenimiento actualizado" in response.content.decode()


# --- the command --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_command_error_in_french() -> None:
    with translation.override("fr"), pytest.raises(CommandError, match="Aucun site avec l’identifiant 99"):
        run("on", "99")
    with translation.override("fr"), pytest.raises(CommandError, match="ne peut pas être combiné"):
        run("on", "1", "--all")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("language", "text"),
    [
        ("fr", "Utilisation\u00a0: setmaintenance readonly on|off"),
        ("de", "Aufruf: setmaintenance readonly on|off"),
        ("es", "Uso: setmaintenance readonly on|off"),
    ],
)
def test_command_usage_error_translated(language: str, text: str) -> None:
    with translation.override(language), pytest.raises(CommandError) as excinfo:
        run("readonly", "sideways")
    assert str(excinfo.value) == text + " [SITE_ID ...] [--all]"


@pytest.mark.django_db
def test_command_progress_translated_but_status_lines_stay_english() -> None:
    with translation.override("de"):
        out, err = run("on")
    assert err.strip() == "Wartungsmodus für 1 (example.com) eingeschaltet."
    assert out.splitlines() == ["1 example.com on (site switch)", "all - off (global switch)"]
    with translation.override("es"):
        out, err = run("on", "--all")
    assert err.strip() == "Modo de mantenimiento activado para all (todos los sitios)."
    assert "all - on (global switch)" in out
    with translation.override("fr"):
        out, err = run("on")
    assert out.splitlines()[0] == "1 example.com already on"  # machine-readable: English
    assert err == ""
    with translation.override("fr"):
        out, err = run("readonly", "on")
    assert err.strip() == "Lecture seule activée pour 1 (example.com)."


@pytest.mark.django_db
def test_command_status_check_and_json_in_french() -> None:
    run("on")
    with translation.override("fr"):
        doc = json.loads(run("status", "--json")[0])
        with pytest.raises(CommandError, match=r"^1 site en maintenance ou en lecture seule\.$") as excinfo:
            run("status", "--check")
    assert excinfo.value.returncode == 1
    assert doc["sites"][0]["reason"] == "site switch"  # JSON: never translated


@pytest.mark.django_db
def test_command_revoke_plurals() -> None:
    for _ in range(2):
        bypass.issue(5, "qa", site_id=None)
    with translation.override("fr"):
        assert run("bypass", "--revoke-all")[0].strip() == "2 jetons de contournement révoqués."
        assert run("bypass", "--revoke-all")[0].strip() == "0 jeton de contournement révoqué."
    bypass.issue(5, "qa", site_id=None)
    with translation.override("es"):
        assert run("bypass", "--revoke", "qa")[0].strip() == "1 token de omisión revocado."
    with translation.override("en"):
        assert run("bypass", "--revoke-all")[0].strip() == "Revoked 0 bypass token(s)."


@pytest.mark.django_db
def test_command_bypass_url_stays_untranslated() -> None:
    with translation.override("de"):
        out, err = run("bypass", "--minutes", "5")
    assert out.startswith("https://example.com/?maintenance_bypass=")
    assert err.startswith("Umgehungs-Token Nr. ")


@pytest.mark.django_db
def test_command_schedule_in_french() -> None:
    with translation.override("fr"):
        out, _ = run("schedule", "--start", "2030-01-01T02:00Z")
    window = MaintenanceWindow.objects.get()
    assert out.strip() == (
        f"Fenêtre n°\u00a0{window.pk} programmée pour le site 1\u00a0: 2030-01-01T02:00:00+00:00 – sans fin prévue"
    )


@pytest.mark.parametrize(
    ("language", "texts"),
    [
        ("de", ["Wartungsmodus für Websites (Standard: SITE_ID)", "Alle Websites (der globale Schalter)."]),
        ("fr", ["Mode maintenance des sites", "Tous les sites (l’interrupteur global)."]),
        ("es", ["Modo de mantenimiento para sitios", "Todos los sitios (el interruptor global)."]),
        ("en", ["Maintenance mode for sites (default: SITE_ID)", "Every site (the global switch)."]),
    ],
)
def test_command_help_translated(language: str, texts: list[str]) -> None:
    with translation.override(language):
        text = " ".join(Command().create_parser("manage.py", "setmaintenance").format_help().split())
    for expected in texts:
        assert expected in text


# --- the catalogues -----------------------------------------------------------------------------

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "a": "\a", "b": "\b", "f": "\f", "v": "\v"}
_FORMAT = re.compile(r"%(?:\((\w+)\))?[#0 +-]*\d*(?:\.\d+)?([diouxXeEfFgGcrsa%])")


def _unquote(text: str) -> str:
    text = text.strip()
    assert text.startswith('"') and text.endswith('"'), text
    return re.sub(r"\\(.)", lambda m: _ESCAPES[m.group(1)], text[1:-1])


@dataclass
class Entry:
    msgid: str = ""
    msgctxt: str | None = None
    msgid_plural: str | None = None
    msgstr: dict[int, str] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)
    obsolete: bool = False


def parse_po(path: Path) -> list[Entry]:
    """A minimal .po reader (enough for catalogues written by makemessages/msgcat)."""
    entries: list[Entry] = []
    entry = Entry()
    target: tuple[str, int] | None = None
    started = False

    def finish() -> None:
        nonlocal entry, started, target
        if started:
            entries.append(entry)
        entry, started, target = Entry(), False, None

    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line:
            finish()
            continue
        if line.startswith("#~"):
            entry.obsolete = started = True
            continue
        if line.startswith("#,"):
            if started and target is not None and target[0] == "msgstr":
                finish()
            entry.flags |= {flag.strip() for flag in line[2:].split(",")}
            continue
        if line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        if keyword.startswith('"'):
            assert target is not None, f"{path}: continuation without a keyword: {raw!r}"
            rest, keyword = line, ""
        else:
            if keyword in ("msgid", "msgctxt") and target is not None and target[0] == "msgstr":
                finish()
            started = True
            match = re.fullmatch(r"msgstr\[(\d+)\]", keyword)
            target = ("msgstr", int(match.group(1))) if match else (keyword, 0)
            assert target[0] in ("msgid", "msgctxt", "msgid_plural", "msgstr"), f"{path}: {raw!r}"
        value = _unquote(rest)
        name, index = target
        if name == "msgstr":
            entry.msgstr[index] = entry.msgstr.get(index, "") + value
        elif name == "msgctxt":
            entry.msgctxt = (entry.msgctxt or "") + value
        elif name == "msgid_plural":
            entry.msgid_plural = (entry.msgid_plural or "") + value
        else:
            entry.msgid += value
    finish()
    return entries


def header(entries: list[Entry]) -> dict[str, str]:
    (head,) = [e for e in entries if e.msgid == "" and e.msgctxt is None]
    assert "fuzzy" not in head.flags, "the header is marked fuzzy (msgfmt would ignore it)"
    return dict(line.split(": ", 1) for line in head.msgstr[0].splitlines() if line)


def nplurals(entries: list[Entry]) -> int:
    match = re.search(r"nplurals\s*=\s*(\d+)", header(entries)["Plural-Forms"])
    assert match
    return int(match.group(1))


def placeholders(text: str) -> list[str]:
    return sorted(f"%({name})" if name else f"%{kind}" for name, kind in _FORMAT.findall(text) if kind != "%")


def messages(entries: list[Entry]) -> list[Entry]:
    return [e for e in entries if e.msgid or e.msgctxt is not None]


def po_path(language: str) -> Path:
    return LOCALE / language / "LC_MESSAGES" / "django.po"


@pytest.mark.parametrize("language", LANGUAGES)
def test_catalogue_is_complete_without_fuzzy_entries(language: str) -> None:
    entries = parse_po(po_path(language))
    info = header(entries)
    assert info["Language"] == language
    assert "charset=UTF-8" in info["Content-Type"]
    forms = nplurals(entries)
    found = messages(entries)
    assert len(found) > 100
    problems = []
    for entry in found:
        key = entry.msgid if entry.msgctxt is None else f"{entry.msgctxt}|{entry.msgid}"
        if entry.obsolete:
            problems.append(f"obsolete: {key!r}")
        if "fuzzy" in entry.flags:
            problems.append(f"fuzzy: {key!r}")
        expected_indexes = set(range(forms)) if entry.msgid_plural is not None else {0}
        if set(entry.msgstr) != expected_indexes:
            problems.append(f"forms {sorted(entry.msgstr)} instead of {sorted(expected_indexes)}: {key!r}")
        for index, text in entry.msgstr.items():
            if not text.strip():
                problems.append(f"untranslated: {key!r}[{index}]")
                continue
            source = entry.msgid if index == 0 or entry.msgid_plural is None else entry.msgid_plural
            if "python-format" in entry.flags and placeholders(text) != placeholders(source):
                problems.append(f"placeholders {placeholders(text)} != {placeholders(source)}: {key!r}[{index}]")
            if "<code>" in source and text.count("<code>") != source.count("<code>"):
                problems.append(f"markup changed: {key!r}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("language", LANGUAGES)
def test_plural_forms_render(language: str) -> None:
    """Our plural rules give a singular for 1 and a plural for 2, whatever Django's own catalogue says.

    (Django's plural rules for a language differ between releases — fr and es in 5.2, 6.0, 6.1 —
    and Django keeps catalogues with different rules apart, so ours need not copy its header.)
    """
    singular = plural = "Revoked %(count)d bypass token(s)."
    with translation.override(language):
        one = translation.ngettext(singular, plural, 1) % {"count": 1}
        two = translation.ngettext(singular, plural, 2) % {"count": 2}
    assert one != two
    assert "1" in one and "2" in two
    assert "Revoked" not in one + two


@pytest.mark.parametrize("language", LANGUAGES)
def test_compiled_catalogue_matches_the_po_file(language: str) -> None:
    """The committed .mo holds exactly the .po's translations (i.e. compilemessages was run)."""
    mo_path = po_path(language).with_suffix(".mo")
    with mo_path.open("rb") as fp:
        compiled = gettext.GNUTranslations(fp)
    catalog: dict[Any, str] = dict(compiled._catalog)  # type: ignore[attr-defined]
    catalog.pop("", None)  # the header
    expected: dict[Any, str] = {}
    for entry in messages(parse_po(po_path(language))):
        key = entry.msgid if entry.msgctxt is None else f"{entry.msgctxt}\x04{entry.msgid}"
        if entry.msgid_plural is None:
            expected[key] = entry.msgstr[0]
        else:
            expected.update({(key, index): text for index, text in entry.msgstr.items()})
    assert catalog == expected


def test_catalogues_are_in_sync_with_the_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """makemessages on the app finds exactly the msgids in the catalogues: none missing, none stale.

    Needs GNU gettext (xgettext, msgmerge), as makemessages does.
    """
    copy = tmp_path / "maintenance_flags"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("locale", "__pycache__", "*.pyc"))
    (copy / "locale").mkdir()
    monkeypatch.chdir(copy)
    call_command("makemessages", locale=["fr"], verbosity=0)
    generated = copy / "locale" / "fr" / "LC_MESSAGES" / "django.po"
    fresh = {(e.msgctxt, e.msgid, e.msgid_plural) for e in messages(parse_po(generated))}
    for language in LANGUAGES:
        shipped = {(e.msgctxt, e.msgid, e.msgid_plural) for e in messages(parse_po(po_path(language)))}
        missing = sorted(str(m) for m in fresh - shipped)
        stale = sorted(str(m) for m in shipped - fresh)
        assert not missing and not stale, f"{language}: missing {missing}; stale {stale}"


def test_required_french_wording() -> None:
    with translation.override("fr"):
        text = translation.gettext("Scheduled maintenance on %(day)s from %(start)s to %(end_time)s")
    assert text == "Maintenance programmée le %(day)s de %(start)s à %(end_time)s"
