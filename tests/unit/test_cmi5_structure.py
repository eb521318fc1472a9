"""cmi5 course structures: what a package must be to import (cmi5 spec 3, 8.1, 13, 14)."""
from __future__ import annotations

import io
import zipfile

import pytest

from services.progress.cmi5 import structure
from services.progress.cmi5.structure import PackageError
from services.progress.cmi5.terms import NS

TEXTS = ('<title><langstring lang="en">T</langstring></title>'
         '<description><langstring lang="en">D</langstring></description>')


def xml(body: str, course_id: str = "https://example.org/course", objectives: str = "") -> bytes:
    return (f'<courseStructure xmlns="{NS}"><course id="{course_id}">{TEXTS}</course>{objectives}{body}'
            f'</courseStructure>').encode()


def au(au_id="https://example.org/au/1", url="https://example.org/au.html", attrs="", extra=""):
    return f'<au id="{au_id}" {attrs}>{TEXTS}<url>{url}</url>{extra}</au>'


def refused(content: bytes, content_type="text/xml") -> PackageError:
    with pytest.raises(PackageError) as caught:
        structure.read(content, content_type)
    return caught.value


def zipped(files: dict[str, bytes], **kw) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", **kw) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return out.getvalue()


def test_a_course_with_blocks_lists_its_aus_in_document_order():
    first = au("https://example.org/a1", attrs='moveOn="Passed" masteryScore="0.75"')
    body = (f'<block id="https://example.org/b">{TEXTS}{first}</block>'
            + au("https://example.org/a2", extra="<launchParameters> x </launchParameters>"))
    course = structure.read(xml(body)).course
    assert [a.id for a in course.aus] == ["https://example.org/a1", "https://example.org/a2"]
    assert course.aus[0].move_on == "Passed" and course.aus[0].mastery_score == 0.75
    assert course.aus[1].move_on == "NotApplicable" and course.aus[1].launch_parameters == "x"
    assert [b.id for b in course.blocks] == ["https://example.org/b"]
    assert structure.from_dict(structure.to_dict(course)) == course


@pytest.mark.parametrize(("body", "course_id", "requirement", "element"), [
    (au(), "example.org/course", "3.0.0.0-1", "course"),
    (au("urn:x:1") + au("urn:x:1"), "https://example.org/course", "13.1.4.0-1", "au"),
    (f'<block id="urn:b">{TEXTS}{au()}</block><block id="urn:b">{TEXTS}{au("urn:a2")}</block>',
     "https://example.org/course", "13.1.2.0-1", "block"),
    (au(url="http://example.com index.html"), "https://example.org/course", "13.1.4.0-2", "au"),
    (au(url="index.html"), "https://example.org/course", "14.2.0.0-1", "au"),
    (au(url="https://example.org/x?fetch=1"), "https://example.org/course", "8.1.0.0-6", "au"),
    (au(attrs='moveOn="Sometimes"'), "https://example.org/course", "13.2.0.0-1", "au"),
    (au(attrs='masteryScore="1.5"'), "https://example.org/course", "13.2.0.0-1", "au"),
    (au(attrs='launchMethod="NewTab"'), "https://example.org/course", "13.2.0.0-1", "au"),
    ('<au id="urn:a"><url>https://example.org</url>' + TEXTS + "</au>", "https://example.org/course",
     "13.2.0.0-1", "au"),
    ("", "https://example.org/course", "13.2.0.0-1", "courseStructure"),
])
def test_packages_breaking_a_rule_are_refused_naming_it(body, course_id, requirement, element):
    error = refused(xml(body, course_id))
    assert (error.requirement, error.element.split()[0]) == (requirement, element)


def test_objective_ids_are_unique_iris():
    objective = f'<objective id="urn:o">{TEXTS}</objective>'
    assert refused(xml(au(), objectives=f"<objectives>{objective}{objective}</objectives>")).requirement == "13.1.3.0-1"
    bad = f'<objectives><objective id="no-scheme">{TEXTS}</objective></objectives>'
    assert refused(xml(au(), objectives=bad)).requirement == "3.0.0.0-1"


def test_xml_with_a_dtd_or_entities_is_refused():
    bomb = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>'
    assert refused(bomb).requirement == "13.2.0.0-1"


def test_zip_packages():
    good = zipped({"cmi5.xml": xml(au(url="content/index.html?a=1")), "content/index.html": b"hi"})
    package = structure.read(good, "application/zip")
    assert package.files["content/index.html"] == b"hi"
    assert refused(zipped({"cmi5.xml": xml(au(url="missing.html"))}), "application/zip").requirement == "14.1.0.0-4"
    assert refused(zipped({"other.xml": b"<x/>"}), "application/zip").requirement == "14.1.0.0-2"
    assert refused(b"plain text", "application/zip").requirement == "14.1.0.0-1"
    assert refused(b"# markdown", "text/markdown").requirement == "14.0.0.0-1"
    escaping = zipped({"cmi5.xml": xml(au()), "../evil": b"x"})
    assert refused(escaping, "application/zip").requirement == "14.1.0.0-1"


def test_zip64_packages_import():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("cmi5.xml", xml(au(url="index.html")))
        with z.open("index.html", "w", force_zip64=True) as f:
            f.write(b"<html/>")
    assert structure.read(out.getvalue(), "application/zip").files["index.html"] == b"<html/>"


def test_a_thousand_aus():
    course = structure.read(xml("".join(au(f"urn:au:{i}") for i in range(1000)))).course
    assert len(course.aus) == 1000
