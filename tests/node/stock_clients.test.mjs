// A stock Gravatar client from npm, `gravatar` (node-gravatar), pointed at
// the route.
//
// The library builds gravatar.com URLs; each test takes the URL it built for
// an address and swaps only its scheme and host for the route's, keeping the
// path and query exactly as the library wrote them (it spells the
// parameters s, d, f and r, and passes any other option, such as `name`, on
// into the query). It has no file-type suffix, so none is tested here. The
// images that come back are checked for their exact size by their JPEG SOF
// header and for their content by decoding them with jpeg-js.
//
// Run by ./run.sh test with node's own runner (node --test), which sets
// LIBRAVATAR_PORT (the route), LIBRAVATAR_DSN (its database, as admin) and
// PSQL (the psql that sets up the avatars).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { deflateSync } from 'node:zlib';

import gravatar from 'gravatar';
import jpeg from 'jpeg-js';

const ROUTE = `http://127.0.0.1:${process.env.LIBRAVATAR_PORT}`;
const DSN = process.env.LIBRAVATAR_DSN;
const PSQL = process.env.PSQL ?? 'psql';
assert.ok(process.env.LIBRAVATAR_PORT && DSN, 'LIBRAVATAR_PORT and LIBRAVATAR_DSN must be set');

// Two avatars, each the left half one colour and the right half another, so
// that a mirrored, cropped or substituted image shows. Written as the
// library's users would type them: the library trims and lower-cases.
const AVATAR = { resource: 'stock,3', email: ' Stock.Node@Example.com ', left: [200, 40, 160], right: [40, 180, 200] };
const RATED = { resource: 'stock,4', email: 'stock.node.rated@example.com', left: [240, 140, 20], right: [60, 60, 200] };
const UNKNOWN = 'nobody.stock.node@example.com';
const RATED_AS = 'pg';

// Off the quantised set (120 is stored as 128, 72 as 80, 33 as 40, 257 as
// 300) and the smallest.
const SIZES = [120, 72, 33, 1, 257];
const SIZE = 120; // for the tests about defaults, forcing and ratings

// --- the route, the database ------------------------------------------------

/** The URL the library built for `email` with `options`, on the route. */
function url(email, options) {
  const built = gravatar.url(email, options, true);
  const match = /^https:\/\/s\.gravatar\.com(\/avatar\/.*)$/.exec(built);
  assert.ok(match, `gravatar.url built ${built}, not an https://s.gravatar.com/avatar/ URL`);
  return ROUTE + match[1];
}

async function get(address) {
  const response = await fetch(address);
  return {
    status: response.status,
    mime: response.headers.get('content-type'),
    body: Buffer.from(await response.arrayBuffer()),
  };
}

const literal = (text) => `'${String(text).replaceAll("'", "''")}'`;

function sql(query) {
  return execFileSync(PSQL, ['--no-psqlrc', '-qAt', '-v', 'ON_ERROR_STOP=1', '-d', DSN, '-c', query], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'], // psql's errors go into the thrown error's message
  }).trim();
}

// --- images -----------------------------------------------------------------

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** Format and dimensions from the header alone: PNG's IHDR or a JPEG SOF. */
function header(body) {
  if (body.subarray(0, 8).equals(PNG_SIGNATURE) && body.toString('latin1', 12, 16) === 'IHDR') {
    return { format: 'image/png', width: body.readUInt32BE(16), height: body.readUInt32BE(20) };
  }
  if (body[0] === 0xff && body[1] === 0xd8) {
    let i = 2;
    while (i + 9 <= body.length && body[i] === 0xff) {
      const marker = body[i + 1];
      if (marker === 0xff) {
        i += 1; // fill byte
        continue;
      }
      // SOF0 to SOF15, except DHT (C4), JPG (C8) and DAC (CC).
      if (marker >= 0xc0 && marker <= 0xcf && ![0xc4, 0xc8, 0xcc].includes(marker)) {
        return { format: 'image/jpeg', height: body.readUInt16BE(i + 5), width: body.readUInt16BE(i + 7) };
      }
      i += 2 + body.readUInt16BE(i + 2);
    }
    return { format: 'image/jpeg without a frame header' };
  }
  return { format: `not an image: ${body.subarray(0, 16).toString('hex')}` };
}

function crc32(bytes) {
  let crc = 0xffffffff;
  for (const byte of bytes) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? 0xedb88320 ^ (crc >>> 1) : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

/** A side x side PNG, the left half `left` and the right half `right`. */
function solidHalves(left, right, side = 256) {
  const chunk = (kind, data) => {
    const head = Buffer.alloc(4);
    head.writeUInt32BE(data.length);
    const tail = Buffer.alloc(4);
    tail.writeUInt32BE(crc32(Buffer.concat([Buffer.from(kind), data])));
    return Buffer.concat([head, Buffer.from(kind), data, tail]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(side, 0);
  ihdr.writeUInt32BE(side, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit RGB
  const row = [0]; // filter: none
  for (let x = 0; x < side; x++) row.push(...(x < side / 2 ? left : right));
  const rows = Buffer.concat(Array.from({ length: side }, () => Buffer.from(row)));
  return Buffer.concat([PNG_SIGNATURE, chunk('IHDR', ihdr), chunk('IDAT', deflateSync(rows)), chunk('IEND', Buffer.alloc(0))]);
}

/** The mean colour of `image` (jpeg-js RGBA) within [x0, y0, x1, y1). */
function mean(image, [x0, y0, x1, y1] = [0, 0, image.width, image.height]) {
  const sum = [0, 0, 0];
  for (let y = y0; y < y1; y++) {
    for (let x = x0; x < x1; x++) {
      for (let c = 0; c < 3; c++) sum[c] += image.data[(y * image.width + x) * 4 + c];
    }
  }
  const n = (x1 - x0) * (y1 - y0);
  return sum.map((s) => Math.round(s / n));
}

const near = (a, b, tolerance = 40) => a.every((x, i) => Math.abs(x - b[i]) <= tolerance);
const spread = (colour) => Math.max(...colour) - Math.min(...colour); // 0 for any grey

/** Mean absolute difference per channel, 0 to 255; 255 if sizes differ. */
function difference(a, b) {
  if (a.width !== b.width || a.height !== b.height) return 255;
  let sum = 0;
  for (let i = 0; i < a.data.length; i += 4) {
    for (let c = 0; c < 3; c++) sum += Math.abs(a.data[i + c] - b.data[i + c]);
  }
  return sum / (a.width * a.height * 3);
}

/** Null if `image` is `avatar`'s two colours, else what it looks like. */
function avatarProblem(image, { left, right }) {
  const { width: w, height: h } = image;
  if (w < 8) {
    const average = left.map((l, i) => Math.floor((l + right[i]) / 2));
    const got = mean(image);
    return near(got, average) ? null : `mean colour ${got}, not about ${average}`;
  }
  const got = [mean(image, [0, 0, Math.floor(w / 4), h]), mean(image, [w - Math.floor(w / 4), 0, w, h])];
  if (near(got[0], left) && near(got[1], right)) return null;
  return `left and right quarters ${JSON.stringify(got)}, not about ${JSON.stringify([left, right])}`;
}

/**
 * The JPEG at `address`, decoded. Its exact size is a subtest of its own,
 * so that the checks of its content still run when it is wrong.
 */
async function image(t, address, size) {
  const { status, mime, body } = await get(address);
  assert.equal(`${status} ${mime}`, '200 image/jpeg', `GET ${address}`);
  const { format, width, height } = header(body);
  assert.equal(format, 'image/jpeg', `GET ${address}: the body is not the JPEG its header says`);
  await t.test(`${size}x${size}`, () => {
    assert.ok(width === size && height === size, `GET ${address}: asked for ${size}x${size}, got ${width}x${height}`);
  });
  return jpeg.decode(body, { useTArray: true, formatAsRGBA: true });
}

/** The route's d=mm for an unknown address: what generated defaults are not. */
async function silhouette(size) {
  const address = url(UNKNOWN, { s: size, d: 'mm' });
  const { status, mime, body } = await get(address);
  assert.equal(`${status} ${mime}`, '200 image/jpeg', `GET ${address}, the mm silhouette`);
  return jpeg.decode(body, { useTArray: true, formatAsRGBA: true });
}

function assertAvatar(address, got, avatar) {
  const problem = avatarProblem(got, avatar);
  assert.equal(problem, null, `GET ${address} should be the avatar of ${avatar.resource}: ${problem}`);
}

function assertNotAvatar(address, got, avatar) {
  assert.notEqual(avatarProblem(got, avatar), null, `GET ${address} should be a default, but it is the avatar of ${avatar.resource}`);
}

async function assertSilhouette(address, got, size) {
  const d = difference(got, await silhouette(size));
  assert.ok(d < 6, `GET ${address} should be the mm silhouette, but differs from it by ${d.toFixed(1)}`);
}

async function assertNotSilhouette(address, got, size) {
  const d = difference(got, await silhouette(size));
  assert.ok(d > 20, `GET ${address} is the mm silhouette (differs from it by ${d.toFixed(1)})`);
}

async function assertStatus(address, expected, what) {
  const { status } = await get(address);
  assert.equal(status, expected, `GET ${address} (${what}): ${status}, not ${expected}`);
}

// --- the tests --------------------------------------------------------------

before(() => {
  for (const { resource, email, left, right } of [AVATAR, RATED]) {
    sql(`SELECT avatar.avatar_set(${literal(resource)}, decode('${solidHalves(left, right).toString('hex')}', 'hex'))`);
    sql(`SELECT avatar.avatar_set_email(${literal(resource)}, ${literal(email)})`);
  }
});

after(() => {
  for (const { resource, email } of [AVATAR, RATED]) {
    sql(`SELECT avatar.avatar_unset_email(${literal(resource)}, ${literal(email)})`);
    sql(`SELECT avatar.avatar_delete(${literal(resource)})`);
  }
});

test('sizes off the quantised set come back exactly, and are the avatar', async (t) => {
  for (const s of SIZES) {
    const address = url(AVATAR.email, { s });
    await t.test(`s=${s}`, async (t) => assertAvatar(address, await image(t, address, s), AVATAR));
  }
  const address = url(AVATAR.email, {});
  await t.test('no s: the default 80', async (t) => assertAvatar(address, await image(t, address, 80), AVATAR));
});

test('an unknown address gets the default asked for', async (t) => {
  await t.test('d=404', () => assertStatus(url(UNKNOWN, { s: SIZE, d: '404' }), 404, 'an unknown address'));
  await t.test('d=mm is a grey silhouette', async (t) => {
    const address = url(UNKNOWN, { s: SIZE, d: 'mm' });
    const got = await image(t, address, SIZE);
    const corner = mean(got, [0, 0, 8, 8]);
    const middle = mean(got, [Math.floor(got.width / 3), 0, Math.floor((2 * got.width) / 3), got.height]);
    assert.ok(spread(corner) < 12, `GET ${address}: the silhouette's background is ${corner}, not grey`);
    assert.ok(Math.min(...middle) - Math.max(...corner) > 20, `GET ${address}: the middle ${middle} is no lighter figure on ${corner}`);
  });
  for (const [name, options] of [['no d', { s: SIZE }], ['d=mp', { s: SIZE, d: 'mp' }]]) {
    await t.test(`${name} is the mm silhouette`, async (t) => {
      const address = url(UNKNOWN, options);
      await assertSilhouette(address, await image(t, address, SIZE), SIZE);
    });
  }
});

test('generated defaults have the exact size and are not the silhouette', async (t) => {
  for (const [d, s] of [['identicon', SIZE], ['identicon', 33], ['retro', SIZE], ['retro', 72], ['wavatar', SIZE], ['wavatar', 33]]) {
    await t.test(`d=${d} s=${s}`, async (t) => {
      const address = url(UNKNOWN, { s, d });
      await assertNotSilhouette(address, await image(t, address, s), s);
    });
  }
});

test('d=color is one flat colour, not grey', async (t) => {
  for (const s of [SIZE, 33]) {
    await t.test(`s=${s}`, async (t) => {
      const address = url(UNKNOWN, { s, d: 'color' });
      const got = await image(t, address, s);
      const colour = mean(got);
      let worst = 0;
      for (let i = 0; i < got.data.length; i += 4) {
        for (let c = 0; c < 3; c++) worst = Math.max(worst, Math.abs(got.data[i + c] - colour[c]));
      }
      assert.ok(worst <= 16, `GET ${address}: pixels stray ${worst} from the mean ${colour}`);
      assert.ok(spread(colour) > 30, `GET ${address}: the colour ${colour} is grey`);
    });
  }
});

test('d=initials with name= is a white letter on a colour', async (t) => {
  const address = url(UNKNOWN, { s: SIZE, d: 'initials', name: 'Zoe Quinn' });
  assert.match(address, /[?&]name=Zoe%20Quinn(&|$)/, 'the library passes name= on');
  const got = await image(t, address, SIZE);
  const corner = mean(got, [0, 0, 8, 8]);
  assert.ok(spread(corner) > 30, `GET ${address}: the background ${corner} is not a colour`);
  // The letter: light pixels, a few percent of them, in the middle.
  const { width: w, height: h } = got;
  const light = [];
  for (let i = 0; i < w * h; i++) {
    if (Math.min(got.data[i * 4], got.data[i * 4 + 1], got.data[i * 4 + 2]) >= 180) light.push([i % w, Math.floor(i / w)]);
  }
  const share = light.length / (w * h);
  assert.ok(share >= 0.005 && share <= 0.5, `GET ${address}: ${(share * 100).toFixed(1)}% of the pixels are white, not a letter's 0.5% to 50%`);
  const xs = light.map(([x]) => x);
  const ys = light.map(([, y]) => y);
  const box = [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)];
  const centre = [(box[0] + box[2]) / 2, (box[1] + box[3]) / 2];
  const inside = box[0] > 0 && box[1] > 0 && box[2] < w - 1 && box[3] < h - 1;
  assert.ok(
    inside && centre[0] > w / 3 && centre[0] < (2 * w) / 3 && centre[1] > h / 3 && centre[1] < (2 * h) / 3,
    `GET ${address}: the white pixels span ${box}, not a letter in the middle`,
  );
  await assertNotSilhouette(address, got, SIZE);
});

test('f=y gives the default even for an address with an avatar', async (t) => {
  await t.test('without f, d=404 is the avatar', async (t) => {
    const address = url(AVATAR.email, { s: SIZE, d: '404' });
    assertAvatar(address, await image(t, address, SIZE), AVATAR);
  });
  await t.test('f=y d=404 is a 404', () => assertStatus(url(AVATAR.email, { s: SIZE, d: '404', f: 'y' }), 404, 'forced 404'));
  await t.test('f=y alone is the mm silhouette', async (t) => {
    const address = url(AVATAR.email, { s: SIZE, f: 'y' });
    const got = await image(t, address, SIZE);
    assertNotAvatar(address, got, AVATAR);
    await assertSilhouette(address, got, SIZE);
  });
  await t.test('f=y d=identicon is an identicon', async (t) => {
    const address = url(AVATAR.email, { s: SIZE, d: 'identicon', f: 'y' });
    const got = await image(t, address, SIZE);
    assertNotAvatar(address, got, AVATAR);
    await assertNotSilhouette(address, got, SIZE);
  });
});

test(`r= hides an avatar rated ${RATED_AS} from requests below it`, async (t) => {
  await t.test(`avatar_set_rating('${RATED.resource}', '${RATED_AS}')`, () => {
    assert.equal(sql(`SELECT avatar.avatar_set_rating(${literal(RATED.resource)}, ${literal(RATED_AS)})`), 't');
  });
  for (const [r, served] of [[undefined, false], ['g', false], ['pg', true], ['r', true], ['x', true]]) {
    const address = url(RATED.email, r ? { s: SIZE, d: '404', r } : { s: SIZE, d: '404' });
    await t.test(`r=${r ?? 'none (g)'}: ${served ? 'the avatar' : '404'}`, async (t) => {
      if (served) assertAvatar(address, await image(t, address, SIZE), RATED);
      else await assertStatus(address, 404, `a ${RATED_AS} avatar, with d=404`);
    });
  }
  await t.test('r=g without d is the mm silhouette', async (t) => {
    const address = url(RATED.email, { s: SIZE, r: 'g' });
    const got = await image(t, address, SIZE);
    assertNotAvatar(address, got, RATED);
    await assertSilhouette(address, got, SIZE);
  });
  await t.test('an avatar nobody rated is g, which r=g accepts', async (t) => {
    const address = url(AVATAR.email, { s: SIZE, r: 'g' });
    assertAvatar(address, await image(t, address, SIZE), AVATAR);
  });
});
