"""The demo application (`pg-avatar-demo`) driven by headless Chromium.

A person's session, by Selenium and Debian's chromedriver: create users,
upload pictures made here (by the file chooser and by drag and drop), drag
and resize the crop square, and check what was stored, pixel by pixel
where Pillow is there to decode it (by `avatar_info` through SQL
otherwise); a non-image and a truncated PNG must come back as the page
with pg_avatar's own message and a 422; an address must give a Libravatar
URL that answers with the avatar; a name must give its initial
placeholder, as the Libravatar route answers it; deleting a user must
wipe its avatar.

The application needs pg_avatar 0.3.0, the version this tree builds, and
refuses to start on any other, so the crop, ratings and descriptions are
always there to be tested.

Environment: DEMO_URL (the application), DEMO_DSN (libpq string of its
database), DEMO_SCREENSHOTS (default target/demo-screenshots).
Run by scripts/test.sh and `./run.sh demo` without a terminal.
"""

import base64
import hashlib
import io
import os
import re
import struct
import tempfile
import unittest
import urllib.error
import urllib.parse
import urllib.request
import zlib

import psycopg
from selenium import webdriver
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

try:
    from PIL import Image, ImageOps
except ImportError:  # the SQL checks stand in for the pixel checks
    Image = ImageOps = None

URL = os.environ["DEMO_URL"].rstrip("/")
DSN = os.environ["DEMO_DSN"]
SHOTS = os.environ.get("DEMO_SCREENSHOTS", "target/demo-screenshots")

# The 2x of each CSS size the page shows, as served (quantised).
DOUBLE = {32: 64, 64: 128, 128: 256}

RED, GREEN, BLUE, YELLOW = (220, 40, 40), (40, 170, 70), (40, 80, 220), (240, 200, 30)


class Quadrants:
    """A picture of four coloured quadrants: what a crop keeps is easy to
    tell from what it drops, and a mirror or a wrong turn shows."""

    def __init__(self, width, height, split_x, split_y, colours=(RED, GREEN, BLUE, YELLOW)):
        self.width, self.height = width, height
        self.split_x, self.split_y = split_x, split_y
        self.colours = colours

    def colour(self, x, y):
        return self.colours[(2 if y >= self.split_y else 0) + (1 if x >= self.split_x else 0)]

    def near_edge(self, x, y, margin):
        return abs(x - self.split_x) < margin or abs(y - self.split_y) < margin

    def png(self):
        def chunk(kind, data):
            return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

        rows = b"".join(
            b"\x00" + b"".join(bytes(self.colour(x, y)) for x in range(self.width))
            for y in range(self.height)
        )
        return (
            b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b"")
        )

    def image(self):
        return Image.open(io.BytesIO(self.png())).convert("RGB")


def fetch(url, data=None):
    """(status, body) of a GET (or a POST of `data`) from this process."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=20) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


class DemoInChromium(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        os.makedirs(SHOTS, exist_ok=True)
        cls.files = tempfile.mkdtemp(prefix="pg_avatar_demo_")
        cls.profile = tempfile.mkdtemp(prefix="pg_avatar_chromium_")
        options = webdriver.ChromeOptions()
        options.binary_location = "/usr/bin/chromium"
        for flag in (
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1100,1000",
            "--force-device-scale-factor=1",
            f"--user-data-dir={cls.profile}",
        ):
            options.add_argument(flag)
        cls.driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        cls.wait = WebDriverWait(cls.driver, 20)
        cls.db = psycopg.connect(DSN, autocommit=True)
        print(f"\nPillow: {Image is not None}", flush=True)

    @classmethod
    def tearDownClass(cls):
        cls.driver.quit()
        cls.db.close()

    # --- helpers -----------------------------------------------------------

    def sql(self, query, *args):
        return self.db.execute(query, args).fetchone()

    def by_id(self, element_id):
        return self.driver.find_element(By.ID, element_id)

    def status(self):
        """The HTTP status of the page now shown, as the browser got it."""
        return self.driver.execute_script(
            "return performance.getEntriesByType('navigation')[0].responseStatus"
        )

    def shot(self, name, until=None):
        """A screenshot of the whole page (or down to the bottom of the
        element `until`) under SHOTS."""
        # Two frames, so what just changed (a scroll, a new src) is painted.
        self.driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "requestAnimationFrame(() => requestAnimationFrame(() => done()));"
        )
        height = self.driver.execute_script(
            "const el = arguments[0] ? document.getElementById(arguments[0]) : null;"
            "return Math.ceil(el ? el.getBoundingClientRect().bottom + scrollY + 16"
            " : document.documentElement.scrollHeight);",
            until,
        )
        width = self.driver.execute_script("return document.documentElement.clientWidth")
        png = self.driver.execute_cdp_cmd(
            "Page.captureScreenshot",
            {
                "format": "png",
                "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
            },
        )
        path = os.path.join(SHOTS, name)
        with open(path, "wb") as f:
            f.write(base64.b64decode(png["data"]))
        return path

    def write(self, name, data):
        path = os.path.join(self.files, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def new_user(self, name):
        self.driver.get(URL + "/")
        field = self.by_id("new-name")
        field.clear()
        field.send_keys(name)
        self.submit("create")
        user_id = int(self.driver.current_url.rstrip("/").split("/")[-1].split("?")[0])
        self.assertEqual(self.by_id("user-name").text, f"{name} users,{user_id}")
        return user_id

    def choose(self, path):
        """Picks a file with the file chooser, and waits for the square."""
        self.by_id("picture").send_keys(path)
        self.wait_for_square()

    def drop(self, path):
        """Drops a file on the drop zone, as a person dragging it from a
        file manager: the page's drop handler must take it."""
        self.driver.execute_script(
            "const i = document.createElement('input'); i.type = 'file'; i.id = 'dropped';"
            "i.style.display = 'none'; document.body.appendChild(i);"
        )
        self.by_id("dropped").send_keys(path)
        self.driver.execute_script(
            """const files = document.getElementById('dropped').files;
               const zone = document.getElementById('drop');
               const data = new DataTransfer();
               for (const f of files) data.items.add(f);
               for (const type of ['dragenter', 'dragover', 'drop']) {
                 zone.dispatchEvent(new DragEvent(type, {bubbles: true, cancelable: true, dataTransfer: data}));
               }
               document.getElementById('dropped').remove();"""
        )
        self.wait_for_square()
        self.assertEqual(
            self.driver.execute_script("return document.getElementById('picture').files.length"), 1
        )

    def wait_for_square(self):
        self.wait.until(lambda d: d.find_element(By.ID, "crop_size").get_attribute("value"))

    def crop_fields(self):
        return tuple(int(self.by_id(f).get_attribute("value")) for f in ("crop_x", "crop_y", "crop_size"))

    def natural(self):
        return tuple(
            self.driver.execute_script(
                "const p = document.getElementById('preview'); return [p.naturalWidth, p.naturalHeight,"
                " p.getBoundingClientRect().width / p.naturalWidth];"
            )
        )

    def drag(self, element, dx, dy):
        self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
        ActionChains(self.driver).move_to_element(element).click_and_hold().move_by_offset(
            dx, dy
        ).release().perform()

    def submit(self, button_id):
        """Clicks a form's button and waits for the page it leads to.

        A mark on the old page's window tells the pages apart: a new page
        has a new window object without it. (Chromium's driver may answer
        a staleness check on the old page's element, mid-navigation, with
        an error of its own rather than "stale", so none is made.)"""
        self.driver.execute_script("window.leavingForTest = true")
        self.by_id(button_id).click()

        def arrived(driver):
            try:
                return driver.execute_script(
                    "return window.leavingForTest !== true && document.readyState === 'complete'"
                )
            except WebDriverException:
                return False  # between the two pages

        self.wait.until(arrived)

    def save(self):
        self.submit("save")

    def avatar_bytes(self):
        """The avatar as served at the public URL the page prints."""
        url = self.by_id("public-url").get_attribute("href")
        status, body = fetch(url)
        self.assertEqual(status, 200, url)
        return url, body

    def master_width(self, user_id):
        return self.sql(
            "SELECT i.width FROM avatar.avatar_info(avatar.avatar_id(%s)) i", f"users,{user_id}"
        )[0]

    def assert_shows(self, avatar, picture, crop):
        """The served avatar is `crop` (x, y, size) of `picture`: colours
        sampled on a grid, away from the quadrants' edges, where JPEG blurs."""
        if Image is None:
            return
        image = Image.open(io.BytesIO(avatar)).convert("RGB")
        side = image.width
        self.assertEqual(image.size, (side, side))
        x0, y0, size = crop
        checked = 0
        for i in range(12):
            for j in range(12):
                ax, ay = (i + 0.5) * side / 12, (j + 0.5) * side / 12
                sx, sy = x0 + ax * size / side, y0 + ay * size / side
                if picture.near_edge(sx, sy, margin=10 + 3 * size / side):
                    continue
                want, got = picture.colour(sx, sy), image.getpixel((int(ax), int(ay)))
                distance = max(abs(a - b) for a, b in zip(want, got))
                self.assertLess(distance, 48, f"at {ax:.0f},{ay:.0f} of the avatar ({sx:.0f},{sy:.0f} of the picture): {got} is not {want}")
                checked += 1
        self.assertGreater(checked, 60)

    # --- the tests ---------------------------------------------------------

    def test_1_upload_drag_and_resize_the_crop_square(self):
        picture = Quadrants(400, 300, 200, 150)
        path = self.write("quadrants.png", picture.png())
        user_id = self.new_user("Ada Lovelace")
        self.choose(path)
        width, height, scale = self.natural()
        self.assertEqual((width, height), (400, 300))
        self.assertEqual(self.crop_fields(), (50, 0, 300), "the centre square to begin with")

        # Shrink it from its bottom-right corner, then move it right and down.
        self.drag(self.driver.find_element(By.CSS_SELECTOR, "#square .handle.se"), -150, -150)
        x, y, size = self.crop_fields()
        self.assertEqual((x, y), (50, 0), "resizing from a corner keeps the opposite one")
        self.assertAlmostEqual(size, 300 - 150 / scale, delta=3)
        self.drag(self.by_id("square"), 300, 30)
        x, y, size = crop = self.crop_fields()
        self.assertEqual(x + size, width, "kept inside the picture")
        self.assertAlmostEqual(y, 30 / scale, delta=3)
        self.assertIn(f"Keeping {size} × {size} px at ({x}, {y})", self.by_id("crop-readout").text)
        # The square on screen is where the fields say.
        box = self.driver.execute_script(
            "const s = document.getElementById('square').getBoundingClientRect(),"
            " p = document.getElementById('preview').getBoundingClientRect();"
            "return [s.left - p.left, s.top - p.top, s.width, s.height];"
        )
        for got, want in zip(box, (x * scale, y * scale, size * scale, size * scale)):
            self.assertAlmostEqual(got, want, delta=1.5)
        self.shot("01-crop-square.png")

        Select(self.by_id("rating")).select_by_value("pg")
        self.by_id("description").send_keys("Four colours, the top right kept")
        self.save()
        self.assertEqual(self.status(), 200)
        self.assertEqual(self.by_id("notice").text, "Saved.")
        _, avatar = self.avatar_bytes()
        self.assertEqual(self.master_width(user_id), size, "the master is the chosen square")
        self.assert_shows(avatar, picture, crop)

        # Several sizes, each with a srcset at 1x and 2x, all decoded.
        images = self.driver.find_elements(By.CSS_SELECTOR, "#sizes img")
        self.assertEqual(len(images), 3)
        for img in images:
            side = int(img.get_attribute("width"))
            srcset = img.get_attribute("srcset")
            self.assertRegex(srcset, r"\?s=%d&v=[0-9a-f]{12} 1x, " % side)
            self.assertRegex(srcset, r"\?s=%d&v=[0-9a-f]{12} 2x" % DOUBLE[side])
            self.assertTrue(self.driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img))
            self.assertEqual(self.driver.execute_script("return arguments[0].naturalWidth", img), side)
        # The metadata is avatar_info's.
        info = self.sql(
            "SELECT i.sha1, i.bytes, i.width FROM avatar.avatar_info(avatar.avatar_id(%s)) i", f"users,{user_id}"
        )
        field = lambda name: self.driver.find_element(By.CSS_SELECTOR, f'#metadata td[data-field="{name}"]').text
        self.assertEqual((field("sha1"), int(field("bytes")), int(field("width"))), info)
        self.assertEqual(field("resource"), f"users,{user_id}")
        self.assertEqual(field("rating"), "pg")
        self.assertEqual(images[0].get_attribute("alt"), "Four colours, the top right kept")
        self.assertEqual(field("description"), "Four colours, the top right kept")
        self.shot("02-saved.png")

        # At a device pixel ratio of 2 the browser takes the 2x candidates.
        self.driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": 1100, "height": 1000, "deviceScaleFactor": 2, "mobile": False},
        )
        try:
            self.driver.refresh()
            self.wait.until(EC.presence_of_element_located((By.ID, "sizes")))
            for img in self.driver.find_elements(By.CSS_SELECTOR, "#sizes img"):
                self.wait.until(lambda d: d.execute_script("return arguments[0].complete", img))
                side = int(img.get_attribute("width"))
                current = self.driver.execute_script("return arguments[0].currentSrc", img)
                self.assertIn(f"?s={DOUBLE[side]}&", current)
                # Density-corrected: a 2x candidate is laid out at half its pixels.
                self.assertEqual(self.driver.execute_script("return arguments[0].naturalWidth", img), side)
        finally:
            self.driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})

        # For the README: the stored avatar, and the square on a new pick.
        self.driver.get(f"{URL}/users/{user_id}")
        self.choose(path)
        self.drag(self.driver.find_element(By.CSS_SELECTOR, "#square .handle.nw"), 90, 90)
        self.driver.execute_script("scrollTo(0, 0)")
        self.shot("demo.png", until="upload")

    def test_2_a_bad_file_shows_the_extensions_message_and_a_422(self):
        user_id = self.new_user("Grace Hopper")
        self.choose(self.write("grace.png", Quadrants(120, 120, 60, 60).png()))
        self.save()
        sha1 = self.by_id("metadata").find_element(By.CSS_SELECTOR, 'td[data-field="sha1"]').text

        truncated = Quadrants(64, 64, 32, 32).png()[:-30]
        for name, data in (("notes.txt", b"these are not pixels\n"), ("cut.png", truncated)):
            with self.subTest(name):
                # What pg_avatar itself says of these bytes.
                try:
                    self.db.execute("SELECT avatar.avatar_set('probe,1', %s)", (data,))
                    self.fail("pg_avatar took it")
                except psycopg.Error as e:
                    expected = e.diag.message_primary.removeprefix("pg_avatar: ")
                    hint = e.diag.message_hint
                self.driver.get(f"{URL}/users/{user_id}")
                self.by_id("picture").send_keys(self.write(name, data))
                self.save()
                self.assertEqual(self.status(), 422)
                self.assertEqual(self.by_id("problem-message").text, expected)
                if hint:
                    self.assertEqual(self.by_id("problem-hint").text, hint)
                self.assertNotIn("Internal", self.driver.page_source)
                # Nothing was written: the avatar is the one before.
                self.assertEqual(
                    self.sql("SELECT avatar.avatar_sha1(avatar.avatar_id(%s))", f"users,{user_id}")[0], sha1
                )
                if name == "notes.txt":
                    self.shot("03-refused.png")

        # A square outside the picture (a page tampered with) is the extension's to refuse.
        self.driver.get(f"{URL}/users/{user_id}")
        self.choose(self.write("grace2.png", Quadrants(120, 90, 60, 45).png()))
        self.driver.execute_script("document.getElementById('crop_size').value = '500'")
        self.save()
        self.assertEqual(self.status(), 422)
        self.assertIn("does not lie inside the image", self.by_id("problem-message").text)

    def test_3_an_address_gives_a_libravatar_url_that_answers_with_the_avatar(self):
        self.new_user("Katherine Johnson")
        self.drop(self.write("katherine.png", Quadrants(240, 240, 120, 120, (BLUE, YELLOW, GREEN, RED)).png()))
        self.save()

        self.by_id("email").send_keys("not an address")
        self.submit("set-email")
        self.assertEqual(self.status(), 422)
        self.assertEqual(self.by_id("problem-message").text, "'not an address' is not an email address")
        self.assertEqual(self.by_id("email").get_attribute("value"), "not an address", "the form keeps it")

        email = self.by_id("email")
        email.clear()
        email.send_keys("  Katherine.Johnson@Example.ORG ")
        self.submit("set-email")
        md5 = hashlib.md5(b"katherine.johnson@example.org").hexdigest()
        url = self.by_id("libravatar-url").get_attribute("href")
        self.assertEqual(url, f"{URL}/avatar/{md5}?s=128")
        img = self.by_id("libravatar-img")
        self.wait.until(lambda d: d.execute_script("return arguments[0].complete", img))
        self.assertEqual(self.driver.execute_script("return arguments[0].naturalWidth", img), 128)
        status, body = fetch(url)
        self.assertEqual(status, 200)
        _, at_128 = fetch(self.by_id("public-url").get_attribute("href"))
        self.assertEqual(body, at_128, "the Libravatar route serves this user's avatar")
        self.assertEqual(fetch(url.replace(md5, hashlib.md5(b"nobody@example.org").hexdigest()) + "&d=404")[0], 404)
        self.driver.execute_script("document.getElementById('libravatar').scrollIntoView()")
        self.shot("04-libravatar.png")

        # Rated r, the avatar is for requests that accept r: the page's URL says so.
        Select(self.by_id("rating")).select_by_value("r")
        self.save()
        self.assertEqual(self.by_id("notice").text, "Rating and description saved.")
        self.by_id("email").send_keys("katherine.johnson@example.org")
        self.submit("set-email")
        rated = self.by_id("libravatar-url").get_attribute("href")
        self.assertEqual(rated, f"{URL}/avatar/{md5}?s=128&r=r")
        self.assertEqual(fetch(rated), (200, at_128))
        self.assertNotEqual(fetch(url)[1], at_128, "r=g, the default, does not get it")

    def test_4_a_name_shows_its_initial_placeholder(self):
        user_id = self.new_user("Émile Borel")
        img = self.by_id("placeholder-img")
        self.assertIn("name=%C3%89mile+Borel", img.get_attribute("src"))
        name = self.by_id("placeholder-name")
        name.clear()
        name.send_keys("Zoë")
        self.submit("show-placeholder")
        self.assertIn("placeholder=Zo%C3%AB", self.driver.current_url)
        img = self.by_id("placeholder-img")
        self.wait.until(lambda d: d.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img))
        self.assertEqual(self.driver.execute_script("return arguments[0].naturalWidth", img), 64)
        # The Libravatar route's own answer, forced to the default (any digest will do).
        src = img.get_attribute("src")
        route = rf"^{re.escape(URL)}/avatar/[0-9a-f]{{32}}\?d=initials&name=%s&f=y&s=%d$"
        self.assertRegex(src, route % ("Zo%C3%AB", 64))
        srcset = img.get_attribute("srcset")
        self.assertIn("&s=64 1x", srcset)
        self.assertIn("&s=128 2x", srcset)
        status, served = fetch(src)
        self.assertEqual(status, 200)
        drawn = self.sql("SELECT avatar.avatar_default_exact('initial', %s, 64)", "Zoë")[0]
        self.assertEqual(served, bytes(drawn), "the placeholder is avatar_default_exact('initial', name, size)")
        self.assertNotEqual(served, fetch(src.replace("name=Zo%C3%AB", "name=Ada"))[1])
        self.assertEqual(fetch(URL + "/initials?name=Ada&s=64")[0], 404, "the application has no route of its own")
        # Typing changes it without a reload.
        name = self.by_id("placeholder-name")
        name.clear()
        name.send_keys("Ngozi")
        self.wait.until(lambda d: "name=Ngozi" in d.find_element(By.ID, "placeholder-img").get_attribute("src"))
        src = self.by_id("placeholder-img").get_attribute("src")
        self.assertRegex(src, route % ("Ngozi", 64))
        drawn = self.sql("SELECT avatar.avatar_default_exact('initial', %s, 64)", "Ngozi")[0]
        self.assertEqual(fetch(src), (200, bytes(drawn)))
        self.driver.execute_script("document.getElementById('placeholder').scrollIntoView()")
        self.shot("05-placeholder.png")
        # The front page shows the initial of a user without an avatar.
        self.driver.get(URL + "/")
        row = self.driver.find_element(By.XPATH, f'//ul[@id="users"]/li[a[@href="/users/{user_id}"]]')
        self.assertRegex(row.find_element(By.TAG_NAME, "img").get_attribute("src"), route % (r"%C3%89mile\+Borel", 32))
        self.shot("00-users.png")

    @unittest.skipIf(Image is None, "Pillow is needed to write a JPEG with an EXIF orientation")
    def test_5_the_square_is_chosen_on_the_upright_picture(self):
        # Upright, the picture is 200x300; stored, it lies on its side, with
        # EXIF orientation 6 (turn 90° clockwise to show).
        upright = Quadrants(200, 300, 100, 150)
        stored = upright.image().transpose(Image.Transpose.ROTATE_90)
        exif = Image.Exif()
        exif[0x0112] = 6
        out = io.BytesIO()
        stored.save(out, "JPEG", quality=95, exif=exif)
        self.assertEqual(ImageOps.exif_transpose(Image.open(io.BytesIO(out.getvalue()))).size, (200, 300))
        user_id = self.new_user("Mary Somerville")
        self.choose(self.write("sideways.jpg", out.getvalue()))
        width, height, scale = self.natural()
        self.assertEqual((width, height), (200, 300), "the browser shows it upright")
        self.assertEqual(self.crop_fields(), (0, 50, 200))
        self.drag(self.by_id("square"), 0, -100)
        self.assertEqual(self.crop_fields(), (0, 0, 200), "stopped at the top edge")
        self.shot("06-exif-crop.png")
        self.save()
        _, avatar = self.avatar_bytes()
        self.assertEqual(self.master_width(user_id), 200)
        self.assert_shows(avatar, upright, (0, 0, 200))

    def test_6_deleting_the_user_wipes_its_avatar(self):
        user_id = self.new_user("Hedy Lamarr")
        self.choose(self.write("hedy.png", Quadrants(100, 100, 50, 50).png()))
        self.save()
        url = self.by_id("public-url").get_attribute("href")
        self.assertEqual(fetch(url)[0], 200)
        self.submit("delete-user")
        self.assertEqual(self.driver.current_url, URL + "/")
        self.assertIsNone(self.sql("SELECT avatar.avatar_id(%s)", f"users,{user_id}")[0])
        self.assertEqual(fetch(url)[0], 404)
        self.driver.get(f"{URL}/users/{user_id}")
        self.assertEqual(self.status(), 404)

if __name__ == "__main__":
    unittest.main(verbosity=2)
