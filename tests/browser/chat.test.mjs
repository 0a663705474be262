// chat.test.mjs — drives the chat page of a running `qcare serve` in headless
// Chromium (playwright-core, the system's chromium) and checks what a patient
// sees: the emotion badge before the streamed reply, the urgent notice above
// its reply, history across a reload, the language toggle, the phone layout,
// and the error paths (503, 401 + API key, network failure); then the
// follow-up view (/dashboard) on the records the run made (QC_ADMIN_KEY).
//
//   QC_URL=http://127.0.0.1:PORT QC_ADMIN_KEY=KEY [QC_SHOTS=DIR] [CHROMIUM=/usr/bin/chromium] node chat.test.mjs
//
// The model behind the server may be a random-weight test model: the reply
// text is noise, so the checks are about mechanics, never about words.
// Prints one line per check and `browser: N passed, N failed, N skipped` last; exits
// non-zero on any failure.
import { chromium } from 'playwright-core';
import { mkdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';

const BASE = (process.env.QC_URL || '').replace(/\/+$/, '');
const SHOTS = process.env.QC_SHOTS || '';
const REPLY_MS = 60_000; // one whole reply on a slow CI machine
const UI_MS = 10_000;
const TOTAL_MS = 10 * 60_000; // the whole run, so a hang cannot stall CI

const CALM = '医生，我最近总是失眠，白天头疼，有点担心。';
const URGENT = 'I have crushing chest pain spreading to my left arm and I am sweating';
const LABELS = ['positive', 'negative', 'neutral'];

let passed = 0, failed = 0;
const t0 = Date.now();

function finish(code) {
    console.log(`browser: ${passed} passed, ${failed} failed, 0 skipped`);
    process.exit(code ?? (failed ? 1 : 0));
}

// Runs one check; a thrown error or a false result is a failure.
async function check(name, fn) {
    try {
        const r = await fn();
        if (r === false) throw new Error('condition is false');
        passed++;
        console.log(`ok   ${name}`);
        return true;
    } catch (e) {
        failed++;
        console.log(`FAIL ${name}: ${String(e && e.message || e).split('\n')[0]}`);
        return false;
    }
}

function expect(cond, what) {
    if (!cond) throw new Error(what);
}

if (!BASE) {
    console.log('chat.test: set QC_URL to the base URL of a running `qcare serve`');
    failed++;
    finish(2);
}
const deadline = setTimeout(() => {
    console.log(`FAIL the whole run took longer than ${TOTAL_MS / 1000} s`);
    failed++;
    finish(1);
}, TOTAL_MS);
deadline.unref();

const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking', '--no-first-run'],
}).catch((e) => {
    console.log(`FAIL launch chromium: ${String(e.message).split('\n')[0]}`);
    failed++;
    finish(1);
});

if (SHOTS) mkdirSync(SHOTS, { recursive: true });
async function shot(page, name) {
    if (SHOTS) await page.screenshot({ path: join(SHOTS, name) });
}

const turns = (page) => page.getByTestId('turn');
const lastTurn = (page) => turns(page).last();

// Sends text by typing it and pressing Enter (or clicking Send).
async function sendMessage(page, text, { click = false } = {}) {
    const input = page.getByTestId('input');
    await input.fill(text);
    if (click) await page.getByTestId('send').click();
    else await input.press('Enter');
}

async function waitDone(page, turn) {
    await turn.locator('xpath=self::*[@data-state="done" or @data-state="error"]').waitFor({ timeout: REPLY_MS });
    const state = await turn.getAttribute('data-state');
    if (state !== 'done') {
        const err = await turn.getByTestId('error').textContent().catch(() => '');
        throw new Error(`the reply ended in state ${state}: ${err}`);
    }
}

/* The follow-up view: a few more consultations through the API, then the
 * page as a doctor uses it — the key asked once, sessions by risk with the
 * urgent ones marked and first, a session's chart beside its transcript,
 * the urgent filter, the CSV download, Chinese, the phone layout. */
async function dashboardChecks() {
    const KEY = process.env.QC_ADMIN_KEY || '';
    if (!KEY) {
        await check('the follow-up view needs QC_ADMIN_KEY (run.sh sets it)', () => false);
        return;
    }
    const post = async (path, body) => {
        const r = await fetch(BASE + path, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
        if (r.status !== 200) throw new Error(`${path}: ${r.status} ${await r.text()}`);
        return r.json();
    };
    const CALM3 = ['I have had a mild cough for a week.', 'It is a bit better today.', 'Thank you, I feel calmer now.'];
    await check('records: a calm and an urgent consultation through the API', async () => {
        for (const text of CALM3) await post('/api/analyze', { text, session: 'followup-calm', patient: 'P-100', max_tokens: 8 });
        await post('/api/analyze', { text: '我有点头晕', session: 'followup-stroke', patient: 'P-200', max_tokens: 8 });
        await post('/api/analyze', { text: 'My face is drooping on one side and my speech is slurred', session: 'followup-stroke', patient: 'P-200', max_tokens: 8 });
        await post('/api/emotion', { text: 'just checking in' });
    });
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 }, locale: 'en-US', acceptDownloads: true });
    const dp = await ctx.newPage();
    const errors = [];
    dp.on('pageerror', (e) => errors.push(String(e.message)));
    const rows = () => dp.getByTestId('session-row');
    await check('dashboard: served as HTML and asks for the admin key', async () => {
        const res = await dp.goto(BASE + '/dashboard', { waitUntil: 'load', timeout: UI_MS * 3 });
        expect(res && res.status() === 200, `status ${res && res.status()}`);
        await dp.getByTestId('key-input').waitFor({ state: 'visible', timeout: UI_MS });
        expect((await rows().count()) === 0, 'sessions shown without a key');
    });
    await check('dashboard: a wrong key is refused and asked again', async () => {
        await dp.getByTestId('key-input').fill('not-the-key');
        await dp.getByTestId('key-input').press('Enter');
        await dp.getByTestId('key-error').waitFor({ state: 'visible', timeout: UI_MS });
        expect(await dp.getByTestId('key-input').isVisible(), 'the key field is gone');
    });
    await check('dashboard: the right key opens the list, most at risk first, urgent ones marked', async () => {
        await dp.getByTestId('key-input').fill(KEY);
        await dp.getByTestId('key-input').press('Enter');
        await rows().first().waitFor({ timeout: UI_MS });
        const list = await rows().evaluateAll((rs) => rs.map((r) => ({ s: r.dataset.session, u: r.dataset.urgent === 'true',
            risk: Number(r.dataset.risk), tag: !!r.querySelector('[data-testid="urgent-tag"]') })));
        expect(list.length >= 4, `${list.length} sessions`);
        for (let i = 1; i < list.length; i++) expect(list[i - 1].risk >= list[i].risk, `not by risk: ${JSON.stringify(list)}`);
        const firstCalm = list.findIndex((r) => !r.u), lastUrgent = list.map((r) => r.u).lastIndexOf(true);
        expect(lastUrgent >= 1 && lastUrgent < firstCalm, `urgent sessions are not all first: ${JSON.stringify(list)}`);
        expect(list.every((r) => r.u === r.tag), 'an urgent session without its mark (or the reverse)');
        expect(list.some((r) => r.s === 'followup-stroke' && r.u) && list.some((r) => r.s === 'followup-calm' && !r.u), 'sessions missing');
    });
    await check('dashboard: the key is kept for the browser session only', async () => {
        const where = await dp.evaluate(() => ({ s: sessionStorage.getItem('qcare.adminKey'), l: localStorage.getItem('qcare.adminKey') }));
        expect(where.s === KEY && where.l === null, JSON.stringify(where));
        await dp.reload({ waitUntil: 'load' });
        await rows().first().waitFor({ timeout: UI_MS });
        expect(!(await dp.getByTestId('key-input').isVisible()), 'asked again after a reload');
    });
    await check("dashboard: a session's emotion chart beside its transcript", async () => {
        await dp.locator('[data-testid="session-row"][data-session="followup-calm"]').click();
        const tr = dp.getByTestId('transcript-turn');
        await tr.nth(2).waitFor({ timeout: UI_MS });
        const msgs = await dp.getByTestId('transcript-message').allTextContents();
        expect(JSON.stringify(msgs) === JSON.stringify(CALM3), `transcript ${JSON.stringify(msgs)}`);
        expect((await dp.getByTestId('transcript-reply').count()) === 3, 'replies missing');
        for (const l of LABELS) {
            const pts = (await dp.getByTestId('line-' + l).getAttribute('points')).trim().split(/\s+/);
            expect(pts.length === 3, `${l}: ${pts.length} points`);
        }
        const c = await dp.getByTestId('chart').boundingBox(), t = await dp.getByTestId('transcript').boundingBox();
        expect(c && t && c.width > 200 && c.x + c.width <= t.x, `chart ${JSON.stringify(c)} transcript ${JSON.stringify(t)}`);
    });
    await check('dashboard: an urgent session shows its urgent turn in chart and transcript', async () => {
        await dp.locator('[data-testid="session-row"][data-session="followup-stroke"]').click();
        await dp.getByTestId('turn-urgent').first().waitFor({ timeout: UI_MS });
        expect((await dp.getByTestId('chart-urgent').count()) === 1, 'no urgent mark in the chart');
        expect(/stroke/.test(await dp.getByTestId('turn-urgent').first().textContent()), 'urgent kind not shown');
    });
    await check('dashboard screenshot (dashboard.png)', () => shot(dp, 'dashboard.png'));
    // Runs action, then waits until the list has been loaded again (the page
    // counts its loads in body[data-loaded]).
    const reloaded = async (action) => {
        const seq = await dp.evaluate(() => document.body.dataset.loaded);
        await action();
        await dp.waitForFunction((s) => document.body.dataset.loaded !== s, seq, { timeout: UI_MS });
    };
    await check('dashboard: "urgent only" keeps the urgent sessions', async () => {
        const urgentBefore = await dp.locator('[data-testid="session-row"][data-urgent="true"]').count();
        const all = await rows().count();
        await reloaded(() => dp.getByTestId('filter-urgent').check());
        const urgent = await rows().evaluateAll((rs) => rs.map((r) => r.dataset.urgent));
        expect(urgent.length === urgentBefore && urgent.every((u) => u === 'true'), `rows ${JSON.stringify(urgent)}, ${urgentBefore} urgent before`);
        await reloaded(() => dp.getByTestId('filter-urgent').uncheck());
        expect((await rows().count()) === all, 'the list did not come back whole');
    });
    await check('dashboard: a negative streak nobody has empties the list', async () => {
        await reloaded(() => dp.getByTestId('filter-streak').fill('50'));
        expect((await dp.getByTestId('no-sessions').count()) === 1 && (await rows().count()) === 0, 'sessions left');
        await reloaded(() => dp.getByTestId('filter-streak').fill('0'));
        expect((await rows().count()) > 0, 'the list did not come back');
    });
    await check('dashboard: CSV download of the records', async () => {
        const [dl] = await Promise.all([dp.waitForEvent('download', { timeout: UI_MS }), dp.getByTestId('csv').click()]);
        expect(/\.csv$/.test(dl.suggestedFilename()), `file name ${dl.suggestedFilename()}`);
        const text = readFileSync(await dl.path(), 'utf8');
        expect(text.startsWith('id,session_id,patient_id,time,message,'), `header: ${text.slice(0, 60)}`);
        for (const m of [...CALM3, URGENT]) expect(text.includes(m), `"${m}" missing from the CSV`);
    });
    await check('dashboard: 中文', async () => {
        await dp.getByTestId('lang').click();
        await dp.waitForFunction(() => document.documentElement.lang === 'zh-CN', null, { timeout: UI_MS });
        expect((await dp.locator('h1').textContent()).includes('随访'), 'heading not in Chinese');
        expect((await dp.getByTestId('transcript').textContent()).includes('紧急'), 'transcript not in Chinese');
        await dp.getByTestId('lang').click();
    });
    await check('dashboard: no JavaScript errors', () => expect(errors.length === 0, errors.join(' | ')));
    const state = await ctx.storageState();
    await ctx.close();

    /* a phone: one column; the list, then a session, then back */
    const ph = await browser.newContext({ viewport: { width: 375, height: 667 }, deviceScaleFactor: 2, isMobile: true,
        hasTouch: true, locale: 'en-US', storageState: state });
    const mp = await ph.newPage();
    await mp.goto(BASE + '/dashboard', { waitUntil: 'load' });
    await check('dashboard phone: asks for the key in a new browser session, then lists', async () => {
        await mp.getByTestId('key-input').fill(KEY);
        await mp.getByTestId('key-input').press('Enter');
        await mp.getByTestId('session-row').first().waitFor({ timeout: UI_MS });
    });
    const fits = async (what) => {
        const w = await mp.evaluate(() => document.documentElement.scrollWidth);
        expect(w <= 375, `${what}: the page is ${w} px wide`);
        for (const id of ['csv', 'lang', 'logout']) {
            const b = await mp.getByTestId(id).boundingBox();
            expect(b && b.x >= 0 && b.x + b.width <= 375.5 && b.y + b.height <= 667, `${id} outside the screen: ${JSON.stringify(b)}`);
        }
    };
    await check('dashboard phone: the list fits the screen', () => fits('list'));
    await check('dashboard phone: a session opens full width, chart above the transcript', async () => {
        await mp.locator('[data-testid="session-row"][data-session="followup-stroke"]').tap();
        await mp.getByTestId('transcript-turn').nth(1).waitFor({ timeout: UI_MS });
        expect(!(await mp.getByTestId('sessions').isVisible()), 'the list is still shown beside it');
        const c = await mp.getByTestId('chart').boundingBox(), t = await mp.getByTestId('transcript').boundingBox();
        expect(c && t && c.width > 250 && c.y + c.height <= t.y, `chart ${JSON.stringify(c)} transcript ${JSON.stringify(t)}`);
        await fits('session');
    });
    await check('dashboard phone screenshot (dashboard-mobile.png)', () => shot(mp, 'dashboard-mobile.png'));
    await check('dashboard phone: back to the list', async () => {
        await mp.getByTestId('back').tap();
        await mp.getByTestId('sessions').waitFor({ state: 'visible', timeout: UI_MS });
    });
    await ph.close();
}

try {
    /* ==== desktop, English ==== */
    const desk = await browser.newContext({ viewport: { width: 1280, height: 800 }, locale: 'en-US' });
    const page = await desk.newPage();
    const jsErrors = [];
    page.on('pageerror', (e) => jsErrors.push(String(e.message)));
    page.on('console', (m) => { if (m.type() === 'error') jsErrors.push(m.text()); });

    await check('GET / serves the page as HTML', async () => {
        const res = await page.goto(BASE + '/', { waitUntil: 'load', timeout: UI_MS * 3 });
        expect(res && res.status() === 200, `status ${res && res.status()}`);
        expect(/text\/html/.test(res.headers()['content-type'] || ''), 'content-type is not text/html');
    });
    await check('title names qcare', async () => /qcare/.test(await page.title()));
    await check('the random-weight fixture model is announced by a banner', async () => {
        const banner = page.getByTestId('fixture-banner');
        await banner.waitFor({ state: 'visible', timeout: UI_MS });
        expect(/random-weight test model/.test(await banner.textContent()), 'the banner does not say why');
    });
    await check('English by default for an en-US browser', async () => {
        expect((await page.locator('html').getAttribute('lang')) === 'en', 'html lang is not en');
        expect((await page.getByTestId('send').textContent()).trim() === 'Send', 'send button is not "Send"');
    });
    await check('input and send button are usable', async () => {
        await page.getByTestId('input').waitFor({ state: 'visible', timeout: UI_MS });
        expect(await page.getByTestId('input').isEditable(), 'input is not editable');
        expect(await page.getByTestId('send').isEnabled(), 'send button is disabled');
        expect(await page.getByLabel('Your message').count() === 1, 'input has no label');
        expect((await page.getByTestId('log').getAttribute('aria-live')) === 'polite', 'conversation is not aria-live');
        expect((await page.getByTestId('disclaimer').textContent()).includes('doctor'), 'no disclaimer');
    });
    await check('Shift+Enter makes a newline and sends nothing', async () => {
        const input = page.getByTestId('input');
        await input.fill('a');
        await input.press('Shift+Enter');
        await input.press('b');
        expect((await input.inputValue()) === 'a\nb', `input is ${JSON.stringify(await input.inputValue())}`);
        expect((await turns(page).count()) === 0, 'a message was sent');
        await input.fill('');
    });

    // Records, per turn, when its badge and its first reply text appeared;
    // and, at every change while a turn waits or streams, whether the send
    // button was off (a reply too fast to catch by polling is still seen).
    await page.evaluate(() => {
        window.__qc = [];
        window.__qcBusy = { seen: 0, enabled: 0 };
        let n = 0;
        const seen = new Set();
        new MutationObserver(() => {
            if (document.querySelector('[data-testid="turn"][data-state="waiting"], [data-testid="turn"][data-state="streaming"]')) {
                window.__qcBusy.seen++;
                if (!document.querySelector('[data-testid="send"]').disabled) window.__qcBusy.enabled++;
            }
            for (const turn of document.querySelectorAll('[data-testid="turn"]')) {
                const id = turn.dataset.id;
                const badge = turn.querySelector('[data-testid="badge"]');
                const reply = turn.querySelector('[data-testid="reply"]');
                // Both in one batch: the earlier node in the DOM came first.
                if (badge && !seen.has(id + 'b')) { seen.add(id + 'b'); window.__qc.push({ id, part: 'badge', n: n++ }); }
                if (reply && reply.textContent && !seen.has(id + 'r')) { seen.add(id + 'r'); window.__qc.push({ id, part: 'reply', n: n++ }); }
            }
        }).observe(document.getElementById('turns'), { childList: true, subtree: true, characterData: true, attributes: true, attributeFilter: ['data-state'] });
    });

    /* ---- an ordinary message ---- */
    await sendMessage(page, CALM);
    const t1 = lastTurn(page);
    await check('the patient message is shown', async () => {
        await t1.getByTestId('user-msg').waitFor({ timeout: UI_MS });
        expect((await t1.getByTestId('user-msg').textContent()) === CALM, 'text differs');
    });
    await check('send is disabled while the reply streams', async () => {
        await t1.getByTestId('reply').waitFor({ timeout: REPLY_MS });
        const busy = await page.evaluate(() => window.__qcBusy);
        expect(busy.seen > 0, 'the turn was never seen waiting or streaming');
        expect(busy.enabled === 0, `send was enabled at ${busy.enabled} of ${busy.seen} changes while the turn was busy`);
    });
    await check('emotion badge: a label, an emoji and three percentages', async () => {
        const badge = t1.getByTestId('badge');
        await badge.waitFor({ state: 'visible', timeout: REPLY_MS });
        const label = await badge.getAttribute('data-label');
        expect(LABELS.includes(label), `label ${label}`);
        expect((await badge.getByTestId('badge-label').textContent()).trim().length > 0, 'no label text');
        expect(/[😊😟😐]/u.test(await badge.textContent()), 'no emoji');
        const probs = await badge.getByTestId('probs').textContent();
        expect((probs.match(/\d+%/g) || []).length === 3, `probabilities: ${probs}`);
    });
    await check('the reply streams in and finishes', async () => {
        await waitDone(page, t1);
        const text = await t1.getByTestId('reply').textContent();
        expect(text.length > 0, 'reply is empty');
        await page.waitForFunction(() => !document.querySelector('[data-testid="send"]').disabled, null, { timeout: UI_MS });
    });
    await check('the badge appeared before the first reply text', async () => {
        const id = await t1.getAttribute('data-id');
        const rec = (await page.evaluate(() => window.__qc)).filter((r) => r.id === id);
        const b = rec.find((r) => r.part === 'badge'), r = rec.find((r) => r.part === 'reply');
        expect(b && r && b.n < r.n, `observed order ${JSON.stringify(rec)}`);
        const seqB = Number(await t1.getByTestId('badge').getAttribute('data-seq'));
        const seqR = Number(await t1.getByTestId('reply').getAttribute('data-seq'));
        expect(seqB < seqR, `page order badge ${seqB}, reply ${seqR}`);
        const above = await t1.evaluate((el) => {
            const b = el.querySelector('[data-testid="badge"]'), r = el.querySelector('[data-testid="reply"]');
            return !!(b.compareDocumentPosition(r) & Node.DOCUMENT_POSITION_FOLLOWING);
        });
        expect(above, 'badge is not above the reply');
    });
    await check('no urgent notice for an ordinary message', async () => (await t1.getByTestId('notice').count()) === 0);

    /* ---- an urgent message ---- */
    await sendMessage(page, URGENT, { click: true });
    const t2 = lastTurn(page);
    await check('urgent message: a visible alert notice', async () => {
        expect((await turns(page).count()) === 2, 'no second turn');
        const notice = t2.getByTestId('notice');
        await notice.waitFor({ state: 'visible', timeout: REPLY_MS });
        expect((await notice.getAttribute('role')) === 'alert', 'notice is not role=alert');
        expect((await notice.getAttribute('data-kind')) === 'cardiac', `kind ${await notice.getAttribute('data-kind')}`);
        expect(/emergency|急救/i.test(await notice.textContent()), 'notice text lacks the emergency advice');
    });
    await check('urgent message: the notice sits above its reply', async () => {
        await waitDone(page, t2);
        const nb = await t2.getByTestId('notice').boundingBox();
        const rb = await t2.getByTestId('reply').boundingBox();
        const bb = await t2.getByTestId('badge').boundingBox();
        expect(nb && rb && bb, 'missing part');
        expect(bb.y + bb.height <= nb.y + 1, 'badge is not above the notice');
        expect(nb.y + nb.height <= rb.y + 1, `notice bottom ${nb.y + nb.height} > reply top ${rb.y}`);
        const color = await t2.getByTestId('notice').evaluate((e) => getComputedStyle(e).borderTopColor);
        expect(color !== 'rgba(0, 0, 0, 0)', 'notice has no border');
    });
    // The picture shows the urgent turn from its top: message, badge, notice, reply.
    await t2.evaluate((e) => e.scrollIntoView({ block: 'start' }));
    await check('desktop: only the conversation scrolls, the input stays docked', async () => {
        const d = await page.evaluate(() => ({ h: document.documentElement.scrollHeight, y: scrollY }));
        expect(d.h <= 800 && d.y === 0, `document ${d.h} px high, scrolled by ${d.y}`);
        const b = await page.getByTestId('input').boundingBox();
        expect(b && b.y + b.height <= 800, 'input is below the window');
    });
    await check('desktop screenshot (chat.png)', () => shot(page, 'chat.png'));

    /* ---- history survives a reload ---- */
    const before = await turns(page).evaluateAll((ts) => ts.map((t) => ({
        user: t.querySelector('[data-testid="user-msg"]').textContent,
        reply: (t.querySelector('[data-testid="reply"]') || {}).textContent,
        label: (t.querySelector('[data-testid="badge"]') || { dataset: {} }).dataset.label,
    })));
    await page.reload({ waitUntil: 'load' });
    await check('history is kept across a reload', async () => {
        await turns(page).nth(1).waitFor({ timeout: UI_MS });
        const after = await turns(page).evaluateAll((ts) => ts.map((t) => ({
            user: t.querySelector('[data-testid="user-msg"]').textContent,
            reply: (t.querySelector('[data-testid="reply"]') || {}).textContent,
            label: (t.querySelector('[data-testid="badge"]') || { dataset: {} }).dataset.label,
        })));
        expect(JSON.stringify(after) === JSON.stringify(before), `before ${JSON.stringify(before).slice(0, 200)} after ${JSON.stringify(after).slice(0, 200)}`);
        expect((await lastTurn(page).getByTestId('notice').count()) === 1, 'the notice is gone');
    });

    /* ---- the language toggle ---- */
    await check('the language toggle switches the interface to Chinese', async () => {
        const send = page.getByTestId('send');
        const was = (await send.textContent()).trim();
        await page.getByTestId('lang').click();
        await page.waitForFunction((w) => document.querySelector('[data-testid="send"]').textContent.trim() !== w, was, { timeout: UI_MS });
        expect((await send.textContent()).trim() === '发送', `send button says ${await send.textContent()}`);
        expect((await page.locator('html').getAttribute('lang')).startsWith('zh'), 'html lang is not zh');
        const label = (await turns(page).first().getByTestId('badge-label').textContent()).trim();
        expect(['积极', '消极', '中性'].includes(label), `badge label ${label}`);
    });
    await check('the language choice is remembered', async () => {
        await page.reload({ waitUntil: 'load' });
        expect((await page.getByTestId('send').textContent()).trim() === '发送', 'back to English after a reload');
    });
    await check('no JavaScript errors on the page', () => {
        expect(jsErrors.length === 0, jsErrors.join(' | '));
    });

    /* ==== phone: 375x667, same storage (so the same conversation) ==== */
    const state = await desk.storageState();
    const sessionBefore = await page.evaluate(() => JSON.parse(localStorage.getItem('qcare.chat')).session);
    await desk.close();
    const phone = await browser.newContext({
        viewport: { width: 375, height: 667 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true,
        locale: 'en-US', storageState: state,
    });
    const mp = await phone.newPage();
    await mp.goto(BASE + '/', { waitUntil: 'load' });
    await check('phone: input and send button inside the viewport', async () => {
        await turns(mp).nth(1).waitFor({ timeout: UI_MS });
        for (const id of ['input', 'send', 'new', 'lang']) {
            const b = await mp.getByTestId(id).boundingBox();
            expect(b, `${id} has no box`);
            expect(b.x >= 0 && b.y >= 0 && b.x + b.width <= 375 + 0.5 && b.y + b.height <= 667 + 0.5,
                `${id} at ${JSON.stringify(b)}`);
        }
    });
    await check('phone: nothing overflows; only the conversation scrolls', async () => {
        const w = await mp.evaluate(() => ({
            doc: document.documentElement.scrollWidth,
            docH: document.documentElement.scrollHeight,
            log: document.getElementById('log').scrollWidth - document.getElementById('log').clientWidth,
        }));
        expect(w.doc <= 375, `document is ${w.doc} px wide`);
        expect(w.docH <= 667, `document is ${w.docH} px high: the page itself scrolls`);
        expect(w.log <= 0, `conversation overflows by ${w.log} px`);
    });
    await turns(mp).nth(1).evaluate((e) => e.scrollIntoView({ block: 'start' }));
    await check('phone screenshot (chat-mobile.png)', () => shot(mp, 'chat-mobile.png'));
    await check('"New conversation" clears the history and starts a new session', async () => {
        await mp.getByTestId('new').click();
        expect((await turns(mp).count()) === 0, 'turns are still shown');
        await mp.getByTestId('welcome').waitFor({ timeout: UI_MS });
        const s = await mp.evaluate(() => JSON.parse(localStorage.getItem('qcare.chat')));
        expect(s.turns.length === 0, 'stored history not cleared');
        expect(s.session && s.session !== sessionBefore, 'same session id');
        await mp.reload({ waitUntil: 'load' });
        expect((await turns(mp).count()) === 0, 'history came back after a reload');
    });
    await phone.close();

    /* ==== error paths, with the API answered by the test (Chinese browser) ==== */
    const errs = await browser.newContext({ viewport: { width: 800, height: 700 }, locale: 'zh-CN' });
    const ep = await errs.newPage();
    const pageErrors = [];
    ep.on('pageerror', (e) => pageErrors.push(String(e.message)));
    let mode = 'busy', seenAuth = '', seenType = '';
    await ep.route('**/api/analyze', async (route) => {
        if (mode === 'busy') {
            return route.fulfill({ status: 503, headers: { 'Retry-After': '7' }, contentType: 'application/json',
                body: JSON.stringify({ error: 'server busy' }) });
        }
        if (mode === 'urgent-busy') { /* the server's shape: an error to an urgent message carries its notice */
            return route.fulfill({ status: 503, headers: { 'Retry-After': '3' }, contentType: 'application/json',
                body: JSON.stringify({ error: 'server busy', urgent: true, urgent_kind: 'cardiac', presentation: 'cardiac.acs',
                    notice: '⚠️ 紧急：您描述的情况可能危及生命，请立即拨打急救电话 120。' }) });
        }
        if (mode === 'network') return route.abort('failed');
        seenAuth = route.request().headers()['authorization'] || '';
        seenType = route.request().headers()['content-type'] || '';
        if (seenAuth !== 'Bearer secret-key') {
            return route.fulfill({ status: 401, headers: { 'WWW-Authenticate': 'Bearer' }, contentType: 'application/json',
                body: JSON.stringify({ error: 'a valid API key is required' }) });
        }
        const ev = (name, data) => `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;
        return route.fulfill({ status: 200, contentType: 'text/event-stream', body:
            ev('emotion', { emotion: { label: 'neutral', probs: { positive: 0.2, negative: 0.2, neutral: 0.6 } }, urgent: false, urgent_kind: 'none' }) +
            ev('chunk', { text: '<b>not bold</b>' }) + ev('chunk', { text: '\nsecond line' }) + ev('done', { chunks: 2 }) });
    });
    await ep.goto(BASE + '/', { waitUntil: 'load' });
    await check('Chinese by default for a zh-CN browser', async () => {
        expect((await ep.locator('html').getAttribute('lang')) === 'zh-CN', 'html lang is not zh-CN');
        expect((await ep.getByTestId('send').textContent()).trim() === '发送', 'send button is not 发送');
    });
    await check('503: "busy, retry in 7 s" is shown and the input comes back', async () => {
        await sendMessage(ep, '你好');
        const err = lastTurn(ep).getByTestId('error');
        await err.waitFor({ timeout: UI_MS });
        expect((await err.textContent()).includes('7'), `error: ${await err.textContent()}`);
        await ep.waitForFunction(() => !document.querySelector('[data-testid="send"]').disabled, null, { timeout: UI_MS });
    });
    await check('an error to an urgent message still shows its notice, above the error', async () => {
        mode = 'urgent-busy';
        await sendMessage(ep, '胸口压榨样疼痛');
        const notice = lastTurn(ep).getByTestId('notice'), err = lastTurn(ep).getByTestId('error');
        await err.waitFor({ timeout: UI_MS });
        await notice.waitFor({ state: 'visible', timeout: UI_MS });
        expect((await notice.getAttribute('data-kind')) === 'cardiac', `kind ${await notice.getAttribute('data-kind')}`);
        expect((await notice.textContent()).includes('120'), `notice: ${await notice.textContent()}`);
        const nb = await notice.boundingBox(), eb = await err.boundingBox();
        expect(nb.y + nb.height <= eb.y + 1, 'the notice is not above the error');
        await ep.waitForFunction(() => !document.querySelector('[data-testid="send"]').disabled, null, { timeout: UI_MS });
    });
    await check('network failure is shown', async () => {
        mode = 'network';
        await sendMessage(ep, '再试一次');
        await lastTurn(ep).getByTestId('error').waitFor({ timeout: UI_MS });
        await ep.waitForFunction(() => !document.querySelector('[data-testid="send"]').disabled, null, { timeout: UI_MS });
    });
    await check('401: the API key field appears; the key is sent as a Bearer token', async () => {
        mode = 'auth';
        await sendMessage(ep, '需要密钥吗？');
        await ep.getByTestId('apikey').waitFor({ state: 'visible', timeout: UI_MS });
        await ep.getByTestId('apikey').fill('secret-key');
        await ep.getByTestId('apikey').press('Enter');
        await waitDone(ep, lastTurn(ep));
        expect(seenAuth === 'Bearer secret-key', `Authorization: ${seenAuth}`);
        /* the server answers 415 to any other type */
        expect(/^application\/json\b/.test(seenType), `Content-Type: ${seenType}`);
        expect((await ep.evaluate(() => localStorage.getItem('qcare.apiKey'))) === 'secret-key', 'key not stored');
        expect((await lastTurn(ep).getByTestId('user-msg').textContent()) === '需要密钥吗？', 'the message was not resent');
    });
    await check('model text is shown as plain text with its newlines', async () => {
        const reply = lastTurn(ep).getByTestId('reply');
        expect((await reply.locator('b').count()) === 0, 'model text became HTML');
        expect((await reply.textContent()) === '<b>not bold</b>\nsecond line', `reply: ${await reply.textContent()}`);
        expect((await reply.innerText()).includes('\n'), 'newline lost');
    });
    await check('an event stream cut into single bytes with CRLF lines is read whole', async () => {
        // The page from qcare, the stream from here: one byte per write, so
        // events, lines, "\r\n" pairs and UTF-8 characters are split across reads.
        const html = await (await fetch(BASE + '/')).text();
        const events = [
            ['emotion', { emotion: { label: 'negative', probs: { positive: 0.1, negative: 0.8, neutral: 0.1 } }, urgent: false, urgent_kind: 'none' }],
            ['chunk', { text: '别担心，' }], ['chunk', { text: '先休息😊\n' }], ['chunk', { text: 'then rest.' }],
            ['done', { chunks: 3 }],
        ];
        const body = Buffer.from(': comment\r\n\r\n' +
            events.map(([n, d]) => `event: ${n}\r\ndata: ${JSON.stringify(d)}\r\n\r\n`).join(''), 'utf8');
        const srv = createServer(async (req, res) => {
            if (req.method === 'GET') { res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }); return res.end(html); }
            req.resume();
            res.socket.setNoDelay(true);
            res.writeHead(200, { 'Content-Type': 'text/event-stream' });
            for (let i = 0; i < body.length; i++) {
                res.write(body.subarray(i, i + 1));
                await new Promise((r) => setTimeout(r, 1));
            }
            res.end();
        });
        await new Promise((r) => srv.listen(0, '127.0.0.1', r));
        try {
            const sp = await errs.newPage();
            sp.on('pageerror', (e) => pageErrors.push(String(e.message)));
            await sp.goto(`http://127.0.0.1:${srv.address().port}/`, { waitUntil: 'load' });
            await sendMessage(sp, '测试');
            await waitDone(sp, lastTurn(sp));
            expect((await lastTurn(sp).getByTestId('badge').getAttribute('data-label')) === 'negative', 'badge label');
            const text = await lastTurn(sp).getByTestId('reply').textContent();
            expect(text === '别担心，先休息😊\nthen rest.', `reply: ${JSON.stringify(text)}`);
            await sp.close();
        } finally {
            srv.close();
        }
    });
    await check('no JavaScript errors on the error paths', () => {
        expect(pageErrors.length === 0, pageErrors.join(' | '));
    });
    await errs.close();

    /* ==== the follow-up view (/dashboard), on the records of this run ==== */
    await dashboardChecks();
} catch (e) {
    failed++;
    console.log(`FAIL unexpected: ${String(e && e.stack || e).split('\n').slice(0, 3).join(' ')}`);
} finally {
    await browser.close().catch(() => {});
}
console.log(`browser: took ${((Date.now() - t0) / 1000).toFixed(1)} s`);
finish();
