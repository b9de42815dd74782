// page.test.mjs - the drawing page in a real browser (system Chromium via playwright-core)
// against the real digits-server and a real model. Strokes are drawn with real mouse and touch
// input; every state is saved as a screenshot in build/web-screenshots/. Any console error or
// uncaught exception fails the test it happens in.
//
//   node --test --test-concurrency=1 tests/web/*.test.mjs     (DIGITS_BUILD=build)

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import {
    SHOTS, DIGITS, startServer, launch, open, shot, drawMouse, drawTouch, drawPen, settledPrediction,
    bars, padInk, strokesPng, mainModel, smallModel,
} from './lib.mjs';

const DESKTOP = { viewport: { width: 1280, height: 900 } };
const PHONE = { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, hasTouch: true, isMobile: true };

let browser, server, ctx;

before(async () => {
    fs.rmSync(SHOTS, { recursive: true, force: true });
    fs.mkdirSync(SHOTS, { recursive: true });
    server = await startServer([mainModel()]);
    browser = await launch();
    ctx = await browser.newContext({ ...DESKTOP, colorScheme: 'light' });
});

after(async () => {
    await browser?.close();
    await server?.stop();
});

function noErrors(errors) {
    assert.deepEqual(errors, [], 'the page logged errors');
}

test('the page loads with a blank prompt and the model card with its training curves', async () => {
    const { page, errors } = await open(ctx, server.url);
    assert.equal(await settledPrediction(page), '');
    assert.match(await page.textContent('#prompt'), /draw a digit/i);
    const b = await bars(page);
    assert.deepEqual(b.map((x) => x.digit), ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    assert.ok(b.every((x) => x.p === 0), 'bars are empty on a blank canvas');

    await page.waitForSelector('#arch li');
    assert.match(await page.textContent('#arch'), /dense/);
    assert.match(await page.textContent('#params'), /^\d{1,3}(,\d{3})*$/);
    assert.match(await page.textContent('#test-acc'), /^\d+\.\d\d%$/);
    // Both charts are drawn: a line (or markers for a one-epoch model) per series, axes, legend.
    for (const id of ['#chart-loss', '#chart-acc']) {
        const drawn = await page.$eval(id, (c) => ({
            paths: [...c.querySelectorAll('.series path')].map((p) => p.getAttribute('d').length),
            markers: c.querySelectorAll('.series circle').length,
            ticks: c.querySelectorAll('.axes text').length,
            legend: c.querySelector('.legend').textContent,
        }));
        assert.ok(drawn.paths.some((n) => n > 20) || drawn.markers >= 2, `${id} has curves`);
        assert.ok(drawn.ticks >= 4, `${id} has axis labels`);
        assert.match(drawn.legend, /train.*test/);
    }
    assert.equal(await page.isHidden('#picker'), true, 'no model picker with one model');
    await shot(page, 'desktop-light-blank');
    noErrors(errors);
    await page.close();
});

test('mouse-drawn 0, 1 and 7 are each predicted correctly, live and at stroke end', async () => {
    const { page, errors } = await open(ctx, server.url);
    for (const digit of ['0', '1', '7']) {
        await page.click('#clear');
        const requests = [];
        const onRequest = (r) => { if (r.url().includes('/predict')) requests.push(r); };
        page.on('request', onRequest);
        await drawMouse(page, DIGITS[digit]);
        assert.equal(await settledPrediction(page), digit, `drawn ${digit}`);
        page.off('request', onRequest);
        assert.ok(requests.length >= 2, `live predictions while drawing (${requests.length} requests)`);
        const body = JSON.parse(requests.at(-1).postData());
        assert.equal(body.width, 140);
        assert.equal(body.height, 140);
        assert.equal(body.pixels.length, 140 * 140);
        assert.equal(body.return_input, true);
        assert.ok(body.pixels.every((v) => v >= 0 && v <= 1));

        const b = await bars(page);
        const sum = b.reduce((s, x) => s + x.p, 0);
        assert.ok(Math.abs(sum - 1) < 1e-3, `probabilities sum to 1 (${sum})`);
        const top = b.reduce((a, x) => (x.p > a.p ? x : a));
        assert.equal(top.digit, digit, 'the tallest bar is the predicted digit');
        assert.match(await page.textContent('#confidence'), /%/);
        assert.ok(Number(await page.getAttribute('#input-view', 'data-ink')) > 10,
            'the network input is shown');
        await page.waitForFunction((d) => document.querySelector('#announce').textContent.includes(`Prediction: ${d}`),
            digit);
        await page.waitForTimeout(300); // let the bars finish their transition
        await shot(page, `desktop-light-drawn-${digit}`);
    }
    noErrors(errors);
    await page.close();
});

test('undo removes the last stroke, by button and by Ctrl+Z', async () => {
    const { page, errors } = await open(ctx, server.url);
    await drawMouse(page, DIGITS[7]);
    assert.equal(await settledPrediction(page), '7');
    assert.equal(await page.getAttribute('#pad', 'data-strokes'), '2');
    const full = await padInk(page);
    const seen = await page.getAttribute('#input-view', 'data-ink');

    const req = page.waitForRequest((r) => r.url().includes('/predict'));
    await page.click('#undo');
    assert.equal(await page.getAttribute('#pad', 'data-strokes'), '1');
    const half = await padInk(page);
    assert.ok(half > 0 && half < full, `less ink after undo (${half} < ${full})`);
    assert.equal(JSON.parse((await req).postData()).pixels.filter((v) => v > 0).length > 0, true);
    assert.match(await settledPrediction(page), /^\d$/, 'the remaining stroke is predicted again');
    assert.notEqual(await page.getAttribute('#input-view', 'data-ink'), seen, 'the network input changed');
    await shot(page, 'desktop-light-undo');

    await page.keyboard.press('Control+z');
    assert.equal(await page.getAttribute('#pad', 'data-strokes'), '0');
    assert.equal(await padInk(page), 0);
    assert.equal(await settledPrediction(page), '');
    noErrors(errors);
    await page.close();
});

test('clear empties the canvas and the chart, by button, Escape and Delete', async () => {
    const { page, errors } = await open(ctx, server.url);
    for (const how of ['button', 'Escape', 'Delete']) {
        await drawMouse(page, DIGITS[0]);
        assert.equal(await settledPrediction(page), '0');
        assert.ok(await padInk(page) > 0);
        if (how === 'button') await page.click('#clear');
        else await page.keyboard.press(how);
        assert.equal(await padInk(page), 0, `pad empty after ${how}`);
        assert.equal(await settledPrediction(page), '');
        assert.ok((await bars(page)).every((x) => x.p === 0), `bars empty after ${how}`);
        assert.equal(await page.getAttribute('#input-view', 'data-ink'), '0');
        assert.match(await page.textContent('#prompt'), /draw a digit/i);
    }
    await shot(page, 'desktop-light-cleared');
    noErrors(errors);
    await page.close();
});

test('an uploaded PNG is classified through the image path', async () => {
    const { page, errors } = await open(ctx, server.url);
    const four = [[[0.32, 0.15], [0.26, 0.58], [0.74, 0.58]], [[0.62, 0.22], [0.62, 0.86]]];
    const req = page.waitForRequest((r) => r.url().includes('/predict') && r.method() === 'POST');
    await page.setInputFiles('#file', { name: 'four.png', mimeType: 'image/png', buffer: strokesPng(four) });
    const r = await req;
    assert.equal(r.headers()['content-type'], 'image/png');
    assert.match(r.url(), /return_input=1/);
    assert.equal(await settledPrediction(page), '4');
    assert.equal(await page.textContent('#pad-caption'), 'four.png');
    assert.ok(Number(await page.getAttribute('#input-view', 'data-ink')) > 10);
    await page.waitForTimeout(300);
    await shot(page, 'desktop-light-upload');
    // Drawing replaces the image.
    await drawMouse(page, DIGITS[1]);
    assert.equal(await settledPrediction(page), '1');
    assert.equal(await page.isHidden('#pad-caption'), true);

    // Dropping a file on the page goes the same way.
    const png = strokesPng(four).toString('base64');
    await page.evaluate((b64) => {
        const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        const dt = new DataTransfer();
        dt.items.add(new File([bytes], 'dropped.png', { type: 'image/png' }));
        const zone = document.getElementById('drop-zone');
        for (const type of ['dragenter', 'dragover', 'drop']) {
            zone.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }));
        }
    }, png);
    await page.waitForFunction(() => document.querySelector('#pad-caption').textContent === 'dropped.png');
    assert.equal(await settledPrediction(page), '4');
    noErrors(errors);
    await page.close();
});

test('a stale answer never overwrites a newer one', async () => {
    const { page, errors } = await open(ctx, server.url);
    let first = true;
    await page.route('**/predict*', async (route) => {
        if (!first) return route.continue();
        first = false;
        // The first request of the stroke answers last, and wrongly.
        await new Promise((r) => setTimeout(r, 800));
        const fake = { prediction: 3, probabilities: [0, 0, 0, 1, 0, 0, 0, 0, 0, 0], model: 'x', elapsed_us: 1 };
        await route.fulfill({ json: fake }).catch(() => {}); // the page may have aborted it
    });
    await drawMouse(page, DIGITS[1]);
    assert.equal(await settledPrediction(page), '1');
    await page.waitForTimeout(1200);
    assert.equal(await page.textContent('#prediction'), '1', 'the late answer was ignored');
    await page.unroute('**/predict*');
    noErrors(errors.filter((e) => !/ERR_FAILED|ERR_ABORTED/.test(e)));
    await page.close();
});

test('touch drawing works on a phone and never scrolls the page; light and dark', async () => {
    for (const scheme of ['light', 'dark']) {
        const phone = await browser.newContext({ ...PHONE, colorScheme: scheme });
        const { page, errors } = await open(phone, server.url);
        const cdp = await phone.newCDPSession(page);
        const kinds = [];
        await page.exposeFunction('notePointer', (k) => kinds.push(k));
        await page.$eval('#pad', (c) => c.addEventListener('pointerdown', (e) => window.notePointer(e.pointerType)));
        const scroll = await page.evaluate(() => window.scrollY);
        await drawTouch(page, cdp, DIGITS[7]);
        assert.equal(await settledPrediction(page), '7');
        assert.ok(kinds.length >= 2 && kinds.every((k) => k === 'touch'), `touch pointers (${kinds})`);
        assert.equal(await page.evaluate(() => window.scrollY), scroll, 'the page did not scroll');
        const width = await page.evaluate(() => document.documentElement.scrollWidth);
        assert.ok(width <= 390, `no horizontal overflow on a phone (${width}px)`);
        await page.waitForTimeout(300);
        await shot(page, `phone-${scheme}-drawn-7`);
        noErrors(errors);
        await phone.close();
    }
});

test('a pen (stylus) draws like a mouse', async () => {
    const { page, errors } = await open(ctx, server.url);
    const cdp = await ctx.newCDPSession(page);
    const kinds = [];
    await page.exposeFunction('notePointer', (k) => kinds.push(k));
    await page.$eval('#pad', (c) => c.addEventListener('pointerdown', (e) => window.notePointer(e.pointerType)));
    await drawPen(page, cdp, DIGITS[1]);
    assert.equal(await settledPrediction(page), '1');
    assert.ok(kinds.length >= 1 && kinds.every((k) => k === 'pen'), `pen pointers (${kinds})`);
    noErrors(errors);
    await page.close();
});

test('dark theme on a desktop', async () => {
    const dark = await browser.newContext({ ...DESKTOP, colorScheme: 'dark' });
    const { page, errors } = await open(dark, server.url);
    const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    const [r, g, b] = bg.match(/\d+/g).map(Number);
    assert.ok(r + g + b < 150, `dark background (${bg})`);
    await drawMouse(page, DIGITS[0]);
    assert.equal(await settledPrediction(page), '0');
    await page.waitForTimeout(300);
    await shot(page, 'desktop-dark-drawn-0');
    noErrors(errors);
    await dark.close();
});

test('controls are labelled and keyboard-operable', async () => {
    const { page, errors } = await open(ctx, server.url);
    await drawMouse(page, DIGITS[1]);
    assert.equal(await settledPrediction(page), '1');
    // Tab to Clear and press Enter.
    let found = false;
    for (let i = 0; i < 15 && !found; i++) {
        await page.keyboard.press('Tab');
        found = await page.evaluate(() => document.activeElement?.id === 'clear');
    }
    assert.ok(found, 'Clear is reachable with Tab');
    await page.keyboard.press('Enter');
    assert.equal(await padInk(page), 0);
    for (const id of ['#undo', '#clear', '#open']) {
        assert.ok((await page.$eval(id, (b) => b.textContent.trim())).length > 2, `${id} has a label`);
    }
    assert.ok(await page.getAttribute('#pad', 'aria-label'));
    assert.equal(await page.getAttribute('#announce', 'aria-live'), 'polite');
    assert.equal(await page.$$eval('[aria-live]', (els) => els.length), 1, 'only one live region besides #status');
    noErrors(errors);
    await page.close();
});

test('several models: the picker switches the model card and compare shows every model', async () => {
    const two = await startServer([mainModel(), smallModel()]);
    try {
        const { page, errors } = await open(ctx, two.url);
        assert.equal(await page.isVisible('#picker'), true);
        const names = await page.$$eval('#model-select option', (o) => o.map((x) => x.value));
        assert.equal(names.length, 2);
        await drawMouse(page, DIGITS[7]);
        assert.equal(await settledPrediction(page), '7');
        await page.waitForFunction((n) => document.querySelectorAll('#compare .cmp').length === n, names.length);
        const cmp = await page.$$eval('#compare .cmp', (els) => els.map((e) => [e.dataset.model, e.dataset.prediction]));
        assert.deepEqual(cmp.map((c) => c[0]), names);
        assert.ok(cmp.every((c) => /^\d$/.test(c[1])), `every model answered (${JSON.stringify(cmp)})`);
        await page.waitForTimeout(300);
        await shot(page, 'desktop-light-compare');

        const params = await page.textContent('#params');
        await page.selectOption('#model-select', names[1]);
        await page.waitForFunction((n) => document.querySelector('#model-name').textContent.startsWith(n), names[1]);
        assert.notEqual(await page.textContent('#params'), params);
        assert.match(await settledPrediction(page), /^\d$/);
        assert.equal(await page.getAttribute('#compare .cmp.selected', 'data-model'), names[1]);
        noErrors(errors);
        await page.close();
    } finally {
        await two.stop();
    }
});

test('server down: a clear message, then recovery when it is back', async () => {
    let srv = await startServer([mainModel()]);
    const port = srv.port;
    try {
        const { page, errors } = await open(ctx, srv.url);
        await srv.stop();
        await drawMouse(page, DIGITS[1]);
        await page.waitForSelector('#status[data-state="offline"]', { timeout: 5000 });
        assert.match(await page.textContent('#status'), /cannot reach the digits server/i);
        await shot(page, 'desktop-light-offline');
        // the wait counts down, outside the live region (read out once, not every second)
        const countdown = () => {
            const t = document.querySelector('#status-countdown').textContent;
            const m = /in (\d+) s/.exec(t);
            return m ? Number(m[1]) : /now/.test(t) ? 0 : -1;
        };
        const first = await (await page.waitForFunction(
            (f) => { const n = new Function(`return (${f})()`)(); return n >= 2 ? n : null; },
            countdown.toString(), { timeout: 10000 })).jsonValue();
        await page.waitForFunction(
            ([f, n]) => { const v = new Function(`return (${f})()`)(); return v >= 0 && v < n; },
            [countdown.toString(), first], { timeout: 3000 });
        assert.equal(await page.getAttribute('#status-countdown', 'aria-hidden'), 'true');

        srv = await startServer([mainModel()], port);
        await page.waitForSelector('#status[data-state="ok"]', { timeout: 15000 });
        assert.equal(await page.textContent('#status-countdown'), '', 'no countdown once back');
        assert.equal(await settledPrediction(page), '1', 'the drawing is predicted once the server is back');
        // While the server was down the browser itself logs the refused connections.
        noErrors(errors.filter((e) => !/Failed to load resource: net::ERR_CONNECTION_REFUSED/.test(e)));
        await page.close();
    } finally {
        await srv.stop();
    }
});

// A 3 a fifth of the pad tall: with the fixed pen its loops fill in and it reads as 8.
const TINY_3 = [[[0.45, 0.4], [0.52, 0.38], [0.56, 0.42], [0.55, 0.47], [0.5, 0.5], [0.56, 0.53],
    [0.57, 0.57], [0.52, 0.6], [0.45, 0.59]]];

test('a tiny digit shows a "draw bigger" cue and no prediction; a normal-size one does not', async () => {
    const { page, errors } = await open(ctx, server.url);
    await drawMouse(page, TINY_3);
    assert.equal(await settledPrediction(page), '', 'no big digit for a tiny drawing');
    assert.equal(await page.isVisible('#cue'), true, 'the cue is shown');
    assert.match(await page.textContent('#cue'), /draw bigger/i);
    assert.equal(await page.$$eval('#bars .is-top', (e) => e.length), 0, 'no bar is the winner');
    assert.equal(await page.$eval('#bars', (b) => b.classList.contains('unsure')), true);
    assert.equal(await page.textContent('#confidence'), '');
    await page.waitForFunction(() => /too small/i.test(document.querySelector('#announce').textContent));
    await page.waitForTimeout(300);
    await shot(page, 'desktop-light-too-small');

    await page.click('#clear');
    assert.equal(await page.isHidden('#cue'), true, 'clear hides the cue');
    await drawMouse(page, DIGITS[7]);
    assert.equal(await settledPrediction(page), '7');
    assert.equal(await page.isHidden('#cue'), true, 'no cue for a normal-size digit');
    assert.equal(await page.$$eval('#bars .is-top', (e) => e.length), 1);
    noErrors(errors);
    await page.close();
});

// An X on the page, read by the shipped CNN (which has a "not a digit" class): no digit, the
// page says so, the bars are greyed; a 7 afterwards is a 7 again.
const X_MARK = [[[0.25, 0.25], [0.75, 0.75]], [[0.75, 0.25], [0.25, 0.75]]];

test('an X is "not a digit" on the page with the shipped CNN', async () => {
    const srv = await startServer(['models/mnist-cnn.model']);
    try {
        const { page, errors } = await open(ctx, srv.url);
        await drawMouse(page, X_MARK);
        assert.equal(await settledPrediction(page), '', 'no digit for an X');
        await page.waitForFunction(() => /does not look like a digit/i.test(document.querySelector('#prompt').textContent));
        assert.equal(await page.isVisible('#prompt'), true);
        assert.equal(await page.$$eval('#bars .is-top', (e) => e.length), 0, 'no bar is the winner');
        await page.click('#clear');
        await drawMouse(page, DIGITS[7]);
        assert.equal(await settledPrediction(page), '7');
        noErrors(errors);
        await page.close();
    } finally {
        await srv.stop();
    }
});

// Number mode: the wide pad posts to /read; two digits side by side come back as a two-digit
// number with a box over each; back in digit mode the square pad and the bars return.
test('number mode reads two digits side by side and draws their boxes', async () => {
    const { page, errors } = await open(ctx, server.url);
    await page.check('#mode input[value="number"]');
    const b = await page.locator('#pad').boundingBox();
    assert.ok(b.width > 2.5 * b.height, `a wide pad (${b.width}x${b.height})`);
    const third = (strokes, k) => strokes.map((s) => s.map(([x, y]) => [(x + k) / 3, y]));
    const req = page.waitForRequest((r) => r.url().includes('/read'));
    await drawMouse(page, [...third(DIGITS[1], 0), ...third(DIGITS[0], 1)]);
    const body = JSON.parse((await req).postData());
    assert.equal(body.width, 3 * body.height, 'the drawing is sent at the pad\'s aspect');
    assert.equal(await settledPrediction(page), '10');
    assert.equal(await page.$$eval('#boxes .box', (e) => e.length), 2, 'a box over each digit');
    assert.equal(await page.$$eval('#digits li', (e) => e.length), 2);
    assert.equal(await page.isHidden('#bars'), true, 'no digit bars for a number');
    await shot(page, 'desktop-light-number');

    await page.check('#mode input[value="digit"]');
    const sq = await page.locator('#pad').boundingBox();
    assert.ok(Math.abs(sq.width - sq.height) < 2, 'the square pad is back');
    assert.equal(await page.isVisible('#bars'), true);
    assert.equal(await page.$$eval('#boxes .box', (e) => e.length), 0);
    await drawMouse(page, DIGITS[7]);
    assert.equal(await settledPrediction(page), '7');
    noErrors(errors);
    await page.close();
});
