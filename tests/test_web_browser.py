"""The trading terminal in a real browser (Debian's Chromium, headless, a 1280 px laptop
screen) against a real ``ppr serve`` on the twin: register, be approved, log in, place an
order, see it cleared and delivered on the bench; a second user cannot read the first's
orders; a post without the CSRF token is refused; the order form offers the sides a
terminal can trade; the page fits the screen; the E-STOP asks first."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions

from router.journal import read_records
from tests.web_browser import chromium, fetch, fill, table, text, until
from tests.web_serve import PASSWORD, Serve, enrol, scenario_file

pytestmark = pytest.mark.timeout(240)


def test_register_trade_and_see_it_delivered_in_the_browser(tmp_path: Path) -> None:
    serve = Serve(tmp_path, scenario_file(tmp_path / "b.toml", interval=2, transfers=True))
    assert serve.create_admin("root").returncode == 0
    with serve.start(), serve.client() as admin:
        assert admin.login("root").is_success
        bob = enrol(serve, admin, "bob", "MEC1")
        with chromium(width=1280) as page:
            page.get(serve.url + "/")
            until(page, "the page's bench name", lambda d: text(d, "#bench-name") == "bench-4")
            # nothing but the login form for a visitor
            assert not page.find_element(By.ID, "book-panel").is_displayed()
            fill(page, {"#login-name": "ann", "#login-password": PASSWORD})
            page.find_element(By.ID, "register-button").click()
            until(page, "the registration note", lambda d: "waiting" in text(d, "#auth-note"))

            uid = next(u["id"] for u in admin.get("/api/admin/users").json() if u["name"] == "ann")
            assert admin.post(f"/api/admin/users/{uid}", json={"action": "approve"}).is_success
            r = admin.post(f"/api/admin/users/{uid}", json={"action": "assign", "terminal": "PV1"})
            assert r.is_success

            page.find_element(By.ID, "login-button").click()
            until(page, "logged in", lambda d: text(d, "#who") == "ann (participant)")
            # PV1 is a source: the form offers, and cannot bid
            assert side_choice(page) == ("offer", ["bid"])
            # a mistake is shown next to its field, in the scenario checker's words
            fill(page, {"#order-quantity": "x", "#order-price": "1"})
            page.find_element(By.ID, "order-button").click()
            until(page, "the quantity error",
                  lambda d: text(d, '#order-form .error[data-for="quantity"]')
                  == "must be a number (got 'x')")  # fmt: skip
            fill(page, {"#order-quantity": "10", "#order-price": "1", "#order-valid": "1000"})
            page.find_element(By.ID, "order-green").click()
            page.find_element(By.ID, "order-button").click()
            until(page, "the order in my orders", lambda d: len(table(d, "#my-orders")) == 1)
            offered = [["PV1", "10", "1", "yes"]]
            until(page, "the offer in the book", lambda d: table(d, "#book-offers") == offered)

            # bob bids; the book clears at the next even frame and the bench delivers
            bid = {"side": "bid", "terminal": "MEC1", "quantity": 10, "price": 3,
                   "valid_frames": 1000}  # fmt: skip
            assert bob.post("/api/orders", json=bid).is_success

            def delivered(d):  # ann's row: status filled, 10 traded, 10 delivered
                rows = table(d, "#my-orders")
                return rows and rows[0][6] == "filled" and rows[0][9] == "10.0" and rows[0]

            row = until(page, "ann's order filled and delivered", delivered, timeout=90)
            assert row[8] == "10" and row[10] == "0.0" and float(row[11]) > 0
            # a seller is paid: nothing under "paid", the amount under "received"
            heads = page.execute_script(
                "return [...document.querySelectorAll('#my-orders th')].map((h) => h.textContent)"
            )
            assert heads[12:14] == ["paid", "received"]
            assert row[12] == "" and float(row[13]) > 0
            (trade,) = table(page, "#my-trades")
            assert trade[2:6] == ["offer", "MEC1", "10", "yes"]
            assert trade[6].startswith("delivered")
            # the trade's transfer on the bench, by the clearing's names, no order id
            assert re.fullmatch(r"c\d+s1-c\d+b1", trade[9]), trade
            assert "settled" not in text(page, "#clearings")  # shown as 'delivered in frame N'
            assert until(page, "a clearing", lambda d: len(table(d, "#clearings")) == 1)
            ann_order = int(row[0])
            # the book and the bench fit a 1280 px screen: nothing clipped, no sideways
            # scrolling, the Gantt's labels drawn at their own shape (as wide as high)
            fits = page.execute_script(
                "const p = document.querySelector('#book-panel'), r = p.getBoundingClientRect();"
                "return [p.scrollWidth <= p.clientWidth, [...p.querySelectorAll('th')].every("
                "(h) => h.scrollWidth <= h.clientWidth && h.getBoundingClientRect().right <= "
                "r.right)]"
            )
            assert fits == [True, True]
            until(page, "the Gantt", lambda d: d.find_elements(By.CSS_SELECTOR, "#gantt text"))
            scale = page.execute_script(
                "const m = document.querySelector('#gantt').getScreenCTM(); return [m.a, m.d]"
            )
            assert scale[0] == pytest.approx(scale[1])

            # a post without the CSRF token is refused, from the page's own origin
            refused = fetch(page, "/api/orders", "POST", json.dumps(bid),
                            {"content-type": "application/json"})  # fmt: skip
            assert refused["status"] == 403 and "CSRF" in refused["body"]["error"]

            # bob, in the same browser after ann logs out, sees his orders only
            page.find_element(By.ID, "logout").click()
            until(page, "logged out", lambda d: d.find_element(By.ID, "auth").is_displayed())
            fill(page, {"#login-name": "bob", "#login-password": PASSWORD})
            page.find_element(By.ID, "login-button").click()
            until(page, "bob logged in", lambda d: text(d, "#who") == "bob (participant)")
            assert side_choice(page) == ("bid", ["offer"])  # MEC1 is a load: it bids
            until(page, "bob's orders", lambda d: len(table(d, "#my-orders")) == 1)
            assert [r[0] for r in table(page, "#my-orders")] != [str(ann_order)]
            mine = fetch(page, "/api/orders")
            assert [o["id"] for o in mine["body"]] != [ann_order] and len(mine["body"]) == 1
            theirs = fetch(page, f"/api/orders/{ann_order}/cancel", "POST", "{}",
                           {"content-type": "application/json",
                            "x-csrf-token": page.execute_script("return csrf")})  # fmt: skip
            assert theirs["status"] == 400 and "of yours" in theirs["body"]["error"]
            # bob holds the certificate for the green joules delivered to him
            (cert,) = until(page, "bob's certificate", lambda d: table(d, "#my-certificates"))
            assert cert[3:6] == ["PV1", "MEC1", "held"]

            # the operator's E-STOP asks first: dismissed, nothing happens; accepted, the
            # bench stops (one estop in the signed journal: the accepted one)
            page.find_element(By.ID, "logout").click()
            until(page, "logged out", lambda d: d.find_element(By.ID, "auth").is_displayed())
            fill(page, {"#login-name": "root", "#login-password": PASSWORD})
            page.find_element(By.ID, "login-button").click()
            until(page, "root logged in", lambda d: text(d, "#who") == "root (admin)")
            page.find_element(By.ID, "estop-button").click()
            until(page, "the confirmation", expected_conditions.alert_is_present()).dismiss()
            page.find_element(By.ID, "estop-button").click()
            until(page, "the confirmation", expected_conditions.alert_is_present()).accept()
            until(page, "the e-stop shown", lambda d: text(d, "#estop-state") == "E-STOPPED")
        bob.close()
        assert serve.stop() == 0
    estops = [r.payload["by"] for r in read_records(tmp_path / "out" / "web-journal.sqlite")
              if r.kind == "command" and r.payload["action"] == "estop"]  # fmt: skip
    assert estops == ["root"]


def side_choice(page: WebDriver) -> tuple[str, list[str]]:
    """The order form's side, and the sides it will not take for this terminal."""
    got = page.execute_script(
        "const s = document.querySelector('#order-side');"
        "return [s.value, [...s.options].filter((o) => o.disabled).map((o) => o.value)]"
    )
    return got[0], got[1]
