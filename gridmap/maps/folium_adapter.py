"""The one place that reaches into folium/branca objects where they have no public API.

branca (0.8) lets one add a child (``add_child``, with a name and a position) and render, but
has no public way to list an element's children or to remove one; both live in the private
``Element._children`` mapping.  folium's ``add_js_link``/``add_css_link`` change the asset list
of the class (shared by every map of the process) and cannot drop a link, so one element's
links are set as instance attributes here.  Every such use is in this module, so a release that
changes them breaks one module, and the adapter tests of ``tests/test_assets.py`` say so at once.
"""

from __future__ import annotations

from collections.abc import Iterator

from branca.element import Element, Figure
from folium.elements import JSCSSMixin


def children(element: Element) -> list[tuple[str, Element]]:
    """``element``'s children with their names, in render order."""
    return list(element._children.items())


def remove_child(element: Element, name: str) -> None:
    """Drop ``element``'s child called ``name``, if it has one."""
    element._children.pop(name, None)


def add_last(element: Element, child: Element, name: str) -> None:
    """Add ``child`` as ``element``'s last child, replacing one of the same name wherever it was."""
    remove_child(element, name)
    element.add_child(child, name=name)


def replace_child(element: Element, name: str, child: Element) -> None:
    """Put ``child`` in the place of ``element``'s child called ``name`` (public ``add_child`` with its index)."""
    position = next(i for i, (key, _child) in enumerate(children(element)) if key == name)
    element.add_child(child, name=name, index=position)


def walk(element: Element) -> Iterator[Element]:
    """``element`` and all its descendants, including the header/html/script parts of Figures."""
    stack = [element]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed([child for _name, child in children(node)]))
        if isinstance(node, Figure):
            stack.extend((node.script, node.html, node.header))


def set_asset_links(element: JSCSSMixin, js: list[tuple[str, str]], css: list[tuple[str, str]]) -> None:
    """Link ``js`` and ``css`` (name, url) for this one element, leaving its class's lists alone."""
    element.default_js = js
    element.default_css = css
