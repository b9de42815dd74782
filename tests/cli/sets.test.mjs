// sets.test.mjs - make-sets (our evaluation sets and the ink fixtures of issue 18) and
// digits-eval --set: the same flags give the same bytes, the files are what labels.tsv and
// MANIFEST.tsv say, a third of paper carries an EXIF Orientation that a browser turns upright,
// and the committed fixtures are exactly what the generator writes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { launch } from '../web/lib.mjs';

const build = process.env.DIGITS_BUILD || 'build';
const data = process.env.MNIST_DIR || 'data/mnist';
const fixtures = 'tests/fixtures/ink';
const model = 'models/mnist-cnn.model';
// small sets: 30 paper images (10 with an EXIF tag), no 12 MP image
const small = ['--mnist', data, '--count', '30', '--numbers', '16', '--nondigits', '20',
    '--big-every', '0'];

function run(bin, args) {
    const r = spawnSync(join(build, bin), args, { encoding: 'utf8', timeout: 600_000 });
    if (r.error) throw r.error;
    return r;
}

function makeSets(args) {
    const r = run('make-sets', args);
    assert.equal(r.status, 0, `make-sets ${args.join(' ')}: ${r.stderr}`);
}

function tmp() { return mkdtempSync(join(tmpdir(), 'digits-sets-')); }

function listFiles(dir, prefix = '') {
    const out = [];
    for (const e of readdirSync(join(dir, prefix), { withFileTypes: true })) {
        const rel = join(prefix, e.name);
        if (e.isDirectory()) out.push(...listFiles(dir, rel));
        else out.push(rel);
    }
    return out.sort();
}

function assertSameTree(a, b) {
    const fa = listFiles(a), fb = listFiles(b);
    assert.deepEqual(fa, fb, 'same file names');
    assert.ok(fa.length > 0, 'some files');
    for (const f of fa) {
        assert.ok(readFileSync(join(a, f)).equals(readFileSync(join(b, f))), `${f} differs`);
    }
}

function tsv(path, header) {
    const lines = readFileSync(path, 'utf8').split('\n');
    assert.equal(lines.pop(), '', `${path} ends with a newline`);
    assert.equal(lines[0], header, `${path} header`);
    return lines.slice(1).map((l) => l.split('\t'));
}

// Width and height from a PNG's IHDR or a JPEG's SOF, and the EXIF Orientation (or null).
function imageInfo(buf) {
    if (buf.subarray(0, 8).equals(Buffer.from('89504e470d0a1a0a', 'hex'))) {
        return { type: 'png', w: buf.readUInt32BE(16), h: buf.readUInt32BE(20), orientation: null };
    }
    assert.equal(buf.readUInt16BE(0), 0xffd8, 'a JPEG starts with SOI');
    let pos = 2, orientation = null, first = true;
    while (pos + 4 <= buf.length) {
        assert.equal(buf[pos], 0xff, `marker at ${pos}`);
        const m = buf[pos + 1], len = buf.readUInt16BE(pos + 2);
        if (m === 0xe1 && buf.toString('latin1', pos + 4, pos + 10) === 'Exif\0\0') {
            assert.ok(first, 'the EXIF block comes right after SOI');
            orientation = exifOrientation(buf.subarray(pos + 10, pos + 2 + len));
        }
        if (m >= 0xc0 && m <= 0xc3) {
            return { type: 'jpeg', h: buf.readUInt16BE(pos + 5), w: buf.readUInt16BE(pos + 7), orientation };
        }
        first = false;
        pos += 2 + len;
    }
    assert.fail('no SOF marker');
}

function exifOrientation(tiff) {
    const le = tiff.toString('latin1', 0, 2) === 'II';
    const u16 = (o) => (le ? tiff.readUInt16LE(o) : tiff.readUInt16BE(o));
    const u32 = (o) => (le ? tiff.readUInt32LE(o) : tiff.readUInt32BE(o));
    assert.equal(u16(2), 42, 'TIFF magic');
    const ifd = u32(4), n = u16(ifd);
    for (let i = 0; i < n; i++) {
        const e = ifd + 2 + 12 * i;
        if (u16(e) === 0x0112) return u16(e + 8);
    }
    return null;
}

test('make-sets --help documents every flag, and bad flags exit 2', () => {
    const h = run('make-sets', ['--help']);
    assert.equal(h.status, 0);
    for (const flag of ['--out', '--sets', '--source', '--first', '--count', '--numbers',
        '--nondigits', '--big-every', '--mnist', '--fonts', '--seed', '--threads', '--fixtures',
        '--exif-probes']) {
        assert.match(h.stdout, new RegExp(`${flag} `), flag);
    }
    assert.equal(run('make-sets', []).status, 2);
    assert.match(run('make-sets', ['--out', 'x', '--sets', 'letters']).stderr, /unknown set 'letters'/);
    assert.match(run('make-sets', ['--out', 'x', '--source', 'val']).stderr, /test or train/);
});

test('the same flags and seed give byte-identical sets, whatever the thread count', () => {
    const a = tmp(), b = tmp(), c = tmp();
    try {
        makeSets([...small, '--out', a, '--threads', '1']);
        makeSets([...small, '--out', b, '--threads', '2']);
        assertSameTree(a, b);
        makeSets([...small, '--out', c, '--seed', '19']);
        assert.ok(!readFileSync(join(a, 'paper/00001.jpg')).equals(readFileSync(join(c, 'paper/00001.jpg'))),
            'another seed, other images');
    } finally { for (const d of [a, b, c]) rmSync(d, { recursive: true, force: true }); }
});

test('labels.tsv and conditions.tsv list every image with its label', () => {
    const dir = tmp();
    try {
        makeSets([...small, '--out', dir]);
        const want = { paper: /^[0-9]$/, numbers: /^[0-9]{2,8}$/, nondigits: /^-$/ };
        const counts = { paper: 30, numbers: 16, nondigits: 20 };
        for (const set of Object.keys(want)) {
            const rows = tsv(join(dir, set, 'labels.tsv'), 'file\tlabel');
            assert.equal(rows.length, counts[set], `${set}: ${counts[set]} rows`);
            const conds = readFileSync(join(dir, set, 'conditions.tsv'), 'utf8').trim().split('\n');
            assert.equal(conds.length, rows.length + 1, `${set}: a condition row per image`);
            rows.forEach(([file, label, extra], i) => {
                assert.equal(extra, undefined, `${set}/${file}: two columns`);
                assert.match(label, want[set], `${set}/${file}: label '${label}'`);
                assert.ok(conds[i + 1].startsWith(`${file}\t`), `${set}: conditions row ${i}`);
                const info = imageInfo(readFileSync(join(dir, set, file)));
                assert.equal(info.type, file.endsWith('.png') ? 'png' : 'jpeg', file);
            });
            assert.equal(listFiles(join(dir, set)).length, rows.length + 2, `${set}: no other files`);
        }
        // the paper labels are the MNIST test labels in order (an IDX label file has an 8-byte header)
        const labels = readFileSync(join(data, 't10k-labels-idx1-ubyte'));
        for (const [file, label] of tsv(join(dir, 'paper/labels.tsv'), 'file\tlabel')) {
            assert.equal(Number(label), labels[8 + Number(file.slice(0, 5))], file);
        }
        // a quarter of the numbers have touching neighbours
        const numbers = tsv(join(dir, 'numbers/conditions.tsv'), 'file\tsize\tstyle\tdigits\ttouching_pairs');
        assert.equal(numbers.filter((r) => Number(r[4]) > 0).length, 4, 'numbers 0,1,8,9 touch');
    } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('a third of paper is stored rotated with an EXIF Orientation 2..8', () => {
    const dir = tmp();
    try {
        makeSets([...small, '--out', dir, '--sets', 'paper']);
        const rows = tsv(join(dir, 'paper/conditions.tsv'),
            'file\tsource\tsize\tquality\torientation\tpaper\tink\tlines\tshadow');
        const seen = new Set();
        let tagged = 0;
        for (const [file, , size, , o] of rows) {
            const info = imageInfo(readFileSync(join(dir, 'paper', file)));
            const [w, h] = size.split('x').map(Number);
            if (o === '1') {
                assert.equal(info.orientation, null, `${file}: no tag`);
                assert.deepEqual([info.w, info.h], [w, h], `${file}: size`);
            } else {
                tagged++;
                seen.add(info.orientation);
                assert.equal(String(info.orientation), o, `${file}: the tag says ${o}`);
                // 5..8 turn the image a quarter: stored width is the upright height
                assert.deepEqual([info.w, info.h], Number(o) >= 5 ? [h, w] : [w, h], `${file}: stored size`);
            }
        }
        assert.equal(tagged, 10, 'items 0, 3, ..., 27');
        assert.deepEqual([...seen].sort(), [2, 3, 4, 5, 6, 7, 8], 'every orientation 2..8');
    } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('every 12 MP paper image is a 4032x3024 JPEG', () => {
    const dir = tmp();
    try {
        makeSets(['--mnist', data, '--out', dir, '--sets', 'paper', '--count', '2', '--big-every', '2']);
        const info = imageInfo(readFileSync(join(dir, 'paper/00001.jpg')));
        assert.equal(info.w * info.h, 4032 * 3024);
        assert.ok(statSync(join(dir, 'paper/00001.jpg')).size < 4 << 20, 'a phone-sized file');
    } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('a browser shows every EXIF orientation probe upright', async () => {
    const dir = tmp();
    const browser = await launch();
    try {
        makeSets(['--exif-probes', dir]);
        const page = await browser.newPage();
        for (let o = 1; o <= 8; o++) {
            const src = `data:image/jpeg;base64,${readFileSync(join(dir, `probe-${o}.jpg`)).toString('base64')}`;
            const r = await page.evaluate(async (s) => {
                const img = new Image();
                img.src = s;
                await img.decode();
                const c = document.createElement('canvas');
                c.width = img.naturalWidth;
                c.height = img.naturalHeight;
                const g = c.getContext('2d');
                g.drawImage(img, 0, 0);
                const at = (x, y) => Array.from(g.getImageData(x, y, 1, 1).data.slice(0, 3));
                return { w: c.width, h: c.height, q: [at(8, 8), at(c.width - 8, 8), at(8, c.height - 8), at(c.width - 8, c.height - 8)] };
            }, src);
            assert.deepEqual([r.w, r.h], [48, 32], `orientation ${o}: upright size`);
            const want = [[220, 30, 30], [30, 200, 30], [30, 30, 220], [250, 250, 250]];
            r.q.forEach((px, k) => px.forEach((v, ch) => assert.ok(Math.abs(v - want[k][ch]) < 12,
                `orientation ${o}: quadrant ${k} is ${px}, expected ${want[k]}`)));
        }
    } finally {
        await browser.close();
        rmSync(dir, { recursive: true, force: true });
    }
});

test('the committed ink fixtures are exactly what make-sets --fixtures writes', () => {
    const dir = tmp();
    try {
        makeSets(['--fixtures', dir]);
        assertSameTree(fixtures, dir);
    } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('MANIFEST.tsv lists every fixture, one or two per case, each with a mask of its size', () => {
    const rows = tsv(join(fixtures, 'MANIFEST.tsv'), 'file\tdigit\tcase\tnote');
    const cases = new Map();
    for (const [file, digit, kase, note, extra] of rows) {
        assert.equal(extra, undefined, `${file}: four columns`);
        assert.match(digit, /^[0-9]$/);
        assert.ok(note.length > 5, `${file}: a note`);
        cases.set(kase, (cases.get(kase) || 0) + 1);
        const img = imageInfo(readFileSync(join(fixtures, file)));
        const mask = imageInfo(readFileSync(join(fixtures, file.replace(/\.(png|jpg)$/, '.mask.png'))));
        assert.equal(mask.type, 'png');
        assert.deepEqual([mask.w, mask.h], [img.w, img.h], `${file}: mask size`);
        assert.ok(img.w >= 150 && img.w <= 400 && img.h >= 150 && img.h <= 400, `${file}: ${img.w}x${img.h}`);
        assert.ok(statSync(join(fixtures, file)).size < 24 << 10, `${file}: a few KB`);
    }
    for (const c of ['grey_paper', 'cream_paper', 'coloured_paper', 'blue_ink', 'black_ink', 'pencil',
        'shadow', 'gradient', 'jpeg_artefacts', 'specks', 'ruled', 'squared', 'border', 'chalk',
        'thin_strokes', 'heavy_strokes', 'narrow', 'clean_canvas', 'mnist_polarity']) {
        assert.ok(cases.has(c), `case ${c}`);
    }
    for (const [c, n] of cases) assert.ok(n <= 3, `${c}: ${n} fixtures`);
    assert.equal(listFiles(fixtures).length, 2 * rows.length + 1, 'an image and a mask per row');
});

test('digits-eval --set reports accuracy on paper, rejection on nondigits, exact numbers', () => {
    const dir = tmp();
    try {
        makeSets([...small, '--out', dir, '--count', '12', '--sets', 'paper,nondigits,numbers']);
        const p = run('digits-eval', ['--model', model, '--set', 'paper', '--sets', dir, '--threads', '2']);
        assert.equal(p.status, 0, p.stderr);
        assert.match(p.stdout, /^accuracy \d+\.\d\d% \(\d+\/12; /m);
        assert.match(p.stdout, /orientation=1 \(upright\)/);
        const pj = JSON.parse(p.stdout.trim().split('\n').pop());
        assert.equal(pj.set, 'paper');
        assert.equal(pj.n, 12);
        assert.equal(pj.answered + pj.refused + pj.blank + pj.rejected, 12);
        assert.equal(pj.confusion.flat().reduce((a, b) => a + b, 0), pj.answered);
        assert.equal(pj.upright[0] + pj.exif_rotated[0], 12);

        const j = run('digits-eval', ['--model', model, '--set', 'paper', '--sets', dir, '--json']);
        assert.equal(j.status, 0);
        assert.deepEqual(JSON.parse(j.stdout), pj, '--json prints only the same line');

        const nd = run('digits-eval', ['--model', model, '--set', 'nondigits', '--sets', dir]);
        assert.equal(nd.status, 0, nd.stderr);
        assert.match(nd.stdout, /^not a digit: \d+ of 20 /m);
        const nj = JSON.parse(nd.stdout.trim().split('\n').pop());
        assert.equal(nj.n, 20);
        assert.equal(nj.answered + nj.refused + nj.blank + nj.rejected, 20);
        assert.equal(nj.fraction_rejected, (nj.rejected + nj.refused + nj.blank) / 20);

        const num = run('digits-eval', ['--model', model, '--set', 'numbers', '--sets', dir]);
        assert.equal(num.status, 0, num.stderr);
        assert.match(num.stdout, /separated +\d+ numbers: +\d+\.\d\d% exact/);
        const mj = JSON.parse(num.stdout.trim().split('\n').pop());
        assert.equal(mj.set, 'numbers');
        assert.equal(mj.separated.n + mj.touching.n, mj.n);
        assert.ok(mj.n > 0);
        for (const k of ['separated', 'touching']) {
            assert.ok(mj[k].exact <= mj[k].n && mj[k].digits_right <= mj[k].digits, k);
        }
        assert.ok(mj.separated.exact > 0, 'some separated numbers are read exactly');

        // --misses: one line on stderr per number not read exactly, with its truth and boxes
        const mi = run('digits-eval', ['--model', model, '--set', 'numbers', '--sets', dir,
            '--misses', '--json']);
        assert.equal(mi.status, 0, mi.stderr);
        const lines = mi.stderr.split('\n').filter((l) => l.startsWith('miss '));
        assert.equal(lines.length, mj.n - mj.separated.exact - mj.touching.exact, mi.stderr);
        const labels = tsv(join(dir, 'numbers/labels.tsv'), 'file\tlabel');
        for (const l of lines) {
            const m = l.match(/^miss (\S+) \d+x\d+ want (\d+) read ([0-9?]*|- \(refused or blank\))( \[\d+,\d+,\d+,\d+\])*$/);
            assert.ok(m, l);
            assert.ok(labels.some((r) => r[0] === m[1] && r[1] === m[2]), l);
            assert.notEqual(m[3], m[2], l);
        }
        // with --set paper: one line per image not read right, with its digit and conditions
        const pm = run('digits-eval', ['--model', model, '--set', 'paper', '--sets', dir,
            '--misses', '--json']);
        assert.equal(pm.status, 0, pm.stderr);
        const plines = pm.stderr.split('\n').filter((l) => l.startsWith('miss '));
        assert.equal(plines.length, 12 - pj.correct, pm.stderr);
        const plabels = tsv(join(dir, 'paper/labels.tsv'), 'file\tlabel');
        for (const l of plines) {
            const m = l.match(/^miss (\S+) want (\d) read (\d \(p [01]\.\d{3}\)|- \((not a digit|blank|refused)\)) \S+\t/);
            assert.ok(m, l);
            assert.ok(plabels.some((r) => r[0] === m[1] && r[1] === m[2]), l);
            assert.notEqual(m[3][0], m[2], l);
        }
        assert.equal(run('digits-eval', ['--model', model, '--set', 'nondigits', '--misses']).status, 2);

        const missing = run('digits-eval', ['--model', model, '--set', 'paper', '--sets', join(dir, 'none')]);
        assert.equal(missing.status, 1);
        assert.match(missing.stderr, /make sets/);
        assert.equal(run('digits-eval', ['--model', model, '--set', 'letters']).status, 2);
    } finally { rmSync(dir, { recursive: true, force: true }); }
});
