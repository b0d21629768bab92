"""pg_avatar from a client that is not Rust: Python with psycopg 3.

Run by `./run.sh test` with Debian's python3 and python3-psycopg. The images
are written by hand (a PNG is a few zlib-compressed rows), so nothing but
the standard library and psycopg is needed.
"""

import os
import struct
import unittest
import uuid
import zlib

import psycopg

BASE = os.environ["PG_AVATAR_TEST_CONNINFO"]
DB = f"t_python_{os.getpid()}"


def png(width, height, rgb=(200, 80, 40)):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" + bytes(rgb) * width
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


def jpeg_side(data):
    """The side of a square baseline JPEG, read from its SOF0 marker."""
    i = 2
    while i < len(data):
        marker, length = data[i + 1], struct.unpack(">H", data[i + 2 : i + 4])[0]
        if marker == 0xC0:
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            assert height == width, (width, height)
            return width
        i += 2 + length
    raise AssertionError("no SOF0 marker")


class AvatarFromPython(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with psycopg.connect(BASE, autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {DB}")
        cls.conn = psycopg.connect(f"{BASE} dbname={DB}", autocommit=True)
        cls.conn.execute("CREATE EXTENSION pg_avatar")

    @classmethod
    def tearDownClass(cls):
        cls.conn.close()
        with psycopg.connect(BASE, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE {DB} WITH (FORCE)")

    def one(self, sql, *args):
        return self.conn.execute(sql, args).fetchone()[0]

    def test_set_get_info_delete(self):
        avatar_id = self.one("SELECT avatar.avatar_set(%s, %s)", "people,7", png(320, 240))
        self.assertIsInstance(avatar_id, uuid.UUID)
        for asked, served in [(16, 16), (45, 50), (64, 64), (100, 100), (130, 150)]:
            with self.subTest(size=asked):
                self.assertEqual(self.one("SELECT avatar.avatar_size(%s)", asked), served)
                image = self.one("SELECT avatar.avatar_get(%s, %s)", avatar_id, asked)
                self.assertEqual(jpeg_side(image), served)
        info = self.conn.execute("SELECT resource, width, height, mime_type, cached_sizes, sha1 FROM avatar.avatar_info(%s)", (avatar_id,)).fetchone()
        self.assertEqual(info[:5], ("people,7", 240, 240, "image/jpeg", 5))
        self.assertRegex(info[5], r"^[0-9a-f]{40}$")
        self.assertEqual(self.one("SELECT avatar.avatar_id(%s)", "people,7"), avatar_id)
        self.assertTrue(self.one("SELECT avatar.avatar_delete(%s)", "people,7"))
        self.assertIsNone(self.one("SELECT avatar.avatar_get(%s, 64)", avatar_id))

    def test_formats_and_placeholders(self):
        avatar_id = self.one("SELECT avatar.avatar_set(%s, %s)", "people,8", png(200, 200))
        magic = {"jpeg": b"\xff\xd8\xff", "png": b"\x89PNG", "webp": b"RIFF"}
        for fmt, start in magic.items():
            with self.subTest(format=fmt):
                image = self.one("SELECT avatar.avatar_get(%s, 64, %s)", avatar_id, fmt)
                self.assertTrue(bytes(image).startswith(start), bytes(image[:4]))
        rows = self.conn.execute(
            "SELECT format, mime_type, bytes, width FROM avatar.avatar_renditions(%s, 64)", (avatar_id,)
        ).fetchall()
        self.assertEqual([r[0] for r in rows], ["png", "jpeg", "webp"])
        self.assertTrue(all(r[1] == f"image/{r[0]}" and r[3] == 64 and r[2] > 0 for r in rows))
        with self.assertRaises(psycopg.Error) as caught:
            self.conn.execute("SELECT avatar.avatar_get(%s, 64, 'tiff')", (avatar_id,))
        self.assertEqual(caught.exception.sqlstate, "22023")
        self.assertIn("webp", caught.exception.diag.message_hint)

        letter = self.one("SELECT avatar.avatar_get_or_default('people,9', 64, 'initial', 'Zoë')")
        self.assertEqual(jpeg_side(letter), 64)
        self.assertEqual(letter, self.one("SELECT avatar.avatar_default('initial', 'Zoë', 64)"))

    def test_errors_carry_sqlstates_and_hints(self):
        cases = [
            ("empty", b"", "22023"),
            ("text", b"hello, world", "22023"),
            ("truncated", png(64, 64)[:40], "22P03"),
        ]
        for name, data, code in cases:
            with self.subTest(name):
                with self.assertRaises(psycopg.Error) as caught:
                    self.conn.execute("SELECT avatar.avatar_set('people,1', %s)", (data,))
                self.assertEqual(caught.exception.sqlstate, code)
                self.assertTrue(caught.exception.diag.message_hint)
        with self.assertRaises(psycopg.Error) as caught:
            self.conn.execute("SELECT avatar.avatar_get(gen_random_uuid(), 4096)")
        self.assertEqual(caught.exception.sqlstate, "22023")
        self.assertIn("avatar_size", caught.exception.diag.message_hint)
        self.assertIsNone(self.one("SELECT avatar.avatar_id('people,1')"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
