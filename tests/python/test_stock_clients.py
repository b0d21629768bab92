"""A stock Gravatar client from PyPI, libgravatar, pointed at the route.

libgravatar builds gravatar.com URLs; each test takes the URL it built for
an address and swaps only its scheme and host for the route's, keeping the
path and query exactly as the library wrote them (it spells the parameters
`size`, `default`, `forcedefault` and `rating`, and adds `.jpg` when asked).
The images that come back are decoded with Pillow (Debian's python3-pil)
and checked for their exact size and their content.

libgravatar refuses `d=initials` and `d=color` (its list of defaults is
older than them), so for those two the test builds the rest of the URL with
the library and appends `&default=...` and `&name=...` itself.

Run by ./run.sh test, which sets LIBRAVATAR_PORT (the route) and
LIBRAVATAR_DSN (its database, as admin).
"""

import io
import os
import unittest
from collections import namedtuple
import urllib.error
import urllib.request

import psycopg
from libgravatar import Gravatar
from PIL import Image, ImageChops, ImageStat

ROUTE = f"http://127.0.0.1:{os.environ['LIBRAVATAR_PORT']}"
DSN = os.environ["LIBRAVATAR_DSN"]

# Two avatars, each the left half one colour and the right half another, so
# that a mirrored, cropped or substituted image shows. Written as the
# library's users would type them: the library trims and lower-cases.
Avatar = namedtuple("Avatar", "resource email left right")
AVATAR = Avatar("stock,1", " Stock.Python@Example.com ", (220, 40, 40), (40, 70, 220))
RATED = Avatar("stock,2", "stock.python.rated@example.com", (30, 160, 60), (230, 200, 30))
UNKNOWN = "nobody.stock.python@example.com"
RATED_AS = "pg"

# Off the quantised set (120 would be served as 128, 72 as 80, 33 as 40,
# 257 as 300), the smallest, and 80, which libgravatar leaves out of the
# URL because it is the protocol's default.
SIZES = [120, 72, 33, 1, 257, 80]
SIZE = 120  # for the tests about defaults, forcing and ratings


def on_route(url):
    """The URL libgravatar built, with the route's scheme and host."""
    scheme, empty, host, rest = url.split("/", 3)
    assert (scheme, empty, host) == ("https:", "", "www.gravatar.com"), url
    return f"{ROUTE}/{rest}"


def appended(url, query):
    """`url` with `query` added after what the library wrote."""
    return f"{url}{'&' if '?' in url else '?'}{query}"


def fetch(url, accept=None):
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers["Content-Type"], e.read()


def solid_halves(left, right, side=256):
    image = Image.new("RGB", (side, side), left)
    image.paste(right, (side // 2, 0, side, side))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def magic(body):
    if body.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if body.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if body[:4] == b"RIFF" and body[8:12] == b"WEBP":
        return "image/webp"
    return f"not an image: {body[:16]!r}"


def mean(image, box=None):
    return tuple(round(c) for c in ImageStat.Stat(image.crop(box) if box else image).mean[:3])


def near(a, b, tolerance=40):
    return all(abs(x - y) <= tolerance for x, y in zip(a, b))


def spread(colour):
    """How far a colour is from grey: 0 for any grey."""
    return max(colour) - min(colour)


def difference(a, b):
    """Mean absolute difference per channel, 0 to 255; 255 if sizes differ."""
    if a.size != b.size:
        return 255
    return sum(ImageStat.Stat(ImageChops.difference(a, b)).mean[:3]) / 3


def avatar_problem(image, avatar):
    """None if `image` is `avatar`'s two colours, else what it looks like."""
    left, right = avatar.left, avatar.right
    w, h = image.size
    if w < 8:
        average = tuple((a + b) // 2 for a, b in zip(left, right))
        got = mean(image)
        return None if near(got, average) else f"mean colour {got}, not about {average}"
    got = (mean(image, (0, 0, w // 4, h)), mean(image, (w - w // 4, 0, w, h)))
    if near(got[0], left) and near(got[1], right):
        return None
    return f"left and right quarters {got}, not about {(left, right)}"


class Libgravatar(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.db = psycopg.connect(DSN, autocommit=True)
        for resource, email, left, right in (AVATAR, RATED):
            cls.db.execute("SELECT avatar.avatar_set(%s, %s)", (resource, solid_halves(left, right)))
            cls.db.execute("SELECT avatar.avatar_set_email(%s, %s)", (resource, email))

    @classmethod
    def tearDownClass(cls):
        for resource, email, _, _ in (AVATAR, RATED):
            cls.db.execute("SELECT avatar.avatar_unset_email(%s, %s)", (resource, email))
            cls.db.execute("SELECT avatar.avatar_delete(%s)", (resource,))
        cls.db.close()

    def get(self, url, accept=None):
        """Fetches `url`; returns (status, content type, decoded image or None)."""
        status, mime, body = fetch(url, accept)
        image = None
        if status == 200 and magic(body) == mime:
            image = Image.open(io.BytesIO(body))
            image.load()
        return status, mime, image

    def image(self, url, size, mime="image/jpeg", accept=None):
        """The image at `url`, asserted to be `mime`. Its exact size is checked
        on its own, so that the checks of its content still run."""
        status, got_mime, image = self.get(url, accept)
        if (status, got_mime) != (200, mime):
            self.fail(f"GET {url}: {status} {got_mime}, not 200 {mime}")
        if image is None:
            self.fail(f"GET {url}: the body is not the {mime} its header says")
        with self.subTest("exact size", size=size):
            if image.size != (size, size):
                self.fail(f"GET {url}: asked for {size}x{size}, got {image.size[0]}x{image.size[1]}")
        return image.convert("RGB")

    def assert_avatar(self, url, image, avatar):
        problem = avatar_problem(image, avatar)
        self.assertIsNone(problem, f"GET {url} should be the avatar of {avatar.resource}: {problem}")

    def assert_not_avatar(self, url, image, avatar):
        self.assertIsNotNone(avatar_problem(image, avatar),
                             f"GET {url} should be a default, but it is the avatar of {avatar.resource}")

    def silhouette(self, size):
        """The route's d=mm for an unknown address, as libgravatar asks for
        it: what generated defaults must not be. Its own size and look are
        checked in test_an_unknown_address_gets_the_default_asked_for."""
        url = on_route(Gravatar(UNKNOWN).get_image(size=size, default="mm"))
        status, mime, image = self.get(url)
        if image is None:
            self.fail(f"GET {url}: {status} {mime}, not the mm silhouette")
        return image.convert("RGB")

    def assert_silhouette(self, url, image, size):
        d = difference(image, self.silhouette(size))
        self.assertLess(d, 6, f"GET {url} should be the mm silhouette, but differs from it by {d:.1f}")

    def test_sizes_off_the_quantised_set_are_exact_and_the_avatar(self):
        for size in SIZES:
            url = on_route(Gravatar(AVATAR.email).get_image(size=size))
            with self.subTest(size=size, url=url):
                self.assert_avatar(url, self.image(url, size), AVATAR)

    def test_the_jpg_suffix_is_jpeg_whatever_accept_says(self):
        accept = "image/webp,image/png;q=0.9,*/*;q=0.1"
        url = on_route(Gravatar(AVATAR.email).get_image(size=72, filetype_extension=True))
        self.assertIn(".jpg?", url)
        self.assert_avatar(url, self.image(url, 72, "image/jpeg", accept), AVATAR)
        # Without the suffix the same Accept gets WebP: it is the suffix that decided.
        plain = on_route(Gravatar(AVATAR.email).get_image(size=72))
        status, mime, _ = fetch(plain, accept)
        self.assertEqual((status, mime), (200, "image/webp"), f"GET {plain} with Accept: {accept}")

    def test_an_unknown_address_gets_the_default_asked_for(self):
        url = on_route(Gravatar(UNKNOWN).get_image(size=SIZE, default="404"))
        status, _, _ = fetch(url)
        self.assertEqual(status, 404, f"GET {url}")

        url = on_route(Gravatar(UNKNOWN).get_image(size=SIZE, default="mm"))
        image = self.image(url, SIZE)
        corner, middle = mean(image, (0, 0, 8, 8)), mean(image, (SIZE // 3, 0, 2 * SIZE // 3, SIZE))
        self.assertLess(spread(corner), 12, f"GET {url}: the silhouette's background is {corner}, not grey")
        self.assertGreater(min(middle) - max(corner), 20,
                           f"GET {url}: the middle {middle} is no lighter figure on the background {corner}")
        # No default is mm, as is mp.
        for default in ["", "mp"]:
            url = on_route(Gravatar(UNKNOWN).get_image(size=SIZE, default=default))
            with self.subTest(default=default or "none", url=url):
                self.assert_silhouette(url, self.image(url, SIZE), SIZE)

    def test_generated_defaults_are_exact_and_not_the_silhouette(self):
        for default, size in [("identicon", SIZE), ("identicon", 33), ("retro", SIZE),
                              ("retro", 72), ("wavatar", SIZE), ("wavatar", 33)]:
            url = on_route(Gravatar(UNKNOWN).get_image(size=size, default=default))
            with self.subTest(default=default, size=size, url=url):
                image = self.image(url, size)
                d = difference(image, self.silhouette(size))
                self.assertGreater(d, 20, f"GET {url} is the mm silhouette (differs by {d:.1f})")

    def test_color_is_one_flat_colour(self):
        # libgravatar refuses default="color": appended by hand.
        for size in [SIZE, 33]:
            url = appended(on_route(Gravatar(UNKNOWN).get_image(size=size)), "default=color")
            with self.subTest(size=size, url=url):
                image = self.image(url, size)
                colour = mean(image)
                flat = Image.new("RGB", image.size, colour)
                worst = max(high for _, high in ImageChops.difference(image, flat).getextrema())
                self.assertLessEqual(worst, 16, f"GET {url}: pixels stray {worst} from the mean {colour}")
                self.assertGreater(spread(colour), 30, f"GET {url}: the colour {colour} is grey")

    def test_initials_are_a_white_letter_on_a_colour(self):
        # libgravatar refuses default="initials" and has no name: appended by hand.
        url = appended(on_route(Gravatar(UNKNOWN).get_image(size=SIZE)), "default=initials&name=Zoe%20Quinn")
        image = self.image(url, SIZE)
        corner = mean(image, (0, 0, 8, 8))
        self.assertGreater(spread(corner), 30, f"GET {url}: the background {corner} is not a colour")
        # The letter: light pixels, a few percent of them, in the middle.
        w, h = image.size
        light = [(i % w, i // w) for i, p in enumerate(image.getdata()) if min(p) >= 180]
        share = len(light) / (w * h)
        self.assertTrue(0.005 <= share <= 0.5, f"GET {url}: {share:.1%} of the pixels are white, "
                        "not a letter's 0.5% to 50%")
        if light:
            xs, ys = [x for x, _ in light], [y for _, y in light]
            box = (min(xs), min(ys), max(xs), max(ys))
            inside = 0 < box[0] and 0 < box[1] and box[2] < w - 1 and box[3] < h - 1
            centre = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
            self.assertTrue(inside and w / 3 < centre[0] < 2 * w / 3 and h / 3 < centre[1] < 2 * h / 3,
                            f"GET {url}: the white pixels span {box}, not a letter in the middle")
        self.assertGreater(difference(image, self.silhouette(SIZE)), 20, f"GET {url} is the mm silhouette")

    def test_forcedefault_overrides_an_avatar(self):
        g = Gravatar(AVATAR.email)
        url = on_route(g.get_image(size=SIZE, default="404"))
        self.assert_avatar(url, self.image(url, SIZE), AVATAR)

        url = on_route(g.get_image(size=SIZE, default="404", force_default=True))
        status, _, _ = fetch(url)
        self.assertEqual(status, 404, f"GET {url} (forced 404 for an address with an avatar)")

        url = on_route(g.get_image(size=SIZE, force_default=True))
        image = self.image(url, SIZE)
        self.assert_not_avatar(url, image, AVATAR)
        self.assert_silhouette(url, image, SIZE)

        url = on_route(g.get_image(size=SIZE, default="identicon", force_default=True))
        image = self.image(url, SIZE)
        self.assert_not_avatar(url, image, AVATAR)
        self.assertGreater(difference(image, self.silhouette(SIZE)), 20, f"GET {url} is the mm silhouette")

    def test_ratings_hide_an_avatar_rated_above_the_request(self):
        with self.subTest(f"avatar_set_rating({RATED.resource!r}, {RATED_AS!r})"):
            self.assertTrue(self.db.execute("SELECT avatar.avatar_set_rating(%s, %s)",
                                            (RATED.resource, RATED_AS)).fetchone()[0])
        for rating, served in [("", False), ("g", False), ("pg", True), ("r", True), ("x", True)]:
            url = on_route(Gravatar(RATED.email).get_image(size=SIZE, default="404", rating=rating))
            with self.subTest(rating=rating or "none (g)", url=url):
                if served:
                    self.assert_avatar(url, self.image(url, SIZE), RATED)
                else:
                    status, _, _ = fetch(url)
                    self.assertEqual(status, 404, f"GET {url} of a {RATED_AS} avatar, with default=404")
        # The default asked for, not the avatar, when the rating hides it.
        url = on_route(Gravatar(RATED.email).get_image(size=SIZE, rating="g"))
        image = self.image(url, SIZE)
        self.assert_not_avatar(url, image, RATED)
        self.assert_silhouette(url, image, SIZE)
        # An avatar nobody rated is g, which every request accepts.
        url = on_route(Gravatar(AVATAR.email).get_image(size=SIZE, rating="g"))
        self.assert_avatar(url, self.image(url, SIZE), AVATAR)


if __name__ == "__main__":
    unittest.main(verbosity=2)
