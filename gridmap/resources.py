"""Where the files the service ships with are: inside the installed package, or in the source checkout.

An installed wheel carries everything inside ``gridmap/`` (``gridmap/templates``, ``gridmap/geodata``,
``gridmap/static``, ...). A source checkout (also an editable install) keeps ``templates/`` and
``geodata/`` at the repository's top level, where the project was specified to have them; the build maps
them into the package (pyproject.toml, ``[tool.hatch.build.targets.wheel]``).
"""

from __future__ import annotations

from pathlib import Path

#: The folder of the imported ``gridmap`` package.
PACKAGE = Path(__file__).resolve().parent

#: The repository root when running from a source checkout (it has the project's pyproject.toml).
CHECKOUT = PACKAGE.parent


def resource(name: str) -> Path:
    """The shipped file or folder ``name`` (e.g. ``"templates"``, ``"data/categories.csv"``), wherever it is.

    The in-package copy wins; the checkout's top-level one is used only when the package has none and the
    parent folder really is this project's checkout (not, say, a stray ``site-packages/geodata``). When
    neither exists the in-package path is returned, so the error that follows names where it was expected.
    """
    inside = PACKAGE / name
    if inside.exists():
        return inside
    outside = CHECKOUT / name
    if outside.exists() and (CHECKOUT / "pyproject.toml").is_file():
        return outside
    return inside
