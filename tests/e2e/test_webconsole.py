"""The web console in Debian's headless Chromium (Playwright, executable_path: no browser is downloaded),
served by `virtctl ui` against the local cluster: the list shows the demo VM Running, stop and start from the
page change its status, the serial console shows the boot marker, VNC draws a non-blank framebuffer, a VM
created from the form boots, and a view-only user gets no action buttons. Screenshots of each page go to
tests/e2e/artifacts/ (git-ignored)."""
import json
import re
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.e2e import cluster as c

pytestmark = pytest.mark.e2e

VM, NS = "vm-demo", "default"
CREATED = "vm-from-the-form"
VIEWER = "webconsole-viewer"
ARTIFACTS = REPO / "tests" / "e2e" / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
wait_for, get = c.wait_for, c.get

if not Path(CHROMIUM).exists():
    pytest.skip("needs Debian's chromium (make browser)", allow_module_level=True)


def running_vmi(name=VM):
    vmi = get("vmi", name, NS)
    return vmi if vmi and vmi["status"].get("phase") == "Running" and not vmi["metadata"].get("deletionTimestamp") \
        else None


class ConsoleProcess:
    """`virtctl ui --no-browser` with a kubeconfig; url is the printed address (with its token)."""

    def __init__(self, kubeconfig):
        self.proc = subprocess.Popen([str(REPO / ".venv" / "bin" / "virtctl"), "--kubeconfig", str(kubeconfig), "ui",
                                      "--no-browser"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        line = self.proc.stdout.readline()
        match = re.search(r"(http://\S+)", line)
        assert match, f"virtctl ui printed {line!r}"
        self.url = match.group(1)
        self.seconds = None

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture(scope="module")
def demo(cluster):
    vm = get("vm", VM, NS)
    if vm is None:
        c.kubectl("apply", "-f", str(c.DEMO_MANIFEST))
    elif vm["spec"].get("runStrategy") == "Halted":
        subprocess.run([str(REPO / "hack" / "virtctl.sh"), "start", VM, "-n", NS], check=True, timeout=60)
    wait_for("vm-demo Running", running_vmi, c.BOOT_TIMEOUT, 5)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from playwright.sync_api import sync_playwright
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=CHROMIUM, headless=True,
            args=CHROMIUM_ARGS, viewport={"width": 1280, "height": 800},
            ignore_https_errors=True)  # the in-cluster console's certificate is signed by the cluster's own CA
        yield context
        context.close()


@pytest.fixture(scope="module")
def admin_console(demo):
    console = ConsoleProcess(c.KUBECONFIG)
    yield console
    console.stop()


@pytest.fixture
def page(browser, admin_console):
    page = browser.new_page()
    start = time.monotonic()
    page.goto(admin_console.url)
    page.wait_for_selector(f"tr[data-vm='{NS}/{VM}']", timeout=30000)
    print(f"\nweb console: VM list rendered {time.monotonic() - start:.2f}s after opening the address")
    yield page
    page.close()


def shot(page, name, full_page=True):
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=full_page)


def open_details(page, name=VM):
    page.goto(page.url.split("#")[0] + f"#/vms/{NS}/{name}")
    page.wait_for_selector("#vm-title", timeout=30000)


def status_is(page, text, timeout):
    page.wait_for_function(
        "t => document.querySelector('.title-row .status')?.textContent === t", arg=text, timeout=timeout * 1000)


def test_the_list_shows_the_demo_vm_running_at_both_widths(page):
    row = page.locator(f"tr[data-vm='{NS}/{VM}']")
    row.get_by_text("Running").wait_for(timeout=60000)
    assert row.locator("td[data-label='Node']").inner_text() != "—"
    row.get_by_role("button", name=f"Stop {VM}").wait_for(timeout=30000)  # once the access review answered
    shot(page, "list-1280x800", full_page=False)
    page.set_viewport_size({"width": 400, "height": 800})
    row.get_by_role("button", name=f"Stop {VM}").wait_for(timeout=10000)  # one card per VM, still usable
    assert page.evaluate("document.documentElement.scrollWidth") <= 400  # nothing sticks out sideways
    shot(page, "list-400px", full_page=False)
    page.set_viewport_size({"width": 1280, "height": 800})


def test_the_serial_console_shows_the_boot_marker(page):
    open_details(page)
    terminal = page.get_by_test_id("serial-console")
    page.wait_for_function("m => document.querySelector('[data-testid=serial-console]').innerText.includes(m)",
                           arg=c.DEMO_MARKER, timeout=60000)
    terminal.click()
    start = time.monotonic()
    page.keyboard.type("echo typed-in-the-browser-$((6*7))\n")
    page.wait_for_function("() => document.querySelector('[data-testid=serial-console]').innerText"
                           ".includes('typed-in-the-browser-42')", timeout=30000)
    print(f"\nweb console: a typed command's output on the serial console after {time.monotonic() - start:.2f}s")
    page.keyboard.press("Control+BracketRight")  # keyboard users leave the terminal (Tab goes to the guest)
    assert page.evaluate("document.activeElement.classList.contains('pane-status')")
    shot(page, "details-serial-console")


def test_vnc_draws_a_non_blank_framebuffer(page):
    open_details(page)
    start = time.monotonic()
    page.get_by_role("button", name="VNC").click()
    page.get_by_text("VNC: Connected").wait_for(timeout=60000)
    print(f"\nweb console: VNC connected {time.monotonic() - start:.2f}s after the click")
    lit = 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and lit < 500:
        time.sleep(2)
        lit = page.evaluate("""() => {
            const canvas = document.querySelector('[data-testid=vnc-screen] canvas');
            if (!canvas || !canvas.width) return 0;
            const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
            let lit = 0;
            for (let i = 0; i < data.length; i += 4) if (data[i] + data[i + 1] + data[i + 2] > 96) lit++;
            return lit;
        }""")
    assert lit >= 500, f"only {lit} lit pixels on the VNC canvas"
    shot(page, "details-vnc", full_page=False)


def test_stop_and_start_from_the_page_change_the_status(page):
    open_details(page)
    page.get_by_role("button", name=f"Stop {VM}").click()
    dialog = page.get_by_role("dialog")
    dialog.wait_for(timeout=10000)  # it opens on the next render; is_visible() would not wait for it
    assert "Stop vm-demo?" in dialog.inner_text()
    shot(page, "confirm-stop", full_page=False)
    dialog.get_by_role("button", name="Stop").click()
    status_is(page, "Stopped", 300)
    shot(page, "details-stopped", full_page=False)
    page.get_by_role("button", name=f"Start {VM}").click()
    status_is(page, "Running", c.BOOT_TIMEOUT)
    wait_for("vm-demo Running again", running_vmi, 120)


def test_a_vm_created_from_the_form_boots(page):
    if get("vm", CREATED, NS):
        c.kubectl("delete", "vm", CREATED, "-n", NS, "--wait=true", timeout=300)
    page.get_by_role("link", name="Create VM").click()
    page.get_by_label("Name", exact=True).fill("Bad_Name")
    page.get_by_role("button", name="Create and start").click()
    page.get_by_text("Use lower-case letters").wait_for(timeout=10000)  # checked before anything is sent
    page.get_by_label("Name", exact=True).fill(CREATED)
    page.get_by_label("Cloud-init user data (optional)").fill("#!/bin/sh\necho created from the web console\n")
    shot(page, "create-form")
    page.get_by_role("button", name="Create and start").click()
    page.wait_for_selector("#vm-title", timeout=30000)
    assert page.locator("#vm-title").inner_text() == CREATED
    status_is(page, "Running", c.BOOT_TIMEOUT)
    page.wait_for_function("() => document.querySelector('[data-testid=serial-console]')?.innerText"
                           ".includes('created from the web console')", timeout=c.BOOT_TIMEOUT * 1000)
    shot(page, "created-vm")
    page.get_by_role("button", name=f"Delete {CREATED}").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    page.wait_for_selector(f"tr[data-vm='{NS}/{VM}']", timeout=30000)  # back on the list
    wait_for(f"{CREATED} deleted", lambda: get("vm", CREATED, NS) is None, 300)


@pytest.fixture(scope="module")
def viewer_kubeconfig(cluster, tmp_path_factory):
    """A ServiceAccount bound to the built-in view role (which aggregates kubevirt.io:view)."""
    c.kubectl("create", "serviceaccount", VIEWER, "-n", NS, check=False)
    c.kubectl("create", "rolebinding", VIEWER, "-n", NS, "--clusterrole=view", f"--serviceaccount={NS}:{VIEWER}",
              check=False)
    token = c.kubectl("create", "token", VIEWER, "-n", NS, "--duration=1h").strip()
    config = json.loads(c.kubectl("config", "view", "--raw", "--minify", "-o", "json"))
    cluster_entry = config["clusters"][0]
    path = tmp_path_factory.mktemp("viewer") / "kubeconfig"
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "viewer",
        "clusters": [cluster_entry],
        "users": [{"name": VIEWER, "user": {"token": token}}],
        "contexts": [{"name": "viewer", "context": {"cluster": cluster_entry["name"], "user": VIEWER,
                                                    "namespace": NS}}]}))
    yield path, token
    c.kubectl("delete", "rolebinding", VIEWER, "-n", NS, "--ignore-not-found", check=False)
    c.kubectl("delete", "serviceaccount", VIEWER, "-n", NS, "--ignore-not-found", check=False)


def test_a_view_only_user_gets_no_action_buttons(browser, demo, viewer_kubeconfig):
    console = ConsoleProcess(viewer_kubeconfig[0])
    page = browser.new_page()
    try:
        page.goto(console.url)
        row = page.locator(f"tr[data-vm='{NS}/{VM}']")
        row.wait_for(timeout=60000)  # cluster-wide listing is forbidden: the console falls back to its namespace
        row.get_by_text("View only").wait_for(timeout=30000)
        assert page.get_by_role("button", name=re.compile(f"^(Start|Stop|Restart|Pause|Delete) {VM}$")).count() == 0
        assert f"system:serviceaccount:{NS}:{VIEWER}" in page.locator("header .user").inner_text()
        shot(page, "view-only-list", full_page=False)
        open_details(page)
        page.get_by_text("View only").wait_for(timeout=10000)
        assert page.get_by_role("button", name=f"Stop {VM}").count() == 0
        shot(page, "view-only-details", full_page=False)
    finally:
        page.close()
        console.stop()



def test_in_the_cluster_users_sign_in_with_their_own_token(browser, demo, viewer_kubeconfig):
    """kubevirt_ui_enabled: the console runs as a Deployment without any ServiceAccount token; the viewer signs
    in with theirs and sees what RBAC lets them see, nothing more."""
    c.run_playbook("deploy", *c.DEPLOY_EXTRA, "-e", "kubevirt_ui_enabled=true")
    pod = c.kubectl_json("get", "pods", "-n", c.KUBEVIRT_NAMESPACE, "-l", "kubevirt.io=virt-ui")["items"][0]
    assert pod["spec"]["automountServiceAccountToken"] is False
    assert not any("serviceaccount" in (m.get("mountPath") or "")
                   for m in pod["spec"]["containers"][0].get("volumeMounts") or [])
    forward = subprocess.Popen([str(c.KUBECTL), "--kubeconfig", str(c.KUBECONFIG), "-n", c.KUBEVIRT_NAMESPACE,
                                "port-forward", "svc/virt-ui", ":443"], stdout=subprocess.PIPE, text=True)
    page = None
    try:
        port = int(re.search(r"127\.0\.0\.1:(\d+)", forward.stdout.readline()).group(1))
        page = browser.new_page()
        page.goto(f"https://127.0.0.1:{port}/")
        page.get_by_label("Bearer token").fill("not-a-token")
        page.get_by_role("button", name="Sign in").click()
        page.get_by_text("refused this token").wait_for(timeout=30000)
        shot(page, "in-cluster-sign-in-refused", full_page=False)
        page.get_by_label("Bearer token").fill(viewer_kubeconfig[1])
        page.get_by_role("button", name="Sign in").click()
        row = page.locator(f"tr[data-vm='{NS}/{VM}']")
        row.get_by_text("View only").wait_for(timeout=60000)
        assert f"system:serviceaccount:{NS}:{VIEWER}" in page.locator("header .user").inner_text()
        shot(page, "in-cluster-view-only", full_page=False)
    finally:
        if page:
            page.close()
        forward.terminate()
        forward.wait(10)
