"""The web mixer in a real headless Chromium on 127.0.0.1 (Debian's chromium and chromium-driver)."""

from __future__ import annotations

import base64
import itertools
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from clarity.utils.audiogram import Audiogram, Listener
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement

from cadenza.data import load_listeners
from cadenza.hearing_aid import HearingAid

from .conftest import CHUNK_SECONDS

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
SOURCES = ("bass", "vocals", "other", "drums")
CONTROLS = (
    "play",
    "download mix",
    "listener",
    *(f"{verb} {s}" for s in SOURCES for verb in ("mute", "solo")),
    *(f"{s} gain" for s in SOURCES),
)

pytestmark = pytest.mark.skipif(
    not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()),
    reason="needs /usr/bin/chromium and /usr/bin/chromedriver: apt-get install chromium chromium-driver",
)


@pytest.fixture(scope="module")
def downloads(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def browser(downloads) -> Iterator[webdriver.Chrome]:
    os.environ["SE_OFFLINE"] = "true"  # no Selenium Manager downloads: the driver is given
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    with tempfile.TemporaryDirectory(prefix="demixui-chromium-") as profile:
        for flag in (
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-quic",
            f"--user-data-dir={profile}",
            "--autoplay-policy=no-user-gesture-required",
            "--window-size=1280,1000",
        ):
            options.add_argument(flag)
        options.add_experimental_option(
            "prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": False}
        )
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
        driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
        try:
            yield driver
        finally:
            driver.quit()


def wait_for(condition, timeout: float = 60, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return value


def open_page(driver: webdriver.Chrome, url: str) -> None:
    driver.get(url)
    wait_for(lambda: driver.execute_script("return document.body.dataset.ready === 'true'"), what="the page")


def status(driver: webdriver.Chrome) -> dict:
    return driver.execute_script("return window.demixui.status()")


def gains(driver: webdriver.Chrome) -> dict:
    return driver.execute_script("return window.demixui.gains()")


def control(driver: webdriver.Chrome, name: str) -> WebElement:
    """The control whose accessible name (as the browser computes it) is ``name``."""
    matches = [
        element
        for element in driver.find_elements(By.CSS_SELECTOR, "button, input, select, meter, progress, canvas")
        if element.accessible_name == name
    ]
    assert len(matches) == 1, f"{len(matches)} controls named {name!r}"
    return matches[0]


def played_samples(driver: webdriver.Chrome, source: str, channel: int, heard: bool) -> np.ndarray:
    text = driver.execute_script(
        "return window.demixui.samples(arguments[0], arguments[1], arguments[2])", source, channel, heard
    )
    return np.frombuffer(base64.b64decode(text), np.float32)


def open_song(driver: webdriver.Chrome, path: Path) -> None:
    driver.find_element(By.ID, "file").send_keys(str(path))
    wait_for(lambda: (status(driver)["song"] or {}).get("name") == path.name, what=f"{path.name} to open")


def wait_until_separated(driver: webdriver.Chrome, heard: bool = False) -> dict:
    key = "heardReceived" if heard else "stemsReceived"
    return wait_for(
        lambda: (state := status(driver))["song"] and state[key] >= state["song"]["length"] and state,
        timeout=120,
        what="the separation",
    )


def severe_logs(driver: webdriver.Chrome) -> list[dict]:
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def test_page_loads_without_errors_and_names_every_control(browser, server):
    open_page(browser, server.url)
    wait_for(lambda: status(browser)["song"], what="the command line's song")
    for name in CONTROLS:
        control(browser, name)
    assert control(browser, "listener").tag_name == "select"
    assert status(browser)["crossOriginIsolated"]
    options = [option.text for option in control(browser, "listener").find_elements(By.TAG_NAME, "option")]
    assert options == ["none", "L0001", "L0002", "audiogram typed in"]
    assert severe_logs(browser) == []


def test_playback_starts_before_the_separation_finishes(browser, server, songs):
    open_page(browser, server.url)
    open_song(browser, songs["long"])  # 16 s: eight chunks of 2 s
    play = control(browser, "play")
    wait_for(lambda: play.is_enabled(), what="the player")
    play.click()
    assert play.accessible_name == "pause"
    state = wait_for(lambda: (state := status(browser))["position"] > 0 and state, timeout=30, what="playback")
    assert state["playing"] and state["contextState"] == "running"
    assert state["separated"] < state["song"]["length"]
    assert state["stemsReceived"] < state["song"]["length"]
    assert state["song"]["length"] > 4 * CHUNK_SECONDS * 44100
    # space pauses, and the position stays
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.SPACE)
    wait_for(lambda: not status(browser)["playing"], what="pause")
    assert control(browser, "play").accessible_name == "play"
    assert severe_logs(browser) == []


def test_mute_and_solo_change_the_graph_without_the_server(browser, server):
    open_page(browser, server.url)
    wait_for(lambda: status(browser)["song"], what="the song")
    play = control(browser, "play")
    wait_for(lambda: play.is_enabled(), what="the player")
    play.click()
    wait_for(lambda: status(browser)["contextState"] == "running", what="audio")
    sent = status(browser)["messagesSent"]

    def expect(**values):
        wanted = {source: values.get(source, 1.0) for source in SOURCES}
        wait_for(lambda: all(abs(gains(browser)[s] - wanted[s]) < 1e-6 for s in SOURCES), 10, f"gains {wanted}")

    control(browser, "mute vocals").click()
    expect(vocals=0.0)
    assert control(browser, "mute vocals").get_attribute("aria-pressed") == "true"
    control(browser, "solo bass").click()
    expect(vocals=0.0, other=0.0, drums=0.0)
    control(browser, "solo drums").click()
    expect(vocals=0.0, other=0.0)
    body = browser.find_element(By.TAG_NAME, "body")
    ActionChains(browser).key_down(Keys.SHIFT).send_keys("1").send_keys("4").key_up(Keys.SHIFT).perform()
    expect(vocals=0.0)  # shift+1 and shift+4 un-solo bass and drums: only the mute is left
    body.send_keys("2")  # un-mute vocals
    body.send_keys("3")  # mute other
    expect(other=0.0)
    slider = control(browser, "drums gain")
    browser.execute_script("arguments[0].value = 0.5; arguments[0].dispatchEvent(new Event('input'))", slider)
    expect(other=0.0, drums=0.5)
    assert status(browser)["messagesSent"] == sent  # all of it on the page: no round trip to the server
    # space on the focused mute button plays/pauses, and does not press the button
    mute_bass = control(browser, "mute bass")
    mute_bass.click()
    expect(bass=0.0, other=0.0, drums=0.5)
    browser.find_element(By.ID, "overview").send_keys(Keys.ARROW_LEFT)  # back to the start: 5 s of song to play
    wait_for(lambda: status(browser)["position"] < 44100, 10, "the seek to the start")
    if not status(browser)["playing"]:  # the 5 s song may have ended meanwhile
        control(browser, "play").click()
    browser.execute_script("arguments[0].focus()", mute_bass)
    browser.switch_to.active_element.send_keys(Keys.SPACE)
    wait_for(lambda: not status(browser)["playing"], 10, "pause")
    expect(bass=0.0, other=0.0, drums=0.5)
    assert severe_logs(browser) == []


def test_two_tabs_play_at_once(browser, server):
    open_page(browser, server.url)
    first = browser.current_window_handle
    browser.switch_to.new_window("tab")
    try:
        open_page(browser, server.url)
        for handle in (browser.current_window_handle, first):
            browser.switch_to.window(handle)
            wait_until_separated(browser)
            control(browser, "play").click()
            wait_for(lambda: status(browser)["position"] > 0, 20, "playback")
        assert status(browser)["playing"]
    finally:
        for handle in browser.window_handles:
            if handle != first:
                browser.switch_to.window(handle)
                browser.close()
        browser.switch_to.window(first)


def test_overview_click_seeks_and_drag_loops(browser, server):
    open_page(browser, server.url)
    length = wait_until_separated(browser)["song"]["length"]
    overview = browser.find_element(By.ID, "overview")
    width = overview.rect["width"]

    def at(fraction: float) -> int:  # offset from the element's centre, as ActionChains takes it
        return round((fraction - 0.5) * width)

    ActionChains(browser).move_to_element_with_offset(overview, at(0.6), 0).click().perform()
    wait_for(lambda: abs(status(browser)["position"] - 0.6 * length) < 0.01 * length, 10, "the seek")
    overview.send_keys(Keys.ARROW_LEFT)  # 5 s back, from the keyboard: to the start of this 5 s song
    wait_for(lambda: status(browser)["position"] == 0, 10, "the arrow key's seek")
    ActionChains(browser).move_to_element_with_offset(overview, at(0.2), 0).click_and_hold().move_by_offset(
        round(0.2 * width), 0
    ).release().perform()
    loop = wait_for(lambda: status(browser)["loop"], 10, "the loop")
    assert abs(loop["start"] - 0.2 * length) < 0.01 * length and abs(loop["end"] - 0.4 * length) < 0.01 * length
    assert browser.find_element(By.ID, "loop").is_selected()
    control(browser, "play").click()
    positions = []
    deadline = time.monotonic() + 20
    while not (len(positions) > 2 and any(b < a for a, b in itertools.pairwise(positions))):
        assert time.monotonic() < deadline, f"no wrap-around seen: {positions}"
        positions.append(status(browser)["position"])
        time.sleep(0.05)
    assert all(loop["start"] <= p <= loop["end"] for p in positions)
    control(browser, "pause").click()


def test_downloaded_mix_without_vocals_equals_the_command_lines_stems(browser, server, songs, downloads, tmp_path):
    out = tmp_path / "separated"
    command = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "xumx_slicq_v2",
            str(songs["short"]),
            "--model",
            "demo",
            "--chunk-seconds",
            str(CHUNK_SECONDS),
            "--output-dir",
            str(out),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    open_page(browser, server.url)
    wait_until_separated(browser)
    control(browser, "mute vocals").click()
    download = control(browser, "download mix")
    wait_for(download.is_enabled, what="download mix enabled")
    download.click()
    path = downloads / "short song - mix.wav"
    wait_for(lambda: path.is_file() and path.stat().st_size > 44, what=path.name)
    mix, rate = sf.read(path, dtype="float32", always_2d=True)
    assert command.wait(240) == 0, command.stdout.read()
    stems = {name: sf.read(out / "short song" / f"{name}.wav", dtype="float32", always_2d=True)[0] for name in SOURCES}
    expected = stems["bass"] + stems["drums"] + stems["other"]
    assert rate == 44100 and mix.shape == expected.shape
    error = np.abs(mix - expected).max() / np.abs(expected).max()
    assert error < 1e-3, error
    assert np.abs(mix - (expected + stems["vocals"])).max() / np.abs(expected).max() > 1e-2  # vocals are out
    # a stem's download: that stem at its gain (muting takes it out of the mix only)
    control(browser, "download vocals").click()
    path = downloads / "short song - vocals.wav"
    wait_for(lambda: path.is_file() and path.stat().st_size > 44, what=path.name)
    vocals, _ = sf.read(path, dtype="float32", always_2d=True)
    assert np.abs(vocals - stems["vocals"]).max() / np.abs(stems["vocals"]).max() < 1e-3


def test_listener_plays_the_recipes_nalr_per_ear(browser, server, listeners_file):
    open_page(browser, server.url)
    state = wait_until_separated(browser)
    audiogram = browser.find_element(By.ID, "audiogram")
    blank = browser.execute_script("return arguments[0].toDataURL()", audiogram)
    select = control(browser, "listener")
    select.find_element(By.XPATH, "option[text()='L0002']").click()
    wait_for(lambda: status(browser)["listener"] == "L0002", what="the listener")
    state = wait_until_separated(browser, heard=True)
    control(browser, "play").click()
    wait_for(lambda: status(browser)["playingHeard"], 10, "the player to play the heard stems")
    assert browser.execute_script("return arguments[0].toDataURL()", audiogram) != blank  # the audiogram is drawn
    length = state["song"]["length"]
    stems = {s: np.stack([played_samples(browser, s, c, heard=False) for c in range(2)]) for s in SOURCES}
    aid = HearingAid(nfir=220, sample_rate=44100)

    def compare(listener: Listener) -> None:
        processed = aid.process_stems(stems, listener)
        for ear_index, ear in enumerate(("left", "right")):
            for source in SOURCES:
                heard = played_samples(browser, source, ear_index, heard=True)
                expected = processed[ear][source][:length]
                np.testing.assert_allclose(heard, expected, rtol=0, atol=1e-6, err_msg=f"{source} {ear}")
                assert np.abs(heard - stems[source][ear_index]).max() > 1e-3  # the hearing aid changed it

    compare(load_listeners(listeners_file)["L0002"])
    # an audiogram typed in
    browser.find_element(By.ID, "left-levels").clear()
    browser.find_element(By.ID, "left-levels").send_keys("60, 60, 65, 70, 75, 80, 80, 85")
    browser.find_element(By.ID, "apply-audiogram").click()
    wait_for(lambda: status(browser)["listener"] == "typed audiogram", what="the typed listener")
    wait_until_separated(browser, heard=True)
    frequencies = [250, 500, 1000, 2000, 3000, 4000, 6000, 8000]
    compare(
        Listener(
            Audiogram([60, 60, 65, 70, 75, 80, 80, 85], frequencies),
            Audiogram([25, 30, 35, 45, 55, 60, 65, 70], frequencies),
            id="typed",
        )
    )
    assert severe_logs(browser) == []


def test_corrupt_upload_shows_an_error_and_a_good_song_still_plays(browser, server, songs):
    open_page(browser, server.url)
    browser.find_element(By.ID, "file").send_keys(str(songs["corrupt"]))
    message = wait_for(lambda: browser.find_element(By.ID, "message").text, what="the error message")
    assert message.startswith("broken.mp3: not an audio file")
    open_song(browser, songs["long"])
    assert browser.find_element(By.ID, "message").text == ""
    play = control(browser, "play")
    wait_for(lambda: play.is_enabled(), what="the player")
    play.click()
    wait_for(lambda: status(browser)["position"] > 0, what="playback")
    # the server refuses what is outside the songs it serves, also for the page
    result = browser.execute_async_script(
        "const done = arguments[0];fetch('/static/%2e%2e/%2e%2e/pyproject.toml').then((r) => done(r.status));"
    )
    assert result == 404
