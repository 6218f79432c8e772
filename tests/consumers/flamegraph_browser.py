"""Opens a flamegraph SVG in headless Chromium (through chromedriver) and
uses it the way a person would: looks at it, clicks a frame to zoom, uses
Search. Prints what happened as JSON and saves a screenshot of each step.

usage: flamegraph_browser.py CHROMIUM CHROMEDRIVER SVG FRAME_PREFIX SEARCH_TERM SHOTS_DIR
FRAME_PREFIX: the start of the title of the frame to click (the widest such frame).
"""
import json
import os
import sys

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

chromium, chromedriver, svg, prefix, term, shots = sys.argv[1:7]
os.makedirs(shots, exist_ok=True)
opts = webdriver.ChromeOptions()
opts.binary_location = chromium
for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1300,1000"):
    opts.add_argument(arg)
driver = webdriver.Chrome(service=Service(chromedriver), options=opts)
result = {}
try:
    driver.get("file://" + os.path.abspath(svg))
    frames_width = float(driver.execute_script("return document.getElementById('frames').getAttribute('width')"))
    result["frames"] = len(driver.find_elements(By.CSS_SELECTOR, "#frames > g"))
    result["title"] = driver.find_element(By.ID, "title").text

    # The widest frame whose title starts with the prefix, brought into view.
    find = """
        let best = null, bestW = -1;
        for (const g of document.querySelectorAll('#frames > g')) {
            const t = g.querySelector('title').textContent;
            const w = parseFloat(g.querySelector('rect').getAttribute('fg:w'));
            if (t.startsWith(arguments[0]) && w > bestW) { best = g; bestW = w; }
        }
        if (best) best.scrollIntoView({block: 'center'});
        return best;
    """
    target = driver.execute_script(find, prefix)
    if target is None:
        raise SystemExit(f"no frame titled {prefix!r}...")
    rect = target.find_element(By.TAG_NAME, "rect")
    result["before_width_px"] = rect.rect["width"]
    driver.save_screenshot(os.path.join(shots, "1-rendered.png"))

    ActionChains(driver).move_to_element(rect).click().perform()
    result["after_width_px"] = rect.rect["width"]
    result["frames_width_px"] = frames_width
    result["unzoom_visible"] = "hide" not in (driver.find_element(By.ID, "unzoom").get_attribute("class") or "")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", target)
    driver.save_screenshot(os.path.join(shots, "2-zoomed.png"))

    driver.find_element(By.ID, "unzoom").click()
    driver.find_element(By.ID, "search").click()
    alert = WebDriverWait(driver, 5).until(expected_conditions.alert_is_present())
    alert.send_keys(term)
    alert.accept()
    highlighted = driver.execute_script("""
        const out = [];
        for (const g of document.querySelectorAll('#frames > g')) {
            if (g.querySelector('rect').getAttribute('fill') === 'rgb(230,0,230)')
                out.push(g.querySelector('title').textContent);
        }
        return out;
    """)
    result["highlighted"] = highlighted
    result["matched"] = driver.find_element(By.ID, "matched").text
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", target)
    driver.save_screenshot(os.path.join(shots, "3-search.png"))
finally:
    driver.quit()
print(json.dumps(result))
