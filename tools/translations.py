"""Update the message catalogs (shared/translations/<locale>/LC_MESSAGES/messages.po)
from the sources, and compile them (.mo, committed: a fresh clone runs without a build
step). `make translations`; then translate what is new in vi's .po and run it again.

The words come from the templates and the Python sources (`_`, `gettext`, `lazy_gettext`)
and, with the context "csv", from every export's columns: those are looked up by their
value at run time (shared.i18n.csv_headers), which no extractor can see.
"""
from __future__ import annotations

import io
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

from services.certification import export as certification_export
from services.progress import queries as progress_queries
from shared.i18n import LOCALES, TRANSLATIONS

ROOT = Path(__file__).resolve().parent.parent
METHODS = [("shared/**.py", "python"), ("services/**.py", "python"),
           ("services/**/templates/**.html", "jinja2"), ("shared/templates/**.html", "jinja2")]
KEYWORDS = {"_": None, "gettext": None, "lazy_gettext": None, "pgettext": ((1, "c"), 2)}
CSV_COLUMNS = sorted({*progress_queries.CSV_COLUMNS, *certification_export.CSV_COLUMNS})


def template() -> Catalog:
    pot = Catalog(project="learnstream")
    for _file, _line, message, comments, context in extract_from_dir(
            ROOT, METHODS, keywords=KEYWORDS, comment_tags=("i18n:",)):
        pot.add(message, context=context, auto_comments=comments)
    for column in CSV_COLUMNS:
        pot.add(column, context="csv")
    return pot


def po_path(locale: str) -> Path:
    return TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po"


def compiled(po_text: bytes, locale: str) -> bytes:
    out = io.BytesIO()
    write_mo(out, read_po(io.BytesIO(po_text), locale=locale))
    return out.getvalue()


def main() -> None:
    pot = template()
    for locale in LOCALES:
        path = po_path(locale)
        path.parent.mkdir(parents=True, exist_ok=True)
        catalog = read_po(path.open("rb"), locale=locale) if path.exists() else Catalog(locale=locale)
        created = catalog.creation_date
        catalog.update(pot, no_fuzzy_matching=True)
        catalog.creation_date = created  # unchanged sources: an unchanged file
        catalog.obsolete.clear()
        catalog.project, catalog.version, catalog.fuzzy = "learnstream", "", False
        out = io.BytesIO()
        write_po(out, catalog, omit_header=False, sort_output=True, no_location=True, width=120)
        path.write_bytes(out.getvalue())
        path.with_suffix(".mo").write_bytes(compiled(out.getvalue(), locale))
        missing = [m.id for m in catalog if m.id and not m.string and locale != "en"]
        print(f"{locale}: {len(catalog)} messages, {len(missing)} untranslated")


if __name__ == "__main__":
    main()
