"""A stock Libravatar client finds this deployment through DNS SRV
federation and gets the right images and defaults from its route.

pyLibravatar (from PyPI) resolves `_avatars._tcp.<domain>` with dnspython;
here a DNS server on loopback answers for example.org with the route's
port, so nothing leaves the machine. Run by ./run.sh test, which sets
LIBRAVATAR_PORT (the route) and LIBRAVATAR_DSN (its database, as admin).
"""

import os
import socket
import unittest
import urllib.error
import urllib.request

import dns.resolver
import libravatar
import psycopg
from dnslib import QTYPE, RR, SRV
from dnslib.server import BaseResolver, DNSServer

ROUTE_PORT = int(os.environ["LIBRAVATAR_PORT"])
DSN = os.environ["LIBRAVATAR_DSN"]


class Federation(BaseResolver):
    """example.org delegates its avatars to the route; nothing else exists."""

    def resolve(self, request, handler):
        reply = request.reply()
        name = str(request.q.qname)
        if request.q.qtype == QTYPE.SRV and name == "_avatars._tcp.example.org.":
            reply.add_answer(RR(name, QTYPE.SRV, rdata=SRV(0, 0, ROUTE_PORT, "127.0.0.1."), ttl=60))
        else:
            reply.header.rcode = 3  # NXDOMAIN
        return reply


def free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fetch(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers["Content-Type"], e.read()


class StockClient(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        port = free_udp_port()
        cls.dns = DNSServer(Federation(), port=port, address="127.0.0.1")
        cls.dns.start_thread()
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = ["127.0.0.1"]
        resolver.port = port
        dns.resolver.default_resolver = resolver
        cls.db = psycopg.connect(DSN, autocommit=True)
        cls.db.execute("SELECT avatar.avatar_set_email('users,1', 'ada@example.org')")

    @classmethod
    def tearDownClass(cls):
        cls.dns.stop()
        cls.db.close()

    def sql(self, query, *args):
        return self.db.execute(query, args).fetchone()[0]

    def test_a_known_address_gets_its_avatar(self):
        url = libravatar.libravatar_url(email=" Ada@Example.org", size=64)
        self.assertTrue(url.startswith(f"http://127.0.0.1:{ROUTE_PORT}/avatar/"), url)
        status, mime, body = fetch(url)
        self.assertEqual((status, mime), (200, "image/jpeg"))
        expected = self.sql(
            "SELECT avatar.avatar_get(avatar.avatar_by_digest(md5('ada@example.org')), 64)")
        self.assertEqual(body, bytes(expected))

    def test_unknown_addresses_get_the_default_asked_for(self):
        digest = self.sql("SELECT md5('nobody@example.org')")
        status, _, _ = fetch(libravatar.libravatar_url(email="nobody@example.org", default="404"))
        self.assertEqual(status, 404)
        status, mime, body = fetch(
            libravatar.libravatar_url(email="nobody@example.org", default="identicon", size=100))
        self.assertEqual((status, mime), (200, "image/jpeg"))
        self.assertEqual(body, bytes(self.sql("SELECT avatar.avatar_default('identicon', %s, 100)", digest)))
        status, mime, _ = fetch(libravatar.libravatar_url(email="nobody@example.org", default="blank"))
        self.assertEqual((status, mime), (200, "image/png"))

    def test_other_domains_are_not_delegated_here(self):
        url = libravatar.libravatar_url(email="someone@elsewhere.example")
        self.assertTrue(url.startswith("http://cdn.libravatar.org/avatar/"), url)


if __name__ == "__main__":
    unittest.main(verbosity=2)
