"""The docs site, as a reader gets it: built from the notebooks, served over HTTP, opened in headless Chromium.

Every page loads with its title, the sidebar follows `_quarto.yml`, every internal link and anchor resolves,
every image loads, nbdev's directives are applied and the API reference shows signatures and docstrings.
"""
from __future__ import annotations

import base64
import binascii
import inspect
import io
import os
import re
import shutil
import subprocess
import tempfile
import threading
import urllib.error
import urllib.request
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import nbformat
import pytest
import yaml
from bs4 import BeautifulSoup
from nbdev.doclinks import _nbpath2html  # nbdev's own page naming: the oracle for ours

from ainative.docs import build_site

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # 127.0.0.1 never goes through a proxy


def _figures_notebook(nbs: Path) -> None:
    "A notebook with stored outputs (a matplotlib plot, a linked image) and every directive, added to the site."
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    figure, axes = plt.subplots(figsize=(4, 3))
    axes.bar(["refund", "delivery"], [5, 7])
    axes.set_title("Examples per label")
    png = io.BytesIO()
    figure.savefig(png, format="png")
    plt.close(figure)
    (nbs / "images").mkdir(exist_ok=True)
    (nbs / "images" / "diagram.png").write_bytes(png.getvalue())
    plot = nbformat.v4.new_output("display_data", data={"image/png": base64.b64encode(png.getvalue()).decode(),
                                                        "text/plain": "<Figure size 400x300>"})
    cells = [nbformat.v4.new_markdown_cell("# Figures\n\n> Stored outputs, images and directives."),
             nbformat.v4.new_markdown_cell("## Linked\n\n![a diagram](images/diagram.png)\n\n"
                                           "See [`prepare_data`](01_data.ipynb#prepare_data) and `stratified_split`."),
             nbformat.v4.new_code_cell("plot_labels()", outputs=[plot]),
             nbformat.v4.new_code_cell("#| hide\nHIDDEN_SOURCE = 1"),
             nbformat.v4.new_code_cell("#| echo: false\nECHO_SOURCE = 1",
                                       outputs=[nbformat.v4.new_output("stream", name="stdout", text="ECHO_OUTPUT\n")]),
             nbformat.v4.new_code_cell("#| output: false\nOUTPUT_SOURCE = 1",
                                       outputs=[nbformat.v4.new_output("stream", name="stdout", text="OUTPUT_HIDDEN\n")])]
    nbformat.write(nbformat.v4.new_notebook(cells=cells), nbs / "98_figures.ipynb")


@pytest.fixture(scope="module")
def nbs(tmp_path_factory) -> Path:
    "A copy of the project's nbs/ (with _quarto.yml) plus the figures notebook."
    nbs = tmp_path_factory.mktemp("project") / "nbs"
    shutil.copytree(ROOT / "nbs", nbs, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))  # follows _quarto.yml's link
    _figures_notebook(nbs)
    return nbs


@pytest.fixture(scope="module")
def site(nbs, tmp_path_factory) -> Path:
    return build_site(tmp_path_factory.mktemp("docs") / "site", nbs)


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args): pass


@pytest.fixture(scope="module")
def base_url(site):
    "The site served by http.server on 127.0.0.1, on a free port, from a background thread."
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def _chromium() -> str:
    if CHROMIUM: return CHROMIUM
    if os.environ.get("CI"): pytest.fail("Chromium is missing in CI: .ci/run installs it with apt-get (package chromium).")
    pytest.skip("Chromium is not installed (apt-get install chromium): the site is not checked in a browser.")


def _run_chromium(*args: str) -> str:
    with tempfile.TemporaryDirectory() as profile:
        command = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                   "--no-proxy-server", "--disable-background-networking", "--disable-component-update",
                   "--disable-sync", f"--user-data-dir={profile}", *args]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.fixture(scope="module")
def dom(base_url):
    "The DOM of a page of the site after Chromium loaded it (and ran its scripts), parsed; cached per page."
    cache = {}
    def load(page: str) -> BeautifulSoup:
        if page not in cache: cache[page] = BeautifulSoup(_run_chromium("--dump-dom", urljoin(base_url, page)), "html.parser")
        return cache[page]
    return load


def _http_get(url: str) -> tuple[int, bytes]:
    try:
        with NO_PROXY.open(url, timeout=30) as response: return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, b""


def _notebook_title(notebook: Path) -> str:
    "The page title a notebook should get: the text of its first `# ` heading."
    first = next(c for c in nbformat.read(notebook, as_version=4).cells if c.cell_type == "markdown")
    return re.match(r"#\s+(.+)", first.source.strip()).group(1).strip()


def _site_notebooks(nbs: Path) -> list[Path]:
    return sorted(p for p in nbs.rglob("*.ipynb") if not any(s.startswith(("_", ".")) for s in p.relative_to(nbs).parts))


def test_every_notebook_is_a_page(nbs, site):
    "One page per notebook, named as nbdev names it, and nothing else; `make docs` builds the site, CI can open it."
    expected = {_nbpath2html(nb.relative_to(nbs)).as_posix() for nb in _site_notebooks(nbs)}
    assert {p.relative_to(site).as_posix() for p in site.rglob("*.html")} == expected
    assert {"index.html", "getting_started.html", "data.html", "figures.html"} <= expected
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^docs:.*\n\t.*build_site\(\)", makefile, re.M), "the `docs` target must call build_site()"
    ci = (ROOT / ".ci" / "run").read_text()
    assert "apt-get install -y -qq chromium" in ci and ci.index("chromium") < ci.index("make test")


def test_every_page_loads_with_its_title(nbs, base_url, dom):
    "Each page answers 200 over HTTP and, in Chromium, has the notebook's title in <title> and in its heading."
    for notebook in _site_notebooks(nbs):
        page = _nbpath2html(notebook.relative_to(nbs)).as_posix()
        status, _ = _http_get(urljoin(base_url, page))
        assert status == 200, page
        title = _notebook_title(notebook)
        document = dom(page)
        assert document.title.get_text() == f"{title} – ainative", page
        assert document.select_one("main h1.title").get_text(strip=True) == title, page
        main = document.select_one("main")
        for navigation in main.select("nav"): navigation.decompose()  # the neighbours' titles are not this page's text
        assert len(main.get_text(strip=True)) > 100, f"{page} is nearly empty"


def test_sidebar_is_quarto_contents_then_unlisted_pages(nbs, dom):
    "The sidebar lists `website.sidebar.contents` in order, then the other notebooks; each page marks itself."
    contents = yaml.safe_load((nbs / "_quarto.yml").read_text())["website"]["sidebar"]["contents"]
    listed = [_nbpath2html(Path(entry)).as_posix() for entry in contents]
    unlisted = [_nbpath2html(nb.relative_to(nbs)).as_posix() for nb in _site_notebooks(nbs)
                if nb.relative_to(nbs).as_posix() not in contents]
    assert listed[:2] == ["index.html", "getting_started.html"] and "figures.html" in unlisted
    for page in ["index.html", "data.html", "figures.html"]:
        sidebar = dom(page).select("nav.sidebar a")
        assert [a["href"] for a in sidebar] == listed + unlisted
        assert [a["href"] for a in sidebar if "active" in a.get("class", [])] == [page]
    assert dom("data.html").select_one("header.topbar a.brand")["href"] == "index.html"  # the index is home


def test_internal_links_resolve(nbs, base_url, dom):
    "Every link to the site itself reaches a page that exists and, for `#anchor` links, an element with that id."
    checked, broken, fragments = 0, [], 0
    for notebook in _site_notebooks(nbs):
        page = _nbpath2html(notebook.relative_to(nbs)).as_posix()
        for anchor in dom(page).find_all("a", href=True):
            url = urljoin(urljoin(base_url, page), anchor["href"])
            parts = urlsplit(url)
            if f"{parts.scheme}://{parts.netloc}/" != base_url: continue  # another site: not ours to check
            target = parts.path.lstrip("/") or "index.html"
            status, _ = _http_get(urljoin(base_url, target))
            if status != 200:
                broken.append(f"{page}: {anchor['href']} -> HTTP {status}")
            elif parts.fragment:
                fragments += 1
                if not dom(target).find(id=unquote(parts.fragment)):
                    broken.append(f"{page}: {anchor['href']} -> no element with id {unquote(parts.fragment)!r}")
            checked += 1
    assert not broken, "\n".join(broken)
    assert checked > 200 and fragments > 100, (checked, fragments)  # sidebars, tables of contents, symbol links
    figures = dom("figures.html")
    assert figures.find("a", href="data.html#prepare_data"), "a markdown link to a notebook must point to its page"
    assert figures.find("a", class_="symbol", href="data.html#stratified_split"), "backticked symbols link to their docs"


def _check_image(data: bytes, mime: str) -> None:
    "Raise unless `data` is a non-empty image of type `mime` that decodes."
    from PIL import Image
    assert data, "empty image"
    if mime == "image/svg+xml":
        assert b"<svg" in data[:2000]
    else:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
        with Image.open(io.BytesIO(data)) as image:
            assert image.size[0] > 10 and image.size[1] > 10


def test_every_image_loads(nbs, base_url, dom):
    "Every <img> is a data: URI that decodes to an image, or a file the server sends that decodes to one."
    images, problems = 0, []
    for notebook in _site_notebooks(nbs):
        page = _nbpath2html(notebook.relative_to(nbs)).as_posix()
        for image in dom(page).find_all("img"):
            source = image.get("src", "")
            try:
                if source.startswith("data:"):
                    header, _, payload = source.partition(",")
                    assert header.endswith(";base64"), f"not base64: {header}"
                    _check_image(base64.b64decode(payload, validate=True), header[5:].split(";")[0])
                else:
                    status, body = _http_get(urljoin(urljoin(base_url, page), source))
                    assert status == 200, f"HTTP {status}"
                    _check_image(body, "image/svg+xml" if source.endswith(".svg") else "image/*")
                images += 1
            except (AssertionError, OSError, binascii.Error) as e:
                problems.append(f"{page}: {source[:80]}: {e}")
    assert not problems, "\n".join(problems)
    figures = [image["src"] for image in dom("figures.html").find_all("img")]
    assert figures[0] == "images/diagram.png" and figures[1].startswith("data:image/png;base64,"), figures
    assert images >= 2


def test_directives_are_applied(dom):
    "`#| hide` drops a cell, `#| echo: false` keeps only its output, `#| output: false` only its code."
    text = dom("figures.html").select_one("main").get_text()
    assert "HIDDEN_SOURCE" not in text and "#|" not in text
    assert "ECHO_OUTPUT" in text and "ECHO_SOURCE" not in text
    assert "OUTPUT_SOURCE" in text and "OUTPUT_HIDDEN" not in text
    assert "Stored outputs, images and directives." == dom("figures.html").select_one("main .summary").get_text()


@pytest.mark.parametrize("module, name, page", [("ainative.data", "prepare_data", "data.html"),
                                                ("ainative.data", "stratified_split", "data.html"),
                                                ("ainative.core", "RunDir", "core.html"),
                                                ("ainative.training", "train_model", "training.html")])
def test_api_reference_shows_signature_and_docstring(dom, module, name, page):
    "The API block of a key symbol has its import path, its signature with every parameter, and its docstring."
    import importlib
    obj = getattr(importlib.import_module(module), name)
    heading = dom(page).find(id=name.lower())
    assert heading is not None and heading.name == "h3", f"no API block for {name} in {page}"
    block = heading.find_parent(class_="api")
    signature = block.find("pre").get_text()
    assert signature.startswith(f"{'class' if inspect.isclass(obj) else 'def'} {name}("), signature
    for parameter in inspect.signature(obj).parameters:
        assert re.search(rf"\b{parameter}\b", signature), (parameter, signature)
    docstring = " ".join(inspect.getdoc(obj).replace("`", "").split())  # backticks become <code>
    assert docstring in " ".join(block.get_text().split())
    assert block.select_one(".api-module").get_text() == f"{module}.{name}"


def test_home_page_screenshot_is_not_blank(base_url, tmp_path):
    "Chromium renders the home page at 1280x900: the dark top bar and a light, text-filled page."
    from PIL import Image
    shot = tmp_path / "home.png"
    _run_chromium("--hide-scrollbars", "--window-size=1280,900", f"--screenshot={shot}", base_url)
    with Image.open(shot) as image:
        rgb = image.convert("RGB")
        assert rgb.size == (1280, 900)
        assert sum(rgb.getpixel((640, 20))) < 200, "the top bar should be dark"
        assert sum(rgb.getpixel((1000, 600))) > 700, "the page should be light"
        assert len(rgb.crop((240, 60, 1040, 600)).getcolors(maxcolors=100_000) or []) > 50, "no text rendered"
