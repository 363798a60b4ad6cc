"""OEC's rules for a system file: what OEC's CI would reject, rewrite or flag.

The rules are those of OEC's CI script (``cleanup.py``) as summarised in data/README.md, each
checked on all 7,035 files of the 2026-08-22 snapshot. A problem is one string
``"<rule>: <where>: <what>"``; ``<where>`` names the object by its primary name (not by its
position), so the problems of a file before and after an edit can be compared:
:func:`new_problems` lists those an edit introduced. Legacy problems that real files carry
(see ``LEGACY_RULES``) then do not block an edit that leaves them as they were.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import PurePath

from lxml import etree

from common.errors import InvalidSystemFileError
from common.oec import vocab
from common.oec.tree import parse_system, path_of, serialize

# rule -> what it enforces. The first group fails OEC's CI, the second is rewritten by it
# (so the PR would not be what we reviewed), the third is flagged by it, the last is ours.
RULES: dict[str, str] = {
    "not-xml": "the text is not well-formed XML",
    "root": "the root element is not <system>",
    "unknown-tag": "a tag outside OEC's vocabulary",
    "unknown-attribute": "an attribute other than errorminus/plus, lower/upperlimit, type, unit",
    "not-a-number": "non-numeric text in a numeric tag or numeric attribute",
    "lastupdate": "a planet's lastupdate is not a valid yy/mm/dd date up to this year",
    "discoverymethod": "a discovery method outside OEC's seven",
    "missing-discoverymethod": "a confirmed planet without a discovery method",
    "list": "a list outside OEC's ten",
    "status": "a planet not in exactly one status list",
    "duplicate": "a single-valued tag twice in one object",
    "missing-name": "a system, star or planet without a name",
    "file-name": "the file name is not the first system name without apostrophes + .xml",
    "several-hosts": "more than one star/binary directly in the system",
    # Rewritten by CI.
    "declaration": "an XML declaration (OEC files have none)",
    "final-newline": "the text does not end with exactly one newline",
    "line-endings": "CR characters (OEC files use LF)",
    "comment": "a comment or processing instruction (CI's parser drops them)",
    "indentation": "indentation other than one TAB per level",
    "whitespace": "a value with surrounding whitespace or a no-break space",
    "layout": "not byte-identical to what OEC's CI writes for this tree",
    "empty-tag": "an element without text, attributes or children",
    "zero-error": "an error attribute that is empty or zero",
    "one-sided-error": "errorminus without errorplus or the reverse",
    # CI converts unit="me"/"re"/"rad"; other units outside the snapshot's set are ours.
    "unit": "a unit outside the time units (on times) and AU/arcsec (on separation)",
    # The "unknown name", "value not 0/1" and "list in the wrong position" halves are ours.
    "constellation": "no <constellation> (CI adds it) or an unknown one",
    "istransiting": "no istransiting for a planet with a transittime or found by transit",
    "binary-list": "planets of a binary need P-type, planets of a star in a binary S-type",
    # Flagged by CI (a printed warning, not a failure).
    "heavy-planet": "a confirmed planet above 60 Jupiter masses",
    # Ours: stricter than CI, every snapshot file but the legacy ones passes them.
    "misplaced-tag": "a known tag inside an object that never holds it",
    "negative-error": "a negative error (README: both errors are positive)",
    "position": "rightascension not 'hh mm ss[.s]' or declination not '±dd mm ss[.s]'",
    "constellation-position": "<constellation> is not the system's last child",
}

# Problems of the text's form: when one is found, the catch-all "layout" is not added.
_LAYOUT_RULES = frozenset(
    {
        "declaration", "final-newline", "line-endings", "comment", "indentation",
        "whitespace", "empty-tag",
    }
)  # fmt: skip

# Rules some snapshot files break (CI accepts them): counts in the 2026-08-22 snapshot.
LEGACY_RULES: dict[str, int] = {"negative-error": 4}


def rule_of(problem: str) -> str:
    """The rule id of a problem string."""
    return problem.split(":", 1)[0]


def _describe(element: etree._Element) -> str:
    """Where an element is, by the primary name of its object (stable across edits)."""
    if element.tag in vocab.OBJECTS:
        name = element.findtext("name")
        if name and name.strip():
            return f'{element.tag} "{name.strip()}"'
        parent = element.getparent()
        # Nameless binaries (106 in the snapshot): their path is the only handle.
        return f"{element.tag} {path_of(element)}" if parent is not None else element.tag
    parent = element.getparent()
    owner = _describe(parent) if parent is not None else ""
    return f"{owner} <{element.tag}>".strip()


class _Checker:
    def __init__(
        self, text: str, file: str, today: dt.date, root: etree._Element | None = None
    ) -> None:
        self.text = text
        self.file = file
        self.today = today
        self.root = root
        self.found: list[str] = []

    def add(self, rule: str, element: etree._Element | None, message: str) -> None:
        where = _describe(element) if element is not None else PurePath(self.file).name
        self.found.append(f"{rule}: {where}: {message}")

    def run(self) -> list[str]:
        root = self.root
        if root is None:
            try:
                root = parse_system(self.text)
            except etree.XMLSyntaxError as error:
                self.add("not-xml", None, str(error))
                return self.found
        if root.tag != vocab.SYSTEM:
            self.add("root", None, f"root is <{root.tag}>")
            return self.found
        self.check_text_form()
        self.check_layout(root)
        self.check_elements(root)
        self.check_system(root)
        for planet in root.iter(vocab.PLANET):
            self.check_planet(planet)
        # Whatever CI's writer would still change once the named layout problems are fixed
        # (quote style, character references, ``<a/>``): one catch-all problem.
        named = {rule_of(p) for p in self.found} & _LAYOUT_RULES
        if not named and serialize(root) != self.text:
            self.add("layout", None, "the text differs from OEC's serialisation of its tree")
        return self.found

    # -- the text as a whole ------------------------------------------------------------
    def check_text_form(self) -> None:
        text = self.text
        if text.lstrip("\ufeff \t\r\n").startswith("<?xml"):
            self.add("declaration", None, "the file starts with an XML declaration")
        if "\r" in text:
            self.add("line-endings", None, "CR characters in the file")
        if not text.endswith("\n") or text.endswith("\n\n"):
            self.add("final-newline", None, "the file must end with exactly one newline")

    def check_layout(self, element: etree._Element, depth: int = 0) -> None:
        # CI re-indents every file with one TAB per level and strips values; anything else
        # in the whitespace is a rewrite.
        children = list(element)
        if not children:
            if element.text is not None:
                if element.text != element.text.strip():
                    self.add("whitespace", element, "value with surrounding whitespace")
                if "\xa0" in element.text:
                    self.add("whitespace", element, "no-break space in the value")
            return
        if element.text is not None and element.text.strip():
            self.add("indentation", element, "text mixed with child elements")
        elif element.text != "\n" + "\t" * (depth + 1):
            self.add("indentation", children[0], "not indented by one TAB per level")
        for index, child in enumerate(children):
            last = index == len(children) - 1
            tail = child.tail or ""
            if tail.strip():
                self.add("indentation", child, "text after the element")
            elif tail != "\n" + "\t" * (depth if last else depth + 1):
                # A tail is the indentation of the next line: blame that line.
                if last:
                    self.add("indentation", element, "closing tag not indented by TABs")
                else:
                    self.add("indentation", children[index + 1], "not indented by one TAB")
            if isinstance(child.tag, str):
                self.check_layout(child, depth + 1)
            else:
                self.add("comment", element, "comment or processing instruction")

    # -- every element --------------------------------------------------------------------
    def check_elements(self, root: etree._Element) -> None:
        # Every file of a cold run goes through here (0.5 ms each): each element's text,
        # attributes and parent are taken from lxml once.
        for element in root.iter(etree.Element):
            tag = str(element.tag)
            parent = element.getparent()
            if tag not in vocab.KNOWN_TAGS:
                self.add("unknown-tag", element, f"<{tag}> is not an OEC tag")
            elif (
                parent is not None
                and (allowed := vocab.ALLOWED_CHILDREN.get(parent.tag)) is not None
                and tag not in allowed
            ):
                self.add("misplaced-tag", element, f"<{tag}> inside <{parent.tag}>")
            text = element.text
            attrib = element.attrib
            if attrib or tag in vocab.NUMERIC_TAGS:
                self.check_attributes(element, tag, text, attrib)
            if not attrib and not (text or "").strip() and len(element) == 0:
                self.add("empty-tag", element, "no value, no attributes")
            if tag in vocab.OBJECTS:
                self.check_duplicates(element)
                if tag in (vocab.PLANET, vocab.STAR) and not (element.findtext("name") or ""):
                    self.add("missing-name", element, f"<{tag}> without a <name>")
            elif tag == "list" and (text or "").strip() not in vocab.LISTS:
                self.add("list", element, f"unknown list {text!r}")
            elif tag == "discoverymethod" and text not in vocab.DISCOVERY_METHODS:
                self.add("discoverymethod", element, f"unknown method {text!r}")

    def check_attributes(
        self,
        element: etree._Element,
        tag: str,
        text: str | None,
        attrib: etree._Attrib,
    ) -> None:
        numeric = tag in vocab.NUMERIC_TAGS
        for key, value in attrib.items():
            name = str(key)
            if name not in vocab.ATTRIBUTES:
                self.add("unknown-attribute", element, f"attribute {name}={value!r}")
            elif name == "unit" and value not in vocab.UNITS.get(tag, ()):
                self.add("unit", element, f"unit={value!r} on <{tag}>")
        if not numeric:
            return
        if text and not vocab.is_number(text.strip()):
            self.add("not-a-number", element, f"value {text!r}")
        for key, value in attrib.items():
            name = str(key)
            if name not in vocab.NUMERIC_ATTRIBUTES:
                continue
            number = str(value)
            if not vocab.is_number(number):
                # An empty error is dropped by CI (a rewrite), any other junk fails it.
                if name in vocab.ERROR_ATTRIBUTES and not number:
                    self.add("zero-error", element, f"{name}=''")
                else:
                    self.add("not-a-number", element, f"{name}={number!r}")
            elif name in vocab.ERROR_ATTRIBUTES:
                if float(number) == 0:
                    self.add("zero-error", element, f"{name}={number!r}")
                elif float(number) < 0:
                    self.add("negative-error", element, f"{name}={number!r}")
        minus, plus = vocab.ERROR_ATTRIBUTES
        if (minus in attrib) != (plus in attrib):
            self.add("one-sided-error", element, "only one of errorminus/errorplus")

    def check_duplicates(self, element: etree._Element) -> None:
        counts = Counter(c.tag for c in element if isinstance(c.tag, str))
        for tag, count in counts.items():
            if count > 1 and tag not in vocab.MULTI_VALUED:
                self.add("duplicate", element, f"<{tag}> {count} times")

    # -- the system -----------------------------------------------------------------------
    def check_system(self, root: etree._Element) -> None:
        name = root.findtext("name")
        if not name:
            self.add("missing-name", root, "the system has no <name>")
        elif self.file and vocab.file_name_for(name) != PurePath(self.file).name:
            self.add("file-name", None, f"file should be named {vocab.file_name_for(name)!r}")
        hosts = len(root.findall(vocab.STAR)) + len(root.findall(vocab.BINARY))
        if hosts > 1:
            self.add("several-hosts", root, f"{hosts} stars/binaries at the top level")
        for tag, pattern in (
            ("rightascension", vocab.RIGHT_ASCENSION_PATTERN),
            ("declination", vocab.DECLINATION_PATTERN),
        ):
            element = root.find(tag)
            if element is not None and element.text and not pattern.fullmatch(element.text):
                self.add("position", element, f"malformed {tag} {element.text!r}")
        constellation = root.find("constellation")
        if constellation is None:
            if PurePath(self.file).name != vocab.SUN_FILE:
                self.add("constellation", root, "no <constellation> (CI would add one)")
        else:
            if (constellation.text or "") not in vocab.CONSTELLATIONS:
                self.add("constellation", constellation, f"unknown {constellation.text!r}")
            children = [c for c in root if isinstance(c.tag, str)]
            if children[-1] is not constellation:
                self.add("constellation-position", constellation, "not the last child")

    # -- planets --------------------------------------------------------------------------
    def check_planet(self, planet: etree._Element) -> None:
        lists = [(e.text or "").strip() for e in planet.findall("list")]
        statuses = [name for name in lists if name in vocab.STATUS_LISTS]
        if len(statuses) != 1:
            self.add("status", planet, f"in {len(statuses)} status lists {statuses}")
        # CI: `.//binary/planet` need P-type, `.//binary/star/planet` need S-type.
        parent = planet.getparent()
        assert parent is not None  # a planet always sits in a system, binary or star
        grandparent = parent.getparent()
        needed = vocab.binary_list(parent.tag, grandparent.tag if grandparent is not None else None)
        if needed and needed not in lists:
            self.add("binary-list", planet, f"missing list {needed!r}")
        for wrong in {vocab.S_TYPE, vocab.P_TYPE} - {needed}:
            if wrong in lists:
                self.add("binary-list", planet, f"in {wrong!r} but not in that position")
        # CI adds <istransiting> when the planet has none (any value, even 0, stops it).
        transittime = planet.findtext(".//transittime")
        method = planet.findtext(".//discoverymethod")
        istransiting = planet.findtext(".//istransiting")
        if (transittime or method == vocab.TRANSIT) and not istransiting:
            self.add("istransiting", planet, "transiting planet without <istransiting>")
        if istransiting and istransiting not in ("0", "1"):
            self.add("istransiting", planet, f"istransiting {istransiting!r} is not 0 or 1")
        for element in planet.findall("lastupdate"):
            self.check_lastupdate(element)
        if vocab.CONFIRMED in lists:
            if planet.findtext("discoverymethod") is None:
                self.add("missing-discoverymethod", planet, "confirmed planet without one")
            mass = planet.findtext("mass")
            if mass and vocab.is_number(mass) and float(mass) > vocab.CONFIRMED_MASS_LIMIT:
                self.add("heavy-planet", planet, f"mass {mass} M_Jup > 60")

    def check_lastupdate(self, element: etree._Element) -> None:
        text = element.text or ""
        try:
            if not vocab.LASTUPDATE_PATTERN.fullmatch(text):
                raise ValueError(text)
            date = dt.datetime.strptime(text, vocab.LASTUPDATE_FORMAT).date()
        except ValueError:
            self.add("lastupdate", element, f"{text!r} is not yy/mm/dd")
            return
        # CI rejects a two-digit year beyond the current one.
        if date.year > self.today.year:
            self.add("lastupdate", element, f"{text!r} is in the future")


def problems(
    text: str, file: str, *, today: dt.date | None = None, root: etree._Element | None = None
) -> list[str]:
    """Every violation of OEC's rules in ``text``, the content of ``file``.

    ``file`` is the file's path or name (``systems/11 Com.xml``); only its last part is used,
    for the file name rule and the Sun.xml exemption (an empty ``file`` skips the name rule).
    ``today`` fixes the date the lastupdate rule compares against. ``root`` is ``text``
    already parsed (only read here), to save a parse.
    """
    return _Checker(text, file, today or dt.date.today(), root).run()


def new_problems(
    old_text: str,
    new_text: str,
    file: str,
    *,
    today: dt.date | None = None,
    old_root: etree._Element | None = None,
    new_root: etree._Element | None = None,
) -> list[str]:
    """The problems of ``new_text`` that ``old_text`` did not have (as a multiset).
    ``old_root`` and ``new_root`` are the texts already parsed, if at hand."""
    after = problems(new_text, file, today=today, root=new_root)
    if not after:
        return []  # the usual case: no need to look at the old text at all
    before = Counter(problems(old_text, file, today=today, root=old_root))
    introduced: list[str] = []
    for problem in after:
        if before[problem]:
            before[problem] -= 1
        else:
            introduced.append(problem)
    return introduced


def ensure_valid(
    text: str, file: str, *, old_text: str | None = None, today: dt.date | None = None
) -> None:
    """Raise InvalidSystemFileError if ``text`` breaks a rule (one ``old_text`` did not).

    With ``old_text`` only problems the edit introduced count, so a legacy problem of the
    original file does not block an unrelated update.
    """
    if old_text is None:
        found = problems(text, file, today=today)
    else:
        found = new_problems(old_text, text, file, today=today)
    if found:
        raise InvalidSystemFileError(file, found)
