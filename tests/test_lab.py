"""Jupyter Lab in a real browser: what a user of `make lab` sees (run by `make lab-check`).

Starts Jupyter Lab the way `make lab` does (the project's kernel, the repository's layout) on a copy of the
notebooks in a temporary folder, opens notebook 01 in headless Chromium, runs it with its smoke parameters and a
scratch figures folder, drives the playground once, and opens every other notebook: no error output, a progress
widget during the sweep, every image loads (no 404), and the repository is left as it was. Screenshots go to a
temporary folder whose path is printed.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
TOKEN = "topogen-lab-check"
KERNEL_NAME = "Python 3 (topogen .venv)"
PROGRESS = ".widget-hprogress, .widget-progress, .jp-OutputArea .progress"  # a tqdm.auto bar: an ipywidgets one

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on this machine (make lab-check installs Debian's)"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _notebook_copy(src: Path, dst: Path, overrides: dict) -> None:
    """``src`` with ``overrides`` appended to its parameters cell (as papermill's injected values would be)."""
    nb = json.loads(src.read_text())
    for cell in nb["cells"]:
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            extra = "".join(f"{k} = {v!r}\n" for k, v in overrides.items())
            cell["source"] = "".join(cell["source"]).rstrip("\n") + "\n" + extra
    dst.write_text(json.dumps(nb))


@pytest.fixture(scope="module")
def lab():
    """A Jupyter Lab server on a free loopback port with a token, serving a copy of the repository's notebooks."""
    root = Path(tempfile.mkdtemp(prefix="topogen-lab-"))
    (root / "notebooks").mkdir()
    shutil.copytree(ROOT / "figures", root / "figures")  # the notebooks' ../figures/*.gif
    smoke = yaml.safe_load((ROOT / "notebooks" / "smoke_parameters.yml").read_text())
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        overrides = {**smoke.get(path.stem, {}), "figures_dir": str(root / "scratch")} if path.stem.startswith("01") \
            else {}
        _notebook_copy(path, root / "notebooks" / path.name, overrides)
    settings = root / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false", "checkForUpdates": false}')
    subprocess.run([sys.executable, "-m", "ipykernel", "install", "--sys-prefix", "--name", "python3",
                    "--display-name", KERNEL_NAME], check=True, capture_output=True)  # what `make lab` does
    copies = [str(p) for p in (root / "notebooks").glob("*.ipynb")]
    subprocess.run([str(Path(sys.executable).parent / "jupyter-trust"), *copies], check=True, capture_output=True)
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("TOPOGEN_BATCH", "MPLBACKEND")}  # as make lab does
    (root / "runtime").mkdir()
    env.update(JUPYTER_PATH=str(Path(sys.prefix) / "share" / "jupyter"), JUPYTERLAB_SETTINGS_DIR=str(root / "settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(root / "workspaces"))
    log = open(root / "server.log", "wb")
    cmd = [str(Path(sys.executable).parent / "jupyter-lab"), "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={root}",
           "--LabApp.default_url=/lab/tree/notebooks",
           # as make lab does: kernels on local IPC sockets, not unencrypted TCP (no ipykernel warning)
           "--KernelManager.transport=ipc", f"--KernelManager.ip={root / 'runtime' / 'kernel'}"]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root)
    base = f"http://127.0.0.1:{port}"
    for _ in range(240):
        try:
            urllib.request.urlopen(f"{base}/api/status?token={TOKEN}", timeout=2)
            break
        except OSError:
            time.sleep(0.5)
    else:
        server.terminate()
        pytest.fail("Jupyter Lab did not start: " + (root / "server.log").read_text()[-2000:])
    shots = Path(tempfile.mkdtemp(prefix="topogen-lab-screenshots-"))
    yield {"base": base, "root": root, "shots": shots}
    # Each kernel shut down through the API while the server runs (each DELETE returns once its kernel is gone), then
    # the server stopped. Left to the server's own shutdown on SIGTERM, its kernels' ZMQ streams were closed with
    # events pending and pyzmq warned "Got events for closed stream" in about one run of three.
    with urllib.request.urlopen(f"{base}/api/kernels?token={TOKEN}", timeout=30) as r:
        kernels = [k["id"] for k in json.load(r)]
    for kernel in kernels:
        urllib.request.urlopen(urllib.request.Request(f"{base}/api/kernels/{kernel}?token={TOKEN}", method="DELETE"),
                               timeout=60).close()
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=60)
    except subprocess.TimeoutExpired:
        server.kill()
    log.close()
    warnings = [line for line in (root / "server.log").read_text(errors="replace").splitlines()
                if " W " in line[:40] or "[W " in line[:3] or "WARNING" in line]
    print(f"screenshots in {shots}; server warnings: {len(warnings)}", *warnings[:20], sep="\n")
    shutil.rmtree(root, ignore_errors=True)
    # One warning is left, by choice: jupyter_server's default ping timeout (90 000) exceeds its interval (30 000),
    # which tornado reports; the settings that silence it make jupyter_server's own check close healthy connections.
    assert not [w for w in warnings if "websocket_ping_timeout" not in w], warnings


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="the Python driver: pip install -e .[browser]")
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        yield chromium
        chromium.close()


def _open(browser, lab, name: str):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    missing = []
    page.on("response", lambda r: missing.append(r.url) if r.status == 404 else None)
    page.goto(f"{lab['base']}/lab/tree/notebooks/{name}?reset&token={TOKEN}")  # reset: this notebook alone
    page.wait_for_selector(".jp-Notebook", timeout=120_000)
    # the notebook's toolbar names the project's kernel: no kernel dialog
    page.locator(".jp-NotebookPanel-toolbar :visible", has_text=KERNEL_NAME).first.wait_for(timeout=120_000)
    return page, missing


def _images_load(page) -> list:
    """The images of the open notebook that did not load (each scrolled into view first)."""
    broken = []
    for img in page.locator(".jp-NotebookPanel img").all():
        img.scroll_into_view_if_needed()
        ok = img.evaluate("i => new Promise(r => i.complete ? r(i.naturalWidth > 0) : "
                          "(i.onload = () => r(i.naturalWidth > 0), i.onerror = () => r(false)))")
        if not ok:
            broken.append(img.get_attribute("src")[:80])
    return broken


def test_kernel_is_the_project_venv(lab):
    with urllib.request.urlopen(f"{lab['base']}/api/kernelspecs?token={TOKEN}") as r:
        spec = json.load(r)["kernelspecs"]["python3"]["spec"]
    assert spec["display_name"] == KERNEL_NAME
    assert Path(spec["argv"][0]).resolve() == Path(sys.executable).resolve()  # this checkout's .venv


def test_notebook_01_runs_in_lab_with_progress_images_and_the_playground(lab, browser):
    before = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout
    page, missing = _open(browser, lab, "01_synthetic_deformation.ipynb")
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
    saw_progress, deadline = False, time.time() + 900
    while time.time() < deadline:
        saw_progress = saw_progress or page.locator(PROGRESS).count() > 0
        prompts = page.locator(".jp-InputPrompt").all_text_contents()
        text = page.locator(".jp-Notebook").text_content()
        if "clusters → one loop in" in text and not any("*" in p for p in prompts):
            break
        time.sleep(0.5)
    else:
        page.screenshot(path=str(lab["shots"] / "01_timeout.png"), full_page=True)
        pytest.fail("notebook 01 did not finish in Lab within 15 min")
    page.screenshot(path=str(lab["shots"] / "01_after_run_all.png"))
    text = page.locator(".jp-Notebook").text_content()
    assert "Traceback" not in text and "Error" not in "".join(
        page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']").all_text_contents())
    assert saw_progress, "no progress widget while the sweep ran"
    assert "<Figure size" not in text
    # the playground: change a value, press Run, see its animation
    weights = page.locator(".widget-text input").last
    weights.scroll_into_view_if_needed()
    weights.fill("bottleneck0=1")
    page.locator(".widget-button", has_text="Run").last.click()
    page.locator(".widget-output img").first.wait_for(timeout=300_000)
    page.locator(".widget-output img").first.scroll_into_view_if_needed()
    page.screenshot(path=str(lab["shots"] / "01_playground.png"))
    assert _images_load(page) == [] and not missing, missing
    after = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout
    assert after == before, "the Lab session changed the repository"
    assert sorted(p.name for p in (lab["root"] / "scratch").iterdir())  # figures went to the scratch folder
    page.close()


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "notebooks").glob("0[2-9]_*.ipynb")))
def test_every_notebook_shows_its_images(lab, browser, name):
    page, missing = _open(browser, lab, name)
    assert _images_load(page) == [] and not missing, missing
    page.screenshot(path=str(lab["shots"] / f"{name[:2]}_opened.png"))
    page.close()
