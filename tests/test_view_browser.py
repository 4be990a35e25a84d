"""The viewer in a real browser: headless Chromium (Debian's ``chromium`` + ``chromium-driver``, driven
by selenium) opens the built site from disk (file://) and the DOM is checked; screenshots are saved
(``$VQA_SHAP_SCREENSHOTS`` or the test's temporary folder) and checked for content.

``scripts/run_tests.sh`` (the README's test command, which CI runs) sets ``VQA_SHAP_BROWSER=1`` and
installs Chromium where it can (root + apt-get); then these tests *fail* when they cannot run, saying
what to install. Without ``VQA_SHAP_BROWSER=1`` (a plain ``pytest`` run) they skip and say why.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from helpers_view import BROKEN, CONFIGS, ERROR, MANY, write_view_folders

try:
    from selenium import webdriver
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait
except ImportError:  # reported by _browser_required below
    webdriver = None

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
#: Set by scripts/run_tests.sh (and so by CI): the browser tests must run, not skip.
REQUIRED = os.environ.get("VQA_SHAP_BROWSER") == "1"


def missing_browser() -> str | None:
    """Why the browser tests cannot run here, or ``None``."""
    if webdriver is None:
        return "selenium is not installed (pip install -e '.[dev]')"
    if not (CHROMIUM and CHROMEDRIVER):
        return ("headless Chromium not found: install Debian's 'chromium' and 'chromium-driver' (as root: "
                "apt-get install -y chromium chromium-driver; scripts/run_tests.sh does this when run as root)")
    return None


@pytest.fixture(autouse=True, scope="module")
def _browser_required():
    reason = missing_browser()
    if reason is not None:
        if REQUIRED:
            pytest.fail(f"{reason}; or run VQA_SHAP_BROWSER=0 bash scripts/run_tests.sh to skip these tests", False)
        pytest.skip(reason)


WAIT_S = 30


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    from PIL import Image

    from vqa_shap.cli import main

    root = tmp_path_factory.mktemp("browser")
    folders = write_view_folders(root, many=130)
    report = root / "report"
    report.mkdir()
    Image.fromarray((np.random.default_rng(0).random((60, 90, 3)) * 255).astype(np.uint8)).save(report / "figure.png")
    out = root / "site"
    assert main(["view", str(folders["attributions"]), "--questions", str(folders["questions"]), "--video-root",
                 str(folders["videos"]), "--report", str(report), "--out", str(out), "--no-progress",
                 "--bootstrap", "50"]) == 0
    return out


@pytest.fixture(scope="module")
def browser():
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,1000", "--allow-file-access-from-files"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = os.environ.get("VQA_SHAP_SCREENSHOTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


def open_page(browser, site: Path, page: str, ready: str):
    browser.get(f"{site.as_uri()}/{page}")
    WebDriverWait(browser, WAIT_S).until(lambda d: d.find_elements(By.CSS_SELECTOR, ready)
                                         or d.find_elements(By.CSS_SELECTOR, "p.fail"))
    errors = browser.find_elements(By.CSS_SELECTOR, "p.fail")
    assert not errors, errors[0].text


def screenshot(browser, shots: Path, name: str) -> Path:
    """Save a full-window PNG and check it is an image with content (not blank, not one flat colour)."""
    from PIL import Image

    path = shots / f"{name}.png"
    assert browser.save_screenshot(str(path))
    with Image.open(path) as im:
        pixels = np.asarray(im.convert("RGB"), dtype=np.int16)
    assert pixels.shape[0] > 500 and pixels.shape[1] > 800
    colours = np.unique(pixels.reshape(-1, 3)[::7], axis=0)
    assert len(colours) > 50 and pixels.std() > 10, f"{path} looks empty ({len(colours)} colours)"
    return path


def styles(elements, prop: str) -> list[str]:
    return [e.value_of_css_property(prop) for e in elements]


def test_index_lists_configs_with_metrics_and_report_figures(browser, site, shots):
    open_page(browser, site, "index.html", "#metrics tbody tr")
    rows = browser.find_elements(By.CSS_SELECTOR, "#metrics tbody tr")
    assert [r.find_element(By.TAG_NAME, "a").text for r in rows] == sorted([*CONFIGS, MANY])
    cells = rows[0].find_elements(By.TAG_NAME, "td")
    assert cells[4].text == "synthetic · 400 · stderr"
    assert rows[1].find_elements(By.TAG_NAME, "td")[4].text == "permutation · 64 · stderr"
    assert "[" in cells[8].text and "]" in cells[8].text  # MC V with its interval
    mc_v = cells[8].text
    Select(browser.find_element(By.ID, "signal")).select_by_value("All")
    rows = browser.find_elements(By.CSS_SELECTOR, "#metrics tbody tr")
    assert len(rows) == 3 and rows[0].find_elements(By.TAG_NAME, "td")[8].text != mc_v
    img = browser.find_element(By.CSS_SELECTOR, ".reports img")
    assert browser.execute_script("return arguments[0].naturalWidth", img) == 90
    screenshot(browser, shots, "index")


def test_question_page_lists_every_player_with_colours(browser, site, shots):
    from test_view import read_data

    details = read_data(site / "data" / CONFIGS[0] / "chunk-0.js")
    q = next(d for d in details if d["qid"] == "mv_2")
    i = details.index(q)
    open_page(browser, site, f"question.html?c={CONFIGS[0]}&i={i}", ".panel .strip")
    frames = browser.find_elements(By.CSS_SELECTOR, ".panel .frame")
    words = browser.find_elements(By.CSS_SELECTOR, ".panel .word")
    n_video = sum(f[1] == "v" for f in q["features"])
    assert len(frames) == n_video and len(frames) + len(words) == len(q["features"])
    assert [w.text for w in words] == [f[0] for f in q["features"] if f[1] != "v"]
    borders = styles(frames, "border-top-color")
    backgrounds = styles(words, "background-color")
    assert all(c.startswith("rgb") for c in borders + backgrounds) and len(set(backgrounds)) > 3
    assert all(browser.execute_script("return arguments[0].naturalWidth", f.find_element(By.TAG_NAME, "img")) > 0
               for f in frames)
    assert all(".jpg" in f.find_element(By.TAG_NAME, "img").get_attribute("src") for f in frames)
    assert "ground truth" in browser.find_element(By.CSS_SELECTOR, ".toggle button.on").text
    assert browser.find_element(By.CSS_SELECTOR, ".legend").is_displayed()
    # the estimated error, and the players within two standard errors of zero (of the ground truth) dashed
    assert browser.find_element(By.CSS_SELECTOR, ".panel .est-error").text == q["error_label"]
    dashed = {int(e.get_attribute("data-idx")) for e in browser.find_elements(By.CSS_SELECTOR, ".panel .near-zero:not(tr)")}
    assert dashed == {i for i, row in enumerate(q["near_zero"]) if row[q["answer"]]} and dashed
    assert "within two standard errors of zero" in browser.find_element(By.CSS_SELECTOR, ".legend").text
    screenshot(browser, shots, "question")
    # the player with the largest |phi| of the ground truth is drawn at full colour (psi = ±1)
    col = [row[q["answer"]] for row in q["phi"]]
    top = int(np.argmax(np.abs(col)))
    el = browser.find_element(By.CSS_SELECTOR, f".panel [data-idx='{top}']:not(tr)")
    prop = "border-top-color" if "frame" in el.get_attribute("class") else "background-color"
    assert el.value_of_css_property(prop) in (("rgba(180, 4, 38, 1)", "rgb(180, 4, 38)") if col[top] > 0
                                              else ("rgba(59, 76, 192, 1)", "rgb(59, 76, 192)"))


def test_toggling_the_explained_option_changes_the_colours(browser, site, shots):
    open_page(browser, site, f"question.html?c={CONFIGS[0]}&i=1", ".panel .toggle")
    players = browser.find_elements(By.CSS_SELECTOR, ".panel .word") + browser.find_elements(By.CSS_SELECTOR, ".panel .frame")
    before = styles(players, "background-color") + styles(players, "border-top-color")
    buttons = browser.find_elements(By.CSS_SELECTOR, ".panel .toggle button")
    other = next(b for b in buttons if "ground truth" not in b.text and b.get_attribute("data-sel").isdigit())
    other.click()
    after = styles(players, "background-color") + styles(players, "border-top-color")
    assert after != before
    assert "on" in other.get_attribute("class")
    assert "of option " + other.text[0] in browser.find_element(By.CSS_SELECTOR, ".legend").text
    next(b for b in buttons if b.get_attribute("data-sel") == "false").click()
    assert styles(players, "background-color") + styles(players, "border-top-color") not in (before, after)
    screenshot(browser, shots, "question_toggled")


def test_broken_video_and_error_rows_are_shown_not_crashed(browser, site):
    from test_view import read_data

    details = read_data(site / "data" / CONFIGS[0] / "chunk-0.js")
    qids = [d["qid"] for d in details]
    open_page(browser, site, f"question.html?c={CONFIGS[0]}&i={qids.index(BROKEN)}", ".panel .strip")
    srcs = [img.get_attribute("src") for img in browser.find_elements(By.CSS_SELECTOR, ".panel .frame img")]
    assert srcs and all(s.endswith("assets/placeholder.svg") for s in srcs)
    assert "cannot read video" in browser.find_element(By.CSS_SELECTOR, ".panel .note").text
    open_page(browser, site, f"question.html?c={CONFIGS[0]}&i={qids.index(ERROR)}", ".panel")
    assert "missing.mp4: file not found" in browser.find_element(By.CSS_SELECTOR, ".panel").text


def test_previous_and_next_links(browser, site):
    open_page(browser, site, f"question.html?c={MANY}&i=0", ".panel")
    assert not browser.find_elements(By.ID, "prev")
    browser.find_element(By.ID, "next").click()
    WebDriverWait(browser, WAIT_S).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".panel[data-qid='q00001']"))
    assert "question 2 of 130" in browser.find_element(By.CSS_SELECTOR, ".nav").text
    open_page(browser, site, f"question.html?c={MANY}&i=129", ".panel[data-qid='q00129']")  # the last chunk
    assert not browser.find_elements(By.ID, "next")


def test_filters_sort_and_pages_of_the_question_list(browser, site, shots):
    open_page(browser, site, "questions.html", "#questions tbody tr")
    total = 2 * 4 + 130
    count = browser.find_element(By.ID, "count")
    assert count.text.startswith(f"{total} of {total} questions")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#questions tbody tr")) == 50
    Select(browser.find_element(By.ID, "f-status")).select_by_value("error")
    rows = browser.find_elements(By.CSS_SELECTOR, "#questions tbody tr")
    n_errors = 2 + 130 // 97
    assert count.text.startswith(f"{n_errors} of {total}") and len(rows) == n_errors
    assert all(r.find_elements(By.TAG_NAME, "td")[7].text == "error" for r in rows)
    Select(browser.find_element(By.ID, "f-status")).select_by_value("")
    Select(browser.find_element(By.ID, "f-benchmark")).select_by_value("mvbench")
    assert count.text.startswith(f"4 of {total}")
    Select(browser.find_element(By.ID, "f-benchmark")).select_by_value("")
    Select(browser.find_element(By.ID, "f-config")).select_by_value(CONFIGS[1])
    assert count.text.startswith(f"4 of {total}")
    Select(browser.find_element(By.ID, "f-config")).select_by_value("")
    box = browser.find_element(By.ID, "f-qid")
    box.send_keys("q0012")
    assert count.text.startswith(f"10 of {total}")
    browser.execute_script("arguments[0].value = ''; arguments[0].dispatchEvent(new Event('input', {bubbles: true}))", box)
    assert count.text.startswith(f"{total} of {total}")
    header = browser.find_element(By.CSS_SELECTOR, "th[data-col='qid']")
    header.click()
    header.click()  # descending
    first = browser.find_elements(By.CSS_SELECTOR, "#questions tbody tr")[0].find_elements(By.TAG_NAME, "td")[1].text
    assert first == "q00129" and "desc" in header.get_attribute("class")
    browser.find_element(By.ID, "next-page").click()
    assert "showing 51–100" in count.text
    screenshot(browser, shots, "questions")


def test_compare_shows_two_configs_side_by_side(browser, site, shots):
    open_page(browser, site, f"compare.html?a={CONFIGS[0]}&b={CONFIGS[1]}&q=mv_2", ".compare .col .panel")
    cols = browser.find_elements(By.CSS_SELECTOR, ".compare .col")
    assert len(cols) == 2
    panels = [c.find_element(By.CSS_SELECTOR, ".panel") for c in cols]
    assert [p.get_attribute("data-config") for p in panels] == list(CONFIGS)
    assert {p.get_attribute("data-qid") for p in panels} == {"mv_2"}
    left, right = (styles(p.find_elements(By.CSS_SELECTOR, ".word"), "background-color") for p in panels)
    assert len(left) == len(right) and left != right  # the same players, another model's values
    assert cols[0].location["x"] < cols[1].location["x"] and cols[0].location["y"] == cols[1].location["y"]
    assert "of 4 in both" in browser.find_element(By.CSS_SELECTOR, ".nav").text
    screenshot(browser, shots, "compare")


def test_a_question_by_qid_and_the_arrow_keys(browser, site):
    from selenium.webdriver.common.keys import Keys

    open_page(browser, site, f"question.html?c={CONFIGS[1]}&q=mv_2", ".panel[data-qid='mv_2']")
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.ARROW_RIGHT)
    WebDriverWait(browser, WAIT_S).until(lambda d: d.find_elements(By.CSS_SELECTOR, f".panel[data-qid='{BROKEN}']"))
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.ARROW_LEFT)
    WebDriverWait(browser, WAIT_S).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".panel[data-qid='mv_2']"))


def test_index_groups_the_paper_figures_and_links_the_tables(browser, tmp_path, shots):
    """A report with the paper's figures (answer replacement across variants, words, heat maps): the
    index shows them under one heading per kind, every image loads, and the tables are links."""
    from test_paper_figures import variant_set

    from vqa_shap.analysis.paper_figures import draw_paper_figures
    from vqa_shap.cli import main

    folders = write_view_folders(tmp_path / "data")
    draw_paper_figures(variant_set(), tmp_path / "report", bootstrap=20)
    site = tmp_path / "site"
    assert main(["view", str(folders["attributions"]), "--report", str(tmp_path / "report"), "--out", str(site),
                 "--bootstrap", "0", "--no-progress"]) == 0
    open_page(browser, site, "index.html", ".reports img")
    assert [e.text for e in browser.find_elements(By.TAG_NAME, "h3")] == ["Answer replacement", "Words", "Heat maps", "Tables"]
    kinds = {d.get_attribute("data-kind"): d.find_elements(By.TAG_NAME, "img")
             for d in browser.find_elements(By.CSS_SELECTOR, ".reports")}
    assert {k: len(v) for k, v in kinds.items()} == {"Answer replacement": 1, "Words": 4, "Heat maps": 4}
    WebDriverWait(browser, WAIT_S).until(lambda d: d.execute_script(
        "return Array.from(document.querySelectorAll('.reports img')).every(i => i.complete)"))
    assert all(browser.execute_script("return arguments[0].naturalWidth", img) > 500 for imgs in kinds.values() for img in imgs)
    links = browser.find_elements(By.CSS_SELECTOR, ".report-tables a")
    assert [a.text for a in links] == ["answer_replacement.csv", "words.csv"]
    assert links[0].get_attribute("href").endswith("/report/answer_replacement.csv")
    screenshot(browser, shots, "index_paper_figures")


def test_question_page_draws_the_interactions_as_a_frame_by_word_map(browser, tmp_path, shots):
    """An interactions config of the same question, model and variant: a 2 frames × 2 words map whose
    colours follow the explained option."""
    from test_view_interactions import QID, write_interactions

    from vqa_shap.cli import main

    folders = write_view_folders(tmp_path / "data")
    write_interactions(folders)
    site = tmp_path / "site"
    assert main(["view", str(folders["attributions"]), "--questions", str(folders["questions"]), "--video-root",
                 str(folders["videos"]), "--interactions", str(tmp_path / "data" / "interactions"), "--out", str(site),
                 "--no-progress", "--bootstrap", "0"]) == 0
    open_page(browser, site, f"question.html?c={CONFIGS[0]}&q={QID}", ".interactions td[data-pair]")
    box = browser.find_element(By.CSS_SELECTOR, ".interactions")
    assert [th.text for th in box.find_elements(By.CSS_SELECTOR, "tbody th")] == ["frame_0", "frame_1"]
    cells = box.find_elements(By.CSS_SELECTOR, "td[data-pair]")
    assert len(cells) == 4 and [c.get_attribute("data-pair") for c in cells] == ["1", "2", "3", "4"]
    before = styles(cells, "background-color")
    assert len(set(before)) == 4  # values ±2, ±3, ±4, ±5 of the ground-truth option: four colours
    assert cells[0].get_attribute("title").startswith("frame_0 × ")
    screenshot(browser, shots, "question_interactions")
    browser.find_element(By.CSS_SELECTOR, ".panel .toggle button[data-sel='0']").click()
    after = styles(box.find_elements(By.CSS_SELECTOR, "td[data-pair]"), "background-color")
    assert after != before and len(set(after)) == 4


@pytest.mark.slow
def test_the_site_of_a_demo_run(browser, tmp_path, shots):
    """The whole path on a real run: the demo (demo model, synthetic videos), its report, the site, the browser."""
    from test_view import read_data

    from vqa_shap.cli import main

    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--questions", "3", "--budget", "64"]) == 0
    site = out / "site"
    assert main(["view", str(out / "attributions"), "--questions", str(out / "questions"), "--video-root",
                 str(out / "source"), "--report", str(out / "report"), "--out", str(site), "--no-progress"]) == 0
    open_page(browser, site, "index.html", "#metrics tbody tr")
    assert [r.find_element(By.TAG_NAME, "a").text for r in browser.find_elements(By.CSS_SELECTOR, "#metrics tbody tr")] \
        == ["demo__synthetic"]
    # modality shares and violins, the words chart and the heat map of the one config
    assert len(browser.find_elements(By.CSS_SELECTOR, ".reports img")) == 4
    assert [e.text for e in browser.find_elements(By.TAG_NAME, "h3")] == ["Modality metrics", "Words", "Heat maps", "Tables"]
    screenshot(browser, shots, "demo_index")
    q = read_data(site / "data" / "demo__synthetic" / "chunk-0.js")[0]
    open_page(browser, site, "question.html?c=demo__synthetic&i=0", ".panel .strip")
    frames = browser.find_elements(By.CSS_SELECTOR, ".panel .frame")
    assert len(frames) == sum(f[1] == "v" for f in q["features"]) == 8 and q["frame_note"] is None
    assert all(browser.execute_script("return arguments[0].naturalWidth", f.find_element(By.TAG_NAME, "img")) > 0
               for f in frames)
    assert browser.find_element(By.CSS_SELECTOR, ".panel .verbatim").text == q["text"]
    assert len(set(styles(browser.find_elements(By.CSS_SELECTOR, ".panel .word"), "background-color"))) > 2
    screenshot(browser, shots, "demo_question")

