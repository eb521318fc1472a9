"""A cmi5 package's course structure: read from a cmi5.xml or a zip holding one, and
checked against the spec's rules (section 13, its XSD, and section 14 on packages).

A package that breaks a rule raises `PackageError` naming the requirement (the spec's
numbering, as ADL's test suite uses it) and the element. The XML is parsed with
defusedxml: a package is uploaded by anyone holding operator credentials, and entity
expansion or external entities must not reach the parser.
"""
from __future__ import annotations

import io
import posixpath
import re
import zipfile
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from urllib.parse import parse_qsl, urlsplit
from xml.etree.ElementTree import Element

from defusedxml import ElementTree as SafeTree
from defusedxml.common import DefusedXmlException

from services.progress.cmi5.terms import LAUNCH_METHODS, LAUNCH_QUERY, MOVE_ON, NS

# Past these, a package is refused rather than unpacked (a zip bomb is small on the wire).
MAX_FILES = 20_000
MAX_UNPACKED = 512 * 1024 * 1024

_Q = f"{{{NS}}}"
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")
# Characters RFC 3987 never allows in an IRI, unescaped.
_NOT_IRI = re.compile(r"[\s<>\"{}|\\^`\x00-\x1f\x7f]")


class PackageError(Exception):
    """A package that breaks a cmi5 requirement: 400, naming the requirement and element."""

    def __init__(self, requirement: str, element: str, message: str):
        super().__init__(f"{message} (cmi5 {requirement}, {element})")
        self.requirement = requirement
        self.element = element
        self.message = message


@dataclass(frozen=True)
class Au:
    id: str
    title: dict[str, str]
    description: dict[str, str]
    url: str
    move_on: str = "NotApplicable"
    mastery_score: float | None = None
    launch_method: str = "AnyWindow"
    activity_type: str | None = None
    launch_parameters: str | None = None
    entitlement_key: str | None = None
    objectives: tuple[str, ...] = ()


@dataclass(frozen=True)
class Block:
    id: str
    title: dict[str, str]
    description: dict[str, str]
    children: tuple[Au | Block, ...]
    objectives: tuple[str, ...] = ()


@dataclass(frozen=True)
class Course:
    id: str
    title: dict[str, str]
    description: dict[str, str]
    children: tuple[Au | Block, ...]
    objectives: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def aus(self) -> list[Au]:
        """Every AU, in the order the course structure lists them (the index launches use)."""
        return [node for node, _ in self.walk() if isinstance(node, Au)]

    @property
    def blocks(self) -> list[Block]:
        return [node for node, _ in self.walk() if isinstance(node, Block)]

    def walk(self, nodes=None, parents: tuple[Block, ...] = ()):
        """(node, its enclosing blocks, outermost first), depth first in document order."""
        for node in self.children if nodes is None else nodes:
            yield node, parents
            if isinstance(node, Block):
                yield from self.walk(node.children, (*parents, node))


@dataclass(frozen=True)
class Package:
    course: Course
    # The zip's files by path (no leading slash); empty for a cmi5.xml alone.
    files: dict[str, bytes]


def read(content: bytes, content_type: str = "") -> Package:
    """A package from what was uploaded: a zip (ZIP64 too) or a cmi5.xml."""
    ctype = content_type.split(";")[0].strip().lower()
    if zipfile.is_zipfile(io.BytesIO(content)):
        return _read_zip(content)
    if ctype in ("application/zip", "application/x-zip-compressed"):
        raise PackageError("14.1.0.0-1", "package", "the package is sent as a zip but is not a zip file")
    if not _looks_like_xml(content):
        raise PackageError("14.0.0.0-1", "package", "a package is a cmi5.xml or a zip holding one")
    return Package(parse(content, in_zip=None), {})


def _looks_like_xml(content: bytes) -> bool:
    return content.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<")


def _read_zip(content: bytes) -> Package:
    try:
        archive = zipfile.ZipFile(io.BytesIO(content))
        entries = [i for i in archive.infolist() if not i.is_dir()]
        if len(entries) > MAX_FILES or sum(i.file_size for i in entries) > MAX_UNPACKED:
            raise PackageError("14.1.0.0-1", "package", f"the zip holds more than {MAX_FILES} files or "
                                                        f"{MAX_UNPACKED // 2**20} MiB unpacked")
        files = {}
        for info in entries:
            name = posixpath.normpath(info.filename.replace("\\", "/"))
            if name.startswith(("/", "../")) or name == "..":
                raise PackageError("14.1.0.0-1", info.filename, "a file of the zip lies outside it")
            files[name] = archive.read(info)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError) as exc:
        raise PackageError("14.1.0.0-1", "package", f"the zip cannot be read: {exc}") from None
    if "cmi5.xml" not in files:
        raise PackageError("14.1.0.0-2", "cmi5.xml", "the zip has no cmi5.xml at its root")
    return Package(parse(files["cmi5.xml"], in_zip=set(files)), files)


def parse(xml: bytes, in_zip: set[str] | None) -> Course:
    """The course structure of a cmi5.xml. `in_zip`: the zip's file names, or None for
    a cmi5.xml alone (then every AU URL must be absolute: 14.2.0.0-1)."""
    try:
        root = SafeTree.fromstring(xml, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise PackageError("13.2.0.0-1", "cmi5.xml", f"the XML uses a forbidden construct: {exc}") from None
    except SafeTree.ParseError as exc:
        raise PackageError("13.2.0.0-1", "cmi5.xml", f"not well-formed XML: {exc}") from None
    if root.tag != _Q + "courseStructure":
        raise PackageError("13.2.0.0-1", _name(root), f"the root element must be courseStructure in {NS}")
    reader = _Reader(in_zip)
    return reader.course_structure(root)


def _name(el: Element) -> str:
    return el.tag.replace(_Q, "")


def _ours(el: Element) -> bool:
    """Elements of other namespaces are the XSD's extension points (xs:any ##other)."""
    return el.tag.startswith(_Q)


def is_iri(value: str) -> bool:
    return bool(_SCHEME.match(value)) and not _NOT_IRI.search(value)


class _Reader:
    def __init__(self, in_zip: set[str] | None):
        self.in_zip = in_zip
        self.seen: dict[str, str] = {}  # id -> the kind of element that holds it

    def course_structure(self, root: Element) -> Course:
        children = self._sequence(root, [("course", 1, 1), ("objectives", 0, 1)], rest=("au", "block"),
                                  rest_min=1)
        course_el = children["course"][0]
        course_id = self._id(course_el, "course", "13.1.1.0-1")
        title, description = self._texts(course_el, [])
        objectives = {}
        for objectives_el in children.get("objectives", []):
            for obj in objectives_el:
                if not _ours(obj):
                    continue
                if _name(obj) != "objective":
                    raise PackageError("13.2.0.0-1", _name(obj), "objectives holds only objective elements")
                oid = self._id(obj, "objective", "13.1.3.0-1")
                objectives[oid] = self._texts(obj, [])[0]
        nodes = tuple(self._node(el) for el in children["_rest"])
        return Course(course_id, title, description, nodes, objectives)

    def _sequence(self, el: Element, order: list[tuple[str, int, int]], rest: tuple[str, ...] = (),
                  rest_min: int = 0) -> dict[str, list[Element]]:
        """The children of `el`, checked against an XSD sequence: each name of `order` in
        turn (min..max times), then any number of `rest` (a choice)."""
        found: dict[str, list[Element]] = {"_rest": []}
        position = 0
        for child in el:
            if not _ours(child):
                continue
            name = _name(child)
            while position < len(order) and order[position][0] != name:
                wanted, least, _ = order[position]
                if len(found.get(wanted, [])) < least:
                    raise PackageError("13.2.0.0-1", _name(el),
                                       f"<{_name(el)}> needs <{wanted}> before <{name}> (course structure XSD)")
                position += 1
            if position < len(order):
                wanted, _, most = order[position]
                found.setdefault(wanted, []).append(child)
                if len(found[wanted]) > most:
                    raise PackageError("13.2.0.0-1", name, f"<{_name(el)}> holds <{name}> more than {most} time(s)")
                continue
            if name not in rest:
                raise PackageError("13.2.0.0-1", name, f"<{name}> is not allowed here in <{_name(el)}> "
                                                       f"(course structure XSD)")
            found["_rest"].append(child)
        for wanted, least, _ in order[position:]:
            if len(found.get(wanted, [])) < least:
                raise PackageError("13.2.0.0-1", _name(el), f"<{_name(el)}> needs <{wanted}> (course structure XSD)")
        if len(found["_rest"]) < rest_min:
            raise PackageError("13.2.0.0-1", _name(el), f"<{_name(el)}> needs at least one of "
                                                        f"{', '.join(rest)} (course structure XSD)")
        return found

    def _id(self, el: Element, kind: str, unique_requirement: str) -> str:
        value = (el.get("id") or "").strip()
        if not value:
            raise PackageError("13.2.0.0-1", kind, f"<{kind}> needs an id attribute")
        if not is_iri(value):
            raise PackageError("3.0.0.0-1", kind, f"the {kind} id {value!r} is not an IRI")
        if value in self.seen:
            raise PackageError(unique_requirement, kind, f"the id {value!r} is used twice (first on <"
                                                         f"{self.seen[value]}>)")
        self.seen[value] = kind
        return value

    def _texts(self, el: Element, more: list[tuple[str, int, int]]) -> tuple[dict, dict]:
        found = self._sequence(el, [("title", 1, 1), ("description", 1, 1), *more])
        return self._langstrings(found["title"][0]), self._langstrings(found["description"][0])

    def _langstrings(self, el: Element) -> dict[str, str]:
        strings = {}
        for child in el:
            if not _ours(child):
                continue
            if _name(child) != "langstring":
                raise PackageError("13.2.0.0-1", _name(child), f"<{_name(el)}> holds only langstring elements")
            strings[child.get("lang", "und")] = (child.text or "").strip()
        if not strings:
            raise PackageError("13.2.0.0-1", _name(el), f"<{_name(el)}> needs at least one langstring")
        return strings

    def _objective_refs(self, els: list[Element]) -> tuple[str, ...]:
        refs = []
        for objectives_el in els:
            for obj in objectives_el:
                if _ours(obj):
                    ref = obj.get("idref") or ""
                    if _name(obj) != "objective" or not ref:
                        raise PackageError("13.2.0.0-1", _name(obj), "objectives here are <objective idref=...>")
                    refs.append(ref)
        return tuple(refs)

    def _node(self, el: Element) -> Au | Block:
        if _name(el) == "block":
            block_id = self._id(el, "block", "13.1.2.0-1")
            found = self._sequence(el, [("title", 1, 1), ("description", 1, 1), ("objectives", 0, 1)],
                                   rest=("au", "block"), rest_min=1)
            return Block(block_id, self._langstrings(found["title"][0]),
                         self._langstrings(found["description"][0]),
                         tuple(self._node(child) for child in found["_rest"]),
                         self._objective_refs(found.get("objectives", [])))
        return self._au(el)

    def _au(self, el: Element) -> Au:
        au_id = self._id(el, "au", "13.1.4.0-1")
        found = self._sequence(el, [("title", 1, 1), ("description", 1, 1), ("objectives", 0, 1), ("url", 1, 1),
                                    ("launchParameters", 0, 1), ("entitlementKey", 0, 1)])
        move_on = el.get("moveOn", "NotApplicable")
        if move_on not in MOVE_ON:
            raise PackageError("13.2.0.0-1", "au", f"moveOn {move_on!r} is not one of {', '.join(MOVE_ON)}")
        launch_method = el.get("launchMethod", "AnyWindow")
        if launch_method not in LAUNCH_METHODS:
            raise PackageError("13.2.0.0-1", "au", f"launchMethod {launch_method!r} is not one of "
                                                   f"{', '.join(LAUNCH_METHODS)}")
        mastery = el.get("masteryScore")
        mastery_score = None
        if mastery is not None:
            try:
                value = Decimal(mastery.strip())
            except InvalidOperation:
                value = Decimal(-1)
            if not value.is_finite() or not Decimal(0) <= value <= Decimal(1):
                raise PackageError("13.2.0.0-1", "au", f"masteryScore {mastery!r} is not a decimal from 0 to 1")
            mastery_score = float(value)
        activity_type = el.get("activityType")
        if activity_type is not None and not is_iri(activity_type):
            raise PackageError("13.2.0.0-1", "au", f"activityType {activity_type!r} is not an IRI")
        url = self._url((found["url"][0].text or "").strip(), au_id)
        optional = {name: (found[name][0].text or "").strip() if name in found else None
                    for name in ("launchParameters", "entitlementKey")}
        return Au(au_id, self._langstrings(found["title"][0]), self._langstrings(found["description"][0]), url,
                  move_on, mastery_score, launch_method, activity_type, optional["launchParameters"],
                  optional["entitlementKey"], self._objective_refs(found.get("objectives", [])))

    def _url(self, url: str, au_id: str) -> str:
        element = f"au {au_id} url"
        if not url or _NOT_IRI.search(url):
            raise PackageError("13.1.4.0-2", element, f"the AU's url {url!r} is not a valid URL")
        try:
            parts = urlsplit(url)
        except ValueError:
            raise PackageError("13.1.4.0-2", element, f"the AU's url {url!r} is not a valid URL") from None
        for key, _ in parse_qsl(parts.query, keep_blank_values=True):
            if key in LAUNCH_QUERY:
                raise PackageError("8.1.0.0-6", element, f"the AU's url already has the launch parameter {key!r}, "
                                                         f"which the LMS adds")
        if parts.scheme:
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise PackageError("13.1.4.0-2", element, f"the AU's url {url!r} is not an http(s) URL")
            return url
        if self.in_zip is None:
            raise PackageError("14.2.0.0-1", element, f"the AU's url {url!r} is relative, which only a zip "
                                                      f"package (holding the file) allows")
        # A path from the root ("/x") would leave the package's own URL space.
        path = posixpath.normpath(parts.path) if parts.path else ""
        if parts.netloc or path.startswith("/") or path not in self.in_zip:
            raise PackageError("14.1.0.0-4", element, f"the AU's relative url {url!r} names no file of the zip")
        return url


def to_dict(course: Course) -> dict:
    """The course structure as JSON-ready data (what the LMS stores)."""
    def node(n):
        if isinstance(n, Block):
            return {"block": {"id": n.id, "title": n.title, "description": n.description,
                              "objectives": list(n.objectives), "children": [node(ch) for ch in n.children]}}
        return {"au": {**{k: v for k, v in n.__dict__.items() if k != "objectives"},
                       "objectives": list(n.objectives)}}
    return {"id": course.id, "title": course.title, "description": course.description,
            "objectives": course.objectives, "children": [node(n) for n in course.children]}


def from_dict(data: dict) -> Course:
    def node(n):
        if "block" in n:
            b = n["block"]
            return Block(b["id"], b["title"], b["description"], tuple(node(ch) for ch in b["children"]),
                         tuple(b["objectives"]))
        return Au(**{**n["au"], "objectives": tuple(n["au"]["objectives"])})
    return Course(data["id"], data["title"], data["description"], tuple(node(n) for n in data["children"]),
                  data["objectives"])
