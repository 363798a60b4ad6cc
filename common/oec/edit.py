"""Minimal-diff edits of OEC system files.

Every OEC file is exactly what serialising its parsed tree gives (OEC's CI rewrites any file
to that form), so an edit changes the lxml tree and serialises it again: an element whose
value changed is one changed line, an inserted element one new line, and every other line
stays byte for byte as it was (comments, non-ASCII, element order included).

Where a new field goes (``insertion_index``): next to its closest relative in the template
order of its object (``vocab.FIELD_ORDER``, template.xml's order extended):

1. right after the existing field that comes closest *before* it in that order;
2. if there is none, right before the existing field that comes closest *after* it;
3. if the object has no fields, right after its last ``<name>``/``<list>``;
4. otherwise as its first child (so before any child object).

Real files follow no common order (KOI stars list magnitudes before their name, many planets
have ``<list>`` after ``<description>``), so anchoring on the nearest relative keeps a new
``<radius>`` beside ``<mass>``, a new ``<lastupdate>`` beside ``<discoverymethod>`` or
``<istransiting>``, whatever the file's own order is.

A new planet goes after the last ``<planet>`` of its host; a host without planets gets it
after its last star/binary, or else at its end; never after a system's ``<constellation>``,
which README says is the last child.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from lxml import etree

from common.changes import ChangeKind, FieldChange, NewPlanet
from common.errors import InvalidSystemFileError
from common.oec import vocab
from common.oec.tree import find, parse_system, serialize, value_of
from common.records import PlanetRecord, Value

_NAME_AND_LISTS = frozenset({"name", "list"})


def _indent(depth: int) -> str:
    # OEC files: one TAB per level, LF line ends (README).
    return "\n" + "\t" * depth


def _depth(element: etree._Element) -> int:
    return sum(1 for _ in element.iterancestors())


def _is_field(element: etree._Element) -> bool:
    return isinstance(element.tag, str) and element.tag not in vocab.OBJECTS


def set_value(element: etree._Element, value: Value) -> None:
    """Write ``value`` into ``element``: text and exactly ``value``'s attributes, in order.

    Attributes the new value lacks go (the errors of a value replaced by a limit, a
    ``type="msini"`` of a mass that is now a true mass).
    """
    if not has_content(value):
        # CI deletes an element with neither text nor attributes: that is a removal, which
        # a FieldChange never means.
        raise ValueError(f"empty value for <{element.tag}>")
    for name in list(element.attrib):
        del element.attrib[name]
    for name, text in value.attributes().items():
        element.set(name, text)
    # CI strips values when it rewrites a file; a padded value would be rewritten.
    element.text = value.value.strip() if value.value and value.value.strip() else None


def has_content(value: Value) -> bool:
    """False for a value that would make an empty tag (CI deletes those)."""
    return bool((value.value or "").strip()) or bool(value.attributes())


def leaf(tag: str, value: Value) -> etree._Element:
    """A new field element holding ``value``."""
    element = etree.Element(tag)
    set_value(element, value)
    return element


def insert_child(parent: etree._Element, index: int, child: etree._Element) -> None:
    """Insert ``child`` at ``index`` with OEC's indentation, touching no other line."""
    depth = _depth(parent) + 1
    if len(parent) == 0:
        parent.text = _indent(depth)
        child.tail = _indent(depth - 1)
    elif index == 0:
        child.tail = parent.text
    else:
        before = parent[index - 1]
        child.tail = before.tail
        before.tail = _indent(depth)
    parent.insert(index, child)
    indent_block(child, depth)


def indent_block(element: etree._Element, depth: int) -> None:
    """Indent the inside of an element written at ``depth`` (its own tail is not touched)."""
    children = list(element)
    if not children:
        return
    element.text = _indent(depth + 1)
    for index, child in enumerate(children):
        child.tail = _indent(depth + 1 if index < len(children) - 1 else depth)
        indent_block(child, depth + 1)


def rank(object_tag: str, tag: str) -> int:
    """The place of ``tag`` in ``object_tag``'s field order; ValueError if it never goes there."""
    order = vocab.FIELD_ORDER[object_tag]
    if tag not in order or tag not in vocab.ALLOWED_CHILDREN[object_tag]:
        raise ValueError(f"<{tag}> does not belong in <{object_tag}>")
    return order.index(tag)


def insertion_index(obj: etree._Element, tag: str) -> int:
    """Where a new ``<tag>`` field goes among the children of ``obj`` (rule: module doc)."""
    own = rank(obj.tag, tag)
    children = list(obj)
    before: tuple[int, int] | None = None  # (rank, index) of the closest earlier relative
    after: tuple[int, int] | None = None  # (rank, index) of the closest later relative
    last_name_or_list: int | None = None
    for index, child in enumerate(children):
        if not _is_field(child):
            continue
        if child.tag in _NAME_AND_LISTS:
            last_name_or_list = index
            continue
        if child.tag not in vocab.FIELD_ORDER[obj.tag]:
            continue
        other = vocab.FIELD_ORDER[obj.tag].index(child.tag)
        if other <= own and (before is None or other >= before[0]):
            before = (other, index)
        if other > own and (after is None or other < after[0]):
            after = (other, index)
    if before is not None:
        return before[1] + 1
    if after is not None:
        return after[1]
    if last_name_or_list is not None:
        return last_name_or_list + 1
    return 0


def add_field(obj: etree._Element, tag: str, value: Value) -> etree._Element:
    """Add a field missing from ``obj`` as one new line at its place (module doc)."""
    element = leaf(tag, value)
    insert_child(obj, insertion_index(obj, tag), element)
    return element


def needs_istransiting(values: dict[str, Value]) -> bool:
    """OEC's CI adds ``<istransiting>1</istransiting>`` to a planet with a transittime or
    found by transit that has no istransiting (any value, even 0, satisfies it)."""
    if values.get("istransiting") is not None and values["istransiting"].value:
        return False
    transittime = values.get("transittime")
    method = values.get("discoverymethod")
    return bool(transittime is not None and (transittime.value or "").strip()) or (
        method is not None and (method.value or "").strip() == vocab.TRANSIT
    )


def _unique(names: Iterable[str | None]) -> list[str]:
    seen: list[str] = []
    for name in names:
        if name and name.strip() and name.strip() not in seen:
            seen.append(name.strip())
    return seen


def planet_element(
    record: PlanetRecord, parent_tag: str, grandparent_tag: str | None
) -> etree._Element:
    """A complete ``<planet>`` block for ``record``, to go inside a ``parent_tag`` object.

    Children in template.xml's order: names (primary first), lists (the status, then the
    binary list OEC's CI requires at this position), the measured values, description,
    discoverymethod, istransiting (when CI requires it), lastupdate (``record.updated`` as
    yy/mm/dd), discoveryyear, ...; empty values are left out.
    """
    values: dict[str, Value] = {}
    for tag, value in record.planet.items():
        if tag in _NAME_AND_LISTS:
            raise ValueError(f"planet field {tag!r}: names and lists come from the record")
        rank(vocab.PLANET, tag)
        if has_content(value):
            values[tag] = value
    if record.updated is not None:
        values["lastupdate"] = Value(value=record.updated.strftime(vocab.LASTUPDATE_FORMAT))
    if needs_istransiting(values):
        values["istransiting"] = Value(value="1")
    planet = etree.Element(vocab.PLANET)
    for name in _unique(record.all_names):
        etree.SubElement(planet, "name").text = name
    lists = [record.status]
    binary = vocab.binary_list(parent_tag, grandparent_tag)
    if binary is not None:
        lists.append(binary)
    for name in lists:
        etree.SubElement(planet, "list").text = name
    for tag in sorted(values, key=lambda t: rank(vocab.PLANET, t)):
        planet.append(leaf(tag, values[tag]))
    return planet


def _planet_index(parent: etree._Element) -> int:
    children = list(parent)
    planets = [i for i, c in enumerate(children) if c.tag == vocab.PLANET]
    if planets:
        return planets[-1] + 1
    hosts = [i for i, c in enumerate(children) if c.tag in (vocab.STAR, vocab.BINARY)]
    if hosts:
        return hosts[-1] + 1
    for index, child in enumerate(children):
        if parent.tag == vocab.SYSTEM and child.tag == "constellation":
            return index
    return len(children)


def add_planet(parent: etree._Element, record: PlanetRecord) -> etree._Element:
    """Append a new planet block to its host star, binary or system."""
    if parent.tag not in (vocab.SYSTEM, vocab.BINARY, vocab.STAR):
        raise ValueError(f"a planet cannot go inside <{parent.tag}>")
    grandparent = parent.getparent()
    planet = planet_element(
        record, parent.tag, grandparent.tag if grandparent is not None else None
    )
    insert_child(parent, _planet_index(parent), planet)
    return planet


def _stale(change: FieldChange, message: str) -> KeyError:
    return KeyError(f"{change.path}/{change.field}: {message} (patch made for another version)")


def _field_element(obj: etree._Element, change: FieldChange) -> etree._Element | None:
    """The element a change edits, None when the object lacks it.

    A tag OEC repeats (``separation``, once in AU and once in arcsec) is matched by the
    ``old`` value, else by unit: a separation in a unit the object lacks is a new field.
    """
    found = obj.findall(change.field)
    if change.field not in vocab.MULTI_VALUED or not found:
        return found[0] if found else None
    for element in found:
        if change.old is not None and value_of(element) == change.old:
            return element
    for element in found:
        if element.get("unit") == change.new.unit:
            return element
    return None if change.old is None else found[0]


def _apply_change(
    obj: etree._Element, change: FieldChange, element: etree._Element | None = None
) -> None:
    if change.field in _NAME_AND_LISTS or change.field in vocab.OBJECTS:
        raise ValueError(f"a FieldChange cannot edit <{change.field}>")
    if element is None:
        element = _field_element(obj, change)
    if element is None:
        if change.old is not None:
            raise _stale(change, f"no <{change.field}>, expected {change.old!r}")
        add_field(obj, change.field, change.new)
        return
    current = value_of(element)
    if change.old is not None and current != change.old:
        raise _stale(change, f"file has {current!r}, expected {change.old!r}")
    if change.old is None and change.kind == ChangeKind.ADDED:
        raise _stale(change, f"<{change.field}> is already there")
    set_value(element, change.new)


def apply_patch(
    text: str,
    changes: Sequence[FieldChange],
    new_planets: Sequence[NewPlanet],
    *,
    file: str = "<system file>",
    root: etree._Element | None = None,
) -> str:
    """``text`` with ``changes`` applied and ``new_planets`` appended, all else unchanged.

    ``root``, when given, is ``text`` already parsed: it is edited in place and so ends up
    the tree of the returned text (pass a copy to keep the original tree).

    A change updates its field in place (same line) or, if the object lacks the field,
    adds it on a new line. A planet whose transittime or discovery method is set by the
    patch also gets ``<istransiting>1</istransiting>`` if OEC's CI would add it.

    Raises KeyError when a path is not in ``text`` or when ``text`` no longer holds the
    ``old`` value a change was computed from; InvalidSystemFileError when ``text`` is not in
    the form OEC's CI writes (then no minimal diff is possible); ValueError for a change no
    OEC file can hold (a name, a list, an empty value, a tag the object never has).
    """
    if root is None:
        root = parse_system(text)
    if serialize(root) != text:
        raise InvalidSystemFileError(file, ["layout: not in the form OEC's CI writes"])
    # Resolve every path before editing: a new planet turns "/system/star/planet" ambiguous.
    targets = [(find(root, change.path), change) for change in changes]
    hosts = [(find(root, new.parent_path), new.record) for new in new_planets]
    touched: list[etree._Element] = []
    for element, change in targets:
        parent = element.getparent()
        if element.tag == change.field and parent is not None:
            obj = parent  # the path named the field element itself
            _apply_change(obj, change, element)
        else:
            obj = element
            _apply_change(obj, change)
        if obj.tag == vocab.PLANET and obj not in touched:
            touched.append(obj)
    for planet in touched:
        values = {c.tag: value_of(c) for c in planet if _is_field(c)}
        if needs_istransiting(values) and planet.find("istransiting") is None:
            add_field(planet, "istransiting", Value(value="1"))
    for parent, record in hosts:
        add_planet(parent, record)
    return serialize(root)
