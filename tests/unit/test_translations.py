"""The committed catalogs: every word of the sources translated into Vietnamese, and
each .mo compiled from its .po as it is now (`make translations` does both)."""
from __future__ import annotations

from babel.messages.pofile import read_po

from shared.i18n import LOCALES
from tools import translations


def test_every_message_of_the_sources_and_every_export_column_has_a_vietnamese_translation():
    wanted = {(m.context, m.id) for m in translations.template() if m.id}
    catalog = read_po(translations.po_path("vi").open("rb"), locale="vi")
    have = {(m.context, m.id): m.string for m in catalog if m.id}
    assert not wanted - set(have), "run `make translations` and translate what is new"
    assert not [key for key in wanted if not have[key]]
    assert ("csv", "learner_name") in wanted and ("csv", "final_test_best_score") in wanted
    assert (None, "Sign out") in wanted  # the shared templates' words too (shared/templates/session)


def test_the_compiled_catalogs_are_those_of_the_po_files():
    for locale in LOCALES:
        po = translations.po_path(locale)
        assert po.with_suffix(".mo").read_bytes() == translations.compiled(po.read_bytes(), locale), locale
