// Drives midge's web page in headless Chromium (Debian's /usr/bin/chromium, through npm
// playwright-core) against a running broker, and prints one JSON line per check:
//   {"check": NAME, "ok": true|false, "detail": "..."}
// test/web/test_web_page.py starts the broker (a TCP listener and a WebSockets listener whose
// http_dir is the built page), runs this script once, and turns each line into a pytest test.
// Every wait is bounded; a check that depends on a failed one reports "not run".
//
// Environment: PAGE_URL (the page over HTTP), WS_URL, TCP_PORT (for the C tools), BIN (the
// build's bin/), OUT (screenshots), WEB_DIR (web/, where node_modules is), CHROMIUM.

import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const env = process.env;
const require = createRequire(join(env.WEB_DIR, 'package.json'));
const { chromium } = require('playwright-core');

const PAGE_URL = env.PAGE_URL;
const WS_URL = env.WS_URL;
const TCP_PORT = env.TCP_PORT;
const BIN = env.BIN;
const OUT = env.OUT;
const pageOrigin = new URL(PAGE_URL).origin;
const wsOrigin = new URL(WS_URL).host;

const results = [];
const failed = new Set();
const procs = [];

function report(check, ok, detail) {
	results.push(check);
	if (!ok)
		failed.add(check);
	process.stdout.write(JSON.stringify({ check, ok, detail: String(detail || '') }) + '\n');
}

async function check(name, needs, body) {
	const missing = needs.filter((n) => failed.has(n) || !results.includes(n));
	if (missing.length) {
		report(name, false, 'not run: needs ' + missing.join(', '));
		return;
	}
	try {
		const detail = await body();
		report(name, true, detail);
	} catch (e) {
		report(name, false, (e && e.stack) || e);
	}
}

function assert(cond, msg) {
	if (!cond)
		throw new Error('assertion failed: ' + msg);
}

// A C tool as a child process; out() is what it printed so far. Killed at the end.
function tool(name, args, stdin) {
	const p = spawn(join(BIN, name), args, { stdio: ['pipe', 'pipe', 'pipe'] });
	const o = { p, stdout: '', stderr: '', exited: null };
	p.stdout.setEncoding('utf8'); // a character cut between two reads is joined, not mangled
	p.stderr.setEncoding('utf8');
	p.stdout.on('data', (d) => { o.stdout += d; });
	p.stderr.on('data', (d) => { o.stderr += d; });
	o.done = new Promise((res) => p.on('exit', (code, sig) => { o.exited = code === null ? sig : code; res(o.exited); }));
	if (stdin !== undefined)
		p.stdin.end(stdin);
	procs.push(o);
	return o;
}

async function until(what, fn, ms = 10000) {
	const end = Date.now() + ms;
	for (;;) {
		const v = await fn();
		if (v)
			return v;
		if (Date.now() > end)
			throw new Error('timed out after ' + ms + ' ms waiting for ' + what);
		await new Promise((r) => setTimeout(r, 50));
	}
}

// midge_sub, ready once its SUBACK arrived (-d prints it), so what is published afterwards
// reaches it: the sync point for every "the page published X" check.
async function subscriber(topic, extra) {
	const s = tool('midge_sub', ['-h', '127.0.0.1', '-p', TCP_PORT, '-d', '-t', topic, ...extra]);
	await until('midge_sub SUBACK on ' + topic, () => /SUBACK/.test(s.stdout), 10000);
	return s;
}

// the whole lines midge_sub printed with -F 'M|...', without its -d debug lines. A line not
// ended yet is left out: a pipe hands over a long line (the JPEG's 200 kB of hex) in pieces,
// and its first piece, length field and all, would otherwise count as the message.
function printed(s) {
	const whole = s.stdout.slice(0, s.stdout.lastIndexOf('\n') + 1);
	return whole.split('\n').filter((l) => l.startsWith('M|'));
}

async function run(name, args, stdin) {
	const t = tool(name, args, stdin);
	const code = await Promise.race([t.done, new Promise((r) => setTimeout(() => r('timeout'), 10000))]);
	assert(code === 0, name + ' ' + args.join(' ') + ' exited ' + code + ': ' + t.stderr + t.stdout);
	return t;
}

// A picture made by the browser's own encoder (canvas.toDataURL), w x h, as bytes. noise:
// random pixels over a third of it, so that a 640x480 JPEG is the size of a camera's (~100 kB:
// a WebSocket frame longer than 65535 bytes, which takes the 64-bit length form).
async function picture(page, mime, w, h, hue, noise) {
	const b64 = await page.evaluate(([mime, w, h, hue, noise]) => {
		const c = document.createElement('canvas');
		c.width = w; c.height = h;
		const g = c.getContext('2d');
		const grad = g.createLinearGradient(0, 0, w, h);
		grad.addColorStop(0, `hsl(${hue},80%,45%)`);
		grad.addColorStop(1, `hsl(${(hue + 120) % 360},80%,60%)`);
		g.fillStyle = grad; g.fillRect(0, 0, w, h);
		g.fillStyle = '#fff'; g.font = `${Math.floor(h / 4)}px sans-serif`;
		g.fillText('midge', w / 10, h / 1.7);
		if (noise) {
			const img = g.getImageData(0, 0, w, Math.floor(h / 3));
			for (let i = 0; i < img.data.length; i++)
				img.data[i] = (i & 3) === 3 ? 255 : Math.floor(Math.random() * 256);
			g.putImageData(img, 0, 0);
		}
		return c.toDataURL(mime).split(',')[1];
	}, [mime, w, h, hue, noise]);
	return Buffer.from(b64, 'base64');
}

const rowSel = (topic) => `#messages li.message[data-topic="${topic}"]`;

async function rowText(page, topic) {
	const row = page.locator(rowSel(topic)).first();
	await row.waitFor({ timeout: 10000 });
	return row.locator('pre.payload').textContent();
}

async function addSub(page, filter, qos, colour) {
	await page.fill('#sub-topic', filter);
	await page.selectOption('#sub-qos', String(qos));
	if (colour)
		await page.fill('#sub-colour', colour);
	await page.click('#sub-add');
	await page.locator(`#subs li[data-filter="${filter}"][data-state="active"]`).waitFor({ timeout: 10000 });
}

async function publishFromPage(page, topic, qos, retain, format, payload) {
	const before = Number(await page.getAttribute('#pub-result', 'data-count')) || 0;
	await page.fill('#pub-topic', topic);
	await page.selectOption('#pub-qos', String(qos));
	await page.setChecked('#pub-retain', retain);
	await page.selectOption('#pub-format', format);
	if (format === 'file')
		await page.setInputFiles('#pub-file', payload);
	else
		await page.fill('#pub-payload', payload);
	await page.click('#publish');
	if (format === 'json' && !isJson(payload))
		return;
	await until('the page to report the publish done', async () =>
		(Number(await page.getAttribute('#pub-result', 'data-count')) || 0) > before);
}

function isJson(s) {
	try { JSON.parse(s); return true; } catch { return false; }
}

async function connectForm(page, o) {
	await page.fill('#url', WS_URL);
	await page.fill('#client-id', o.id);
	await page.selectOption('#protocol', String(o.version));
	await page.fill('#username', o.username || '');
	await page.fill('#password', o.password || '');
	await page.fill('#keepalive', String(o.keepalive));
	await page.setChecked('#clean', o.clean);
	await page.fill('#will-topic', o.will ? o.will.topic : '');
	await page.fill('#will-payload', o.will ? o.will.payload : '');
	await page.selectOption('#will-qos', String(o.will ? o.will.qos : 0));
	await page.setChecked('#will-retain', o.will ? o.will.retain : false);
	await page.click('#connect');
	await page.locator('#status[data-state="connected"]').waitFor({ timeout: 10000 });
}

const browser = await chromium.launch({
	executablePath: env.CHROMIUM || '/usr/bin/chromium',
	headless: true,
	// The machine's network is closed: without these Chromium keeps trying to reach Google's
	// services (refused, many at a time). --no-sandbox: the tests may run as root.
	args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
		'--disable-background-networking', '--disable-component-update', '--disable-sync'],
	timeout: 30000,
});

const foreign = [];     // requests the page made anywhere but the broker
const pageErrors = [];  // uncaught exceptions and console errors in the page
function watch(page, label) {
	page.on('request', (r) => {
		const u = new URL(r.url());
		if (u.protocol === 'data:' || u.protocol === 'blob:')
			return;
		if (!(u.origin === pageOrigin || u.host === wsOrigin))
			foreign.push(label + ': ' + r.url());
	});
	page.on('pageerror', (e) => pageErrors.push(label + ': ' + e.message));
	page.on('console', (m) => { if (m.type() === 'error') pageErrors.push(label + ' console: ' + m.text()); });
}

let desk, deskCtx, phone, phoneCtx;
try {
	deskCtx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
	desk = await deskCtx.newPage();
	watch(desk, 'desktop');

	await check('page_loads_from_http_dir', [], async () => {
		const resp = await desk.goto(PAGE_URL, { waitUntil: 'load', timeout: 15000 });
		assert(resp && resp.status() === 200, 'GET ' + PAGE_URL + ' -> ' + (resp && resp.status()));
		await desk.locator('body[data-ready="1"]').waitFor({ timeout: 10000 });
		const title = await desk.title();
		assert(title === 'midge', 'title ' + title);
		assert((await desk.inputValue('#url')).startsWith('ws://' + new URL(PAGE_URL).host + '/'),
			'default URL points at the serving broker: ' + (await desk.inputValue('#url')));
		return 'status ' + resp.status();
	});

	await check('connect_v5_username_will', ['page_loads_from_http_dir'], async () => {
		await connectForm(desk, { id: 'web-desk', version: 5, username: 'alice', password: 'secret',
			keepalive: 33, clean: true, will: { topic: 'web/will', payload: 'desk gone', qos: 1, retain: false } });
		const s = await desk.textContent('#status');
		assert(s.includes('MQTT 5.0'), s);
		return s;
	});

	await check('receive_from_midge_pub', ['connect_v5_username_will'], async () => {
		await addSub(desk, 'lecture/#', 1, '#c0392b');
		await run('midge_pub', ['-h', '127.0.0.1', '-p', TCP_PORT, '-q', '1', '-t', 'lecture/text', '-m', 'hello from midge_pub']);
		assert((await rowText(desk, 'lecture/text')) === 'hello from midge_pub', 'payload text');
		const row = desk.locator(rowSel('lecture/text')).first();
		assert((await row.getAttribute('data-qos')) === '1', 'QoS 1 delivered');
		assert((await row.getAttribute('data-retain')) === '0', 'not retained');
		const colour = await row.evaluate((el) => getComputedStyle(el).borderLeftColor);
		assert(colour === 'rgb(192, 57, 43)', 'the subscription colour: ' + colour);
		assert(/^\d\d:\d\d:\d\d\.\d\d\d$/.test(await row.locator('time').textContent()), 'a time');
		return 'text, QoS 1, colour ' + colour;
	});

	await check('json_pretty_and_text', ['receive_from_midge_pub'], async () => {
		const json = '{"room":"kitchen","temps":[21.5,22]}';
		await run('midge_pub', ['-h', '127.0.0.1', '-p', TCP_PORT, '-t', 'lecture/json', '-m', json]);
		const pretty = await rowText(desk, 'lecture/json');
		assert(pretty === JSON.stringify(JSON.parse(json), null, 2), 'pretty JSON: ' + pretty);
		await desk.setChecked('#pretty-json', false);
		const raw = await rowText(desk, 'lecture/json');
		await desk.setChecked('#pretty-json', true);
		assert(raw === json, 'as text: ' + raw);
		return 'pretty and raw';
	});

	await check('retained_flag_shown', ['receive_from_midge_pub'], async () => {
		await run('midge_pub', ['-h', '127.0.0.1', '-p', TCP_PORT, '-r', '-t', 'kept/note', '-m', 'stored']);
		await addSub(desk, 'kept/#', 0, '#27ae60');
		const row = desk.locator(rowSel('kept/note')).first();
		await row.waitFor({ timeout: 10000 });
		assert((await row.getAttribute('data-retain')) === '1', 'retain flag');
		assert((await row.locator('.flag.retain').textContent()) === 'retained', 'retained shown');
		await run('midge_pub', ['-h', '127.0.0.1', '-p', TCP_PORT, '-r', '-t', 'kept/note', '-n']);
		return 'retained';
	});

	await check('subscription_colour_change', ['retained_flag_shown'], async () => {
		await desk.fill('#subs li[data-filter="kept/#"] input[type=color]', '#000080');
		await run('midge_pub', ['-h', '127.0.0.1', '-p', TCP_PORT, '-t', 'kept/colour', '-m', 'navy']);
		const row = desk.locator(rowSel('kept/colour')).first();
		await row.waitFor({ timeout: 10000 });
		const colour = await row.evaluate((el) => getComputedStyle(el).borderLeftColor);
		assert(colour === 'rgb(0, 0, 128)', 'the new colour: ' + colour);
		return colour;
	});

	await check('publish_text_json_to_midge_sub', ['connect_v5_username_will'], async () => {
		const sub = await subscriber('web/out', ['-q', '2', '-F', 'M|%t|%q|%p']);
		await publishFromPage(desk, 'web/out', 2, false, 'text', 'hello from the page');
		await publishFromPage(desk, 'web/out', 1, false, 'json', '{oops');
		const err = await desk.textContent('#pub-result');
		assert(/JSON/.test(err), 'invalid JSON refused with a message: ' + err);
		await publishFromPage(desk, 'web/out', 1, false, 'json', '{"t": 21.5}');
		await until('two messages at midge_sub', () => printed(sub).length >= 2);
		const got = printed(sub);
		assert(got[0] === 'M|web/out|2|hello from the page', got[0]);
		// the refused '{oops' never went out: the next message is the valid JSON
		assert(got[1] === 'M|web/out|1|{"t": 21.5}', got[1]);
		return got.join(' / ');
	});

	await check('publish_retained_from_page', ['connect_v5_username_will'], async () => {
		await publishFromPage(desk, 'web/kept', 1, true, 'text', 'kept by the broker');
		const sub = tool('midge_sub', ['-h', '127.0.0.1', '-p', TCP_PORT, '-t', 'web/kept', '-C', '1', '-F', 'M|%r|%p']);
		await until('midge_sub to exit after one message', () => sub.exited !== null);
		assert(printed(sub)[0] === 'M|1|kept by the broker', sub.stdout);
		await run('midge_pub', ['-h', '127.0.0.1', '-p', TCP_PORT, '-r', '-t', 'web/kept', '-n']);
		return printed(sub)[0];
	});

	await check('publish_jpeg_file_to_midge_sub', ['connect_v5_username_will'], async () => {
		const jpeg = await picture(desk, 'image/jpeg', 640, 480, 200, true);
		assert(jpeg.length > 65535, 'a JPEG longer than 65535 bytes: ' + jpeg.length);
		const path = join(OUT, 'web-sent.jpg');
		writeFileSync(path, jpeg);
		const sub = await subscriber('web/file', ['-q', '1', '-F', 'M|%l|%x']);
		await publishFromPage(desk, 'web/file', 1, false, 'file', path);
		await until('the file at midge_sub', () => printed(sub).length >= 1);
		const [, len, hexed] = printed(sub)[0].split('|');
		assert(Number(len) === jpeg.length, 'length ' + len + ' != ' + jpeg.length);
		assert(hexed === jpeg.toString('hex'), 'bytes differ');
		return jpeg.length + ' bytes, identical';
	});

	await check('camera_pub_jpeg_shown', ['connect_v5_username_will'], async () => {
		await addSub(desk, 'jpeg', 0, '#8e44ad');
		const jpeg = await picture(desk, 'image/jpeg', 640, 480, 30, true);
		assert(jpeg.length > 65535, 'a JPEG longer than 65535 bytes: ' + jpeg.length);
		const path = join(OUT, 'camera.jpg');
		writeFileSync(path, jpeg);
		await run(join('examples', 'camera_pub'), ['-h', '127.0.0.1', '-p', TCP_PORT, '-d', '/nonexistent/video0', path]);
		const img = desk.locator(rowSel('jpeg') + '[data-kind="image"] img.payload-image').first();
		await img.waitFor({ timeout: 10000 });
		const dims = await until('the image to decode', () => img.evaluate((el) =>
			el.complete && el.naturalWidth ? [el.naturalWidth, el.naturalHeight] : null));
		assert(dims[0] === 640 && dims[1] === 480, 'decoded as ' + dims);
		await desk.locator(rowSel('jpeg')).first().screenshot({ path: join(OUT, 'web-camera.png') });
		return 'JPEG ' + jpeg.length + ' bytes shown as ' + dims.join('x');
	});

	await check('png_shown', ['receive_from_midge_pub'], async () => {
		const png = await picture(desk, 'image/png', 90, 60, 120);
		const path = join(OUT, 'web-sent.png');
		writeFileSync(path, png);
		await run('midge_pub', ['-h', '127.0.0.1', '-p', TCP_PORT, '-t', 'lecture/png', '-f', path]);
		const img = desk.locator(rowSel('lecture/png') + '[data-kind="image"] img').first();
		await img.waitFor({ timeout: 10000 });
		const dims = await until('the PNG to decode', () => img.evaluate((el) =>
			el.complete && el.naturalWidth ? [el.naturalWidth, el.naturalHeight] : null));
		assert(dims[0] === 90 && dims[1] === 60, 'decoded as ' + dims);
		return 'PNG shown as ' + dims.join('x');
	});

	await check('temp_pub_plotted', ['connect_v5_username_will'], async () => {
		await addSub(desk, 'room/temp', 0, '#d35400');
		await run(join('examples', 'temp_pub'), ['-h', '127.0.0.1', '-p', TCP_PORT], '21\n23\n22\n0\n');
		const fig = desk.locator('#plots figure[data-topic="room/temp"]');
		await fig.waitFor({ timeout: 10000 });
		await until('three points on the room/temp chart', async () => (await fig.getAttribute('data-points')) === '3');
		assert((await fig.getAttribute('data-last')) === '22', 'last value ' + (await fig.getAttribute('data-last')));
		assert(await fig.locator('canvas').count() > 0, 'a canvas');
		const rows = await desk.locator(rowSel('room/temp') + ' pre.payload').allTextContents();
		assert(rows.join(',') === '22,23,21', 'rows newest first: ' + rows);
		await fig.screenshot({ path: join(OUT, 'web-temp-chart.png') });
		return '21, 23, 22 plotted';
	});

	await check('unsubscribe_stops_delivery', ['receive_from_midge_pub', 'temp_pub_plotted'], async () => {
		await desk.click('#subs li[data-filter="lecture/#"] button.remove');
		await desk.locator('#subs li[data-filter="lecture/#"]').waitFor({ state: 'detached', timeout: 5000 });
		const before = await desk.locator(rowSel('lecture/text')).count();
		// the UNSUBSCRIBE is on the wire before this page's next PUBLISH; its echo is the sync point
		await publishFromPage(desk, 'room/temp', 1, false, 'text', '19');
		await until('the page\'s own room/temp 19', async () => (await desk.locator(rowSel('room/temp')).first().locator('pre').textContent()) === '19');
		await run('midge_pub', ['-h', '127.0.0.1', '-p', TCP_PORT, '-q', '1', '-t', 'lecture/text', '-m', 'after unsubscribe']);
		await run('midge_pub', ['-h', '127.0.0.1', '-p', TCP_PORT, '-q', '1', '-t', 'room/temp', '-m', '18']);
		await until('room/temp 18 (after the unsubscribed message)', async () => (await desk.locator(rowSel('room/temp')).first().locator('pre').textContent()) === '18');
		const after = await desk.locator(rowSel('lecture/text')).count();
		assert(after === before, 'lecture/text rows ' + before + ' -> ' + after);
		// and the broker sent nothing more for it (the page does not just hide it)
		const unmatched = await desk.getAttribute('body', 'data-unmatched');
		assert(unmatched === null, unmatched + ' messages arrived for no subscription');
		return 'no delivery after Remove';
	});

	await check('broker_panel_moves', ['connect_v5_username_will'], async () => {
		await until('the version', async () => /version \d/.test(await desk.textContent('#sys-version')));
		const clients = Number(await desk.textContent('#sys-clients'));
		assert(clients >= 1, 'clients ' + clients);
		const up1 = await desk.textContent('#sys-uptime');
		const p1 = Number(await desk.getAttribute('#chart-msgs', 'data-points')) || 0;
		await until('two more points on the messages chart and a new uptime', async () =>
			(Number(await desk.getAttribute('#chart-msgs', 'data-points')) || 0) >= p1 + 2 &&
			(await desk.textContent('#sys-uptime')) !== up1, 15000);
		// traffic in both directions moves the rates: a message from midge_pub that the page
		// is subscribed to. The peak, not the last point: a later quiet second may come first.
		await run('midge_pub', ['-h', '127.0.0.1', '-p', TCP_PORT, '-t', 'room/temp', '-m', '20', '-q', '1']);
		for (const id of ['chart-msgs', 'chart-bytes'])
			await until(id + ': in and out above 0', async () => {
				const peak = await desk.getAttribute('#' + id, 'data-peak');
				return peak && peak.split(',').every((v) => Number(v) > 0);
			}, 15000);
		for (const id of ['chart-clients', 'chart-msgs', 'chart-bytes'])
			assert(await desk.locator('#' + id + ' canvas').count() > 0, id + ' drawn');
		await desk.locator('#broker-panel').screenshot({ path: join(OUT, 'web-broker-panel.png') });
		return 'version ' + (await desk.textContent('#sys-version')) + ', uptime ' + (await desk.textContent('#sys-uptime')) +
			', msgs/s ' + (await desk.textContent('#sys-msgs')) + ', bytes/s ' + (await desk.textContent('#sys-bytes'));
	});

	await check('desktop_screenshot', ['connect_v5_username_will'], async () => {
		await desk.screenshot({ path: join(OUT, 'web-desktop.png'), fullPage: true });
		return join(OUT, 'web-desktop.png');
	});

	phoneCtx = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2,
		isMobile: true, hasTouch: true });
	phone = await phoneCtx.newPage();
	watch(phone, 'phone');

	await check('phone_mqtt311_no_clean_start', ['page_loads_from_http_dir'], async () => {
		await phone.goto(PAGE_URL, { waitUntil: 'load', timeout: 15000 });
		await phone.locator('body[data-ready="1"]').waitFor({ timeout: 10000 });
		await connectForm(phone, { id: 'web-phone', version: 4, keepalive: 20, clean: false });
		assert((await phone.textContent('#status')).includes('MQTT 3.1.1'), 'status');
		await addSub(phone, 'room/temp', 1, '#16a085');
		await run('midge_pub', ['-h', '127.0.0.1', '-p', TCP_PORT, '-q', '1', '-t', 'room/temp', '-m', '24']);
		assert((await rowText(phone, 'room/temp')) === '24', 'payload on the phone');
		await phone.locator('#plots figure[data-topic="room/temp"][data-points="1"]').waitFor({ timeout: 10000 });
		const [sw, iw] = await phone.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
		assert(sw <= iw, 'no sideways scrolling on a phone: scrollWidth ' + sw + ' > ' + iw);
		const chartW = await phone.locator('#plots figure canvas').first().evaluate((c) => c.getBoundingClientRect().width);
		assert(chartW <= iw, 'the chart fits the phone: ' + chartW);
		await phone.screenshot({ path: join(OUT, 'web-phone.png'), fullPage: true });
		return 'width ' + iw + ', scrollWidth ' + sw;
	});

	await check('disconnect_button', ['phone_mqtt311_no_clean_start'], async () => {
		await phone.click('#disconnect');
		await phone.locator('#status[data-state="disconnected"]').waitFor({ timeout: 10000 });
		assert(await phone.isDisabled('#publish'), 'publish disabled when disconnected');
		return 'disconnected';
	});

	await check('reconnect_v5_then_taken_over', ['disconnect_button'], async () => {
		assert((await phone.textContent('#connect-error')) === '', 'no error after Disconnect');
		await phone.selectOption('#protocol', '5');
		await phone.setChecked('#clean', true);
		await phone.click('#connect');
		await phone.locator('#status[data-state="connected"]').waitFor({ timeout: 10000 });
		// the page subscribes again to what its list holds
		await phone.locator('#subs li[data-filter="room/temp"][data-state="active"]').waitFor({ timeout: 10000 });
		await run('midge_pub', ['-h', '127.0.0.1', '-p', TCP_PORT, '-q', '1', '-t', 'room/temp', '-m', '25']);
		await until('25 on the phone', async () => (await rowText(phone, 'room/temp')) === '25');
		// another client with the page's client id: the broker sends DISCONNECT 0x8E
		await run('midge_sub', ['-h', '127.0.0.1', '-p', TCP_PORT, '-V', '5', '-i', 'web-phone', '-t', 'x', '-E']);
		await phone.locator('#status[data-state="disconnected"]').waitFor({ timeout: 10000 });
		const err = await phone.textContent('#connect-error');
		assert(err.startsWith('The broker disconnected: session taken over (0x8e)'), err);
		return err;
	});

	await check('https_page_over_wss', ['page_loads_from_http_dir'], async () => {
		const url = new URL(env.TLS_PAGE_URL);
		// the test CA is not the browser's: this context accepts the certificate anyway
		const ctx = await browser.newContext({ ignoreHTTPSErrors: true });
		try {
			const p = await ctx.newPage();
			p.on('pageerror', (e) => pageErrors.push('https: ' + e.message));
			const resp = await p.goto(url.href, { waitUntil: 'load', timeout: 15000 });
			assert(resp && resp.status() === 200, 'GET ' + url.href + ' -> ' + (resp && resp.status()));
			await p.locator('body[data-ready="1"]').waitFor({ timeout: 10000 });
			const ws = await p.inputValue('#url');
			assert(ws === 'wss://' + url.host + '/mqtt', 'the default URL is wss: ' + ws);
			await p.fill('#client-id', 'web-tls');
			await p.click('#connect');
			await p.locator('#status[data-state="connected"]').waitFor({ timeout: 10000 });
			await addSub(p, 'tls/#', 1);
			await run('midge_pub', ['-h', '127.0.0.1', '-p', TCP_PORT, '-q', '1', '-t', 'tls/x', '-m', 'over wss']);
			assert((await rowText(p, 'tls/x')) === 'over wss', 'payload over wss');
			return ws;
		} finally {
			await ctx.close();
		}
	});

	await check('will_on_abrupt_close', ['connect_v5_username_will'], async () => {
		const sub = await subscriber('web/will', ['-q', '1', '-F', 'M|%q|%p']);
		await deskCtx.close(); // the tab goes away without an MQTT DISCONNECT
		deskCtx = null;
		await until('the will at midge_sub', () => printed(sub).length >= 1);
		assert(printed(sub)[0] === 'M|1|desk gone', printed(sub)[0]);
		return printed(sub)[0];
	});

	await check('nothing_loaded_from_elsewhere', ['page_loads_from_http_dir'], async () => {
		assert(foreign.length === 0, 'requests elsewhere: ' + foreign.join(', '));
		return 'only ' + pageOrigin + ' and ' + wsOrigin;
	});

	await check('no_page_errors', ['page_loads_from_http_dir'], async () => {
		assert(pageErrors.length === 0, pageErrors.join('\n'));
		return 'none';
	});
} catch (e) {
	report('driver', false, (e && e.stack) || e);
} finally {
	for (const t of procs)
		if (t.exited === null)
			t.p.kill('SIGTERM');
	await browser.close();
}
process.exit(0);
