"""The built wheel is the whole service: installed into a fresh venv, it initialises the demo and serves its pages.

The fresh venv gets gridmap only from the wheel (``--no-deps``); its dependencies come from this test run's
own site-packages through a ``.pth`` file, so the test needs no network.  A ``.pth`` line only appends a
folder to ``sys.path`` (the ``.pth`` files inside it, such as an editable install's, are not run), and the
fresh venv's own site-packages comes first: the test checks that gridmap is imported from there.
"""

from __future__ import annotations

import http.cookiejar
import os
import re
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from gridmap import resources
from gridmap.demo.users import DEMO_PASSWORD
from prodserver import production_server

ROOT = Path(__file__).resolve().parent.parent

#: Where the wheel must carry each folder the running service reads (source folder → folder in the wheel).
SHIPPED = {
    "templates": "gridmap/templates",
    "geodata": "gridmap/geodata",
    "gridmap/static": "gridmap/static",
    "gridmap/translations": "gridmap/translations",
    "gridmap/data": "gridmap/data",
    "gridmap/storage/migrations": "gridmap/storage/migrations",
}


def source_files(folder: str) -> set[str]:
    """The files under ``folder`` of the checkout, relative to it (bytecode caches left out)."""
    base = ROOT / folder
    return {path.relative_to(base).as_posix() for path in base.rglob("*")
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel built from this checkout, offline (the build backend is installed in the test venv)."""
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                    "--disable-pip-version-check", "--quiet", "--wheel-dir", str(out), str(ROOT)],
                   check=True, timeout=300)
    (built,) = out.glob("gridmap-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    """A fresh venv with the wheel installed and this run's dependencies reachable; its folder."""
    folder = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True, timeout=120)
    python = folder / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index",
                    "--disable-pip-version-check", "--quiet", str(wheel)], check=True, timeout=300)
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                             check=True, capture_output=True, text=True, env=clean_env()).stdout.strip()
    ours = [entry for entry in sys.path if Path(entry).name in ("site-packages", "dist-packages")]
    (Path(purelib) / "_test_run_dependencies.pth").write_text("".join(f"{entry}\n" for entry in ours))
    return folder


def clean_env(**settings: str) -> dict[str, str]:
    """This environment without the checkout on PYTHONPATH and without GRIDMAP_* settings, plus ``settings``."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("PYTHONPATH", "PYTHONHOME") and not key.startswith("GRIDMAP_")}
    env["PYTHONNOUSERSITE"] = "1"
    env.update({f"GRIDMAP_{key.upper()}": value for key, value in settings.items()})
    return env


def test_the_wheel_carries_every_template_layer_static_file_translation_data_file_and_migration(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    for source, target in SHIPPED.items():
        expected = source_files(source)
        assert expected, f"{source} is empty in the checkout"
        missing = sorted(name for name in expected if f"{target}/{name}" not in names)
        assert missing == [], f"the wheel lacks these files of {source}/ (expected under {target}/)"
    assert "gridmap/storage/migrations/script.py.mako" in names
    assert any(name.startswith("gridmap/storage/migrations/versions/") for name in names)
    assert "gridmap/translations/en/LC_MESSAGES/messages.mo" in names


def test_the_fresh_venv_imports_gridmap_and_its_files_from_the_wheel_not_from_the_checkout(venv, tmp_path):
    probe = ("import gridmap, gridmap.resources as r, gridmap.web as w, gridmap.settings as s; "
             "print(gridmap.__file__); print(w.TEMPLATES); print(s.BUNDLED_GEODATA); print(w.STATIC)")
    result = subprocess.run([str(venv / "bin" / "python"), "-c", probe], capture_output=True, text=True,
                            cwd=tmp_path, env=clean_env(), check=True, timeout=120)
    lines = result.stdout.split()
    assert len(lines) == 4, result.stdout
    for line in lines:
        path = Path(line).resolve()
        assert path.is_relative_to(venv.resolve()), f"{path} is not inside the fresh venv {venv}"
        assert path.exists(), path
    assert Path(lines[1]).name == "templates" and Path(lines[1]).parent.name == "gridmap"
    assert Path(lines[2]).name == "geodata" and Path(lines[2]).parent.name == "gridmap"


def test_the_installed_wheel_initialises_the_demo_and_serves_the_login_page_and_the_map(venv, database_url,
                                                                                          tmp_path):
    env = clean_env(instance=str(tmp_path / "instance"), database_url=database_url)
    gridmap = str(venv / "bin" / "gridmap")
    init = subprocess.run([gridmap, "init", "--demo"], capture_output=True, text=True, cwd=tmp_path, env=env,
                          timeout=600)
    assert init.returncode == 0, f"gridmap init --demo failed:\n{init.stdout}\n{init.stderr}"
    assert "demo issues" in init.stdout

    with serving(gridmap, env, tmp_path) as base:
        browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        status, login_page = fetch(browser, f"{base}/login")
        assert status == 200
        assert "用户名" in login_page and 'name="password"' in login_page
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', login_page)
        assert csrf, login_page

        # Translations: the English catalogue (.mo) came with the wheel.
        status, english = fetch(browser, f"{base}/login?lang=en")
        assert status == 200 and "Log in" in english and "User name" in english

        form = {"csrf_token": csrf.group(1), "name": "admin", "password": DEMO_PASSWORD, "next": "/?lang=zh_CN"}
        status, overview = fetch(browser, f"{base}/login", data=form)
        assert status == 200
        # The district overview: the bundled Tianya layer set, the demo year's issues, the map and its assets.
        assert "三亚市天涯区" in overview
        assert "L.map(" in overview
        assert len(set(re.findall(r'"code":\s*"(\d{12,15})"', overview))) > 50, "the areas are not on the map"
        total = re.search(r'<dd id="total">([\d,]+)</dd>', overview)
        assert total and int(total.group(1).replace(",", "")) > 0, "the demo issues are not on the map"
        assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', overview)
        assert "/static/vendor/leaflet/leaflet.js" in assets, assets
        for path in assets:
            status, _body = fetch(browser, base + path.replace("&amp;", "&"))
            assert status == 200, path


def fetch(opener: urllib.request.OpenerDirector, url: str, data: dict[str, str] | None = None) -> tuple[int, str]:
    """GET (or POST ``data`` as a form) ``url``, following redirects; the final status and body."""
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    try:
        with opener.open(url, data=body, timeout=60) as response:
            return response.status, response.read().decode("utf-8", errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode("utf-8", errors="replace")


def serving(gridmap: str, env: dict[str, str], folder: Path):
    """`gridmap serve` of the fresh venv on a free loopback port, in ``env`` alone; yields its base URL."""
    return production_server(env, folder / "serve.log", threads=2, command=[gridmap], cwd=folder,
                             inherit_environment=False)


# gridmap.resources: the in-package copy first, the checkout's top-level folder as the fallback.

@pytest.fixture
def layout(tmp_path, monkeypatch) -> Iterator[tuple[Path, Path]]:
    checkout, package = tmp_path / "checkout", tmp_path / "checkout" / "gridmap"
    package.mkdir(parents=True)
    monkeypatch.setattr(resources, "PACKAGE", package)
    monkeypatch.setattr(resources, "CHECKOUT", checkout)
    yield checkout, package


def test_a_resource_inside_the_package_wins_over_the_checkout(layout):
    checkout, package = layout
    (checkout / "pyproject.toml").write_text("")
    (checkout / "templates").mkdir()
    (package / "templates").mkdir()
    assert resources.resource("templates") == package / "templates"


def test_a_resource_missing_from_the_package_is_taken_from_the_checkout(layout):
    checkout, package = layout
    (checkout / "pyproject.toml").write_text("")
    (checkout / "geodata").mkdir()
    assert resources.resource("geodata") == checkout / "geodata"


def test_a_folder_beside_an_installed_package_is_not_taken_for_the_checkout(layout):
    site_packages, package = layout  # no pyproject.toml: this is, say, site-packages
    (site_packages / "geodata").mkdir()
    assert resources.resource("geodata") == package / "geodata"


def test_a_resource_found_nowhere_is_named_where_the_package_would_have_it(layout):
    _checkout, package = layout
    assert resources.resource("data/categories.csv") == package / "data" / "categories.csv"
