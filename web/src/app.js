// midge's web page: an MQTT client in the browser (MQTT.js over WebSockets) with live charts
// (uPlot). esbuild bundles this file, the two libraries and the CSS into app.js and app.css at
// build time (web/build.mjs); the page loads nothing from anywhere but the broker that serves it.

import mqtt from 'mqtt';
import { Buffer } from 'buffer';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import './style.css';

const MAX_MESSAGES = 200; // rows kept in the list; older rows (and their image URLs) are dropped
const MAX_POINTS = 300;   // points kept per chart line
const MAX_PLOTS = 12;     // topics plotted; more numeric topics are listed but not plotted
const SYS_FILTER = '$SYS/broker/#';
const PALETTE = ['#2a7ab0', '#c0392b', '#27ae60', '#8e44ad', '#d35400', '#16a085', '#7f8c8d', '#b7950b'];
const STORE_KEY = 'midge-web';

const $ = (id) => document.getElementById(id);

let client = null;
const subs = [];              // {filter, qos, colour, granted, li}
const plots = new Map();      // topic -> LiveChart
let messageCount = 0;
let paletteNext = 1;

// ---------------------------------------------------------------------------- topic matching

// MQTT's matching rules: '+' one level, '#' the rest (including the parent level); a filter
// starting with a wildcard does not match topics starting with '$'.
export function topicMatches(filter, topic) {
	const f = filter.split('/');
	const t = topic.split('/');
	if (topic.startsWith('$') && (f[0] === '+' || f[0] === '#'))
		return false;
	for (let i = 0; i < f.length; i++) {
		if (f[i] === '#')
			return true;
		if (i >= t.length)
			return false;
		if (f[i] !== '+' && f[i] !== t[i])
			return false;
	}
	return f.length === t.length;
}

function subscriptionFor(topic) {
	return subs.find((s) => topicMatches(s.filter, topic));
}

// ---------------------------------------------------------------------------- payloads

const NUMBER = /^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

// What a payload is, from its bytes: images by their magic bytes (JPEG FF D8 FF, PNG's
// 8-byte signature), then UTF-8 text that is a number or JSON, then text, else binary.
export function classify(bytes) {
	if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff)
		return { kind: 'image', mime: 'image/jpeg' };
	const png = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
	if (bytes.length >= 8 && png.every((b, i) => bytes[i] === b))
		return { kind: 'image', mime: 'image/png' };
	let text;
	try {
		text = utf8.decode(bytes);
	} catch {
		return { kind: 'binary' };
	}
	if (NUMBER.test(text))
		return { kind: 'number', text, value: Number(text) };
	const first = text.trimStart()[0];
	if (first === '{' || first === '[') {
		try {
			return { kind: 'json', text, json: JSON.parse(text) };
		} catch {
			/* not JSON after all: plain text */
		}
	}
	return { kind: 'text', text };
}

function hex(bytes, max) {
	const parts = [];
	for (let i = 0; i < Math.min(bytes.length, max); i++)
		parts.push(bytes[i].toString(16).padStart(2, '0'));
	return parts.join(' ') + (bytes.length > max ? ' …' : '');
}

// ---------------------------------------------------------------------------- charts

// A time chart of one or more lines that keeps the last MAX_POINTS points and follows its
// container's width (phones included).
class LiveChart {
	constructor(figure, labels, colours) {
		this.figure = figure;
		this.data = [[], ...labels.map(() => [])];
		this.points = 0;
		const opts = {
			width: Math.max(figure.clientWidth, 200),
			height: 150,
			scales: { x: { time: true } },
			legend: { live: false },
			series: [{}, ...labels.map((label, i) => ({
				label, stroke: colours[i], width: 2, // uPlot draws the points only while they are sparse
			}))],
			axes: [{ stroke: '#666' }, { stroke: '#666', size: 60 }],
			cursor: { drag: { x: false, y: false } },
		};
		this.plot = new uPlot(opts, this.data, figure);
		this.fit(Date.now() / 1000);
		this.resize = new ResizeObserver(() => {
			const w = Math.max(figure.clientWidth, 200);
			if (w !== this.plot.width)
				this.plot.setSize({ width: w, height: 150 });
		});
		this.resize.observe(figure);
	}

	push(t, values) {
		this.data[0].push(t);
		values.forEach((v, i) => this.data[i + 1].push(v));
		if (this.data[0].length > MAX_POINTS)
			this.data.forEach((a) => a.shift());
		this.points++;
		this.figure.dataset.points = String(this.points);
		this.figure.dataset.last = values.map(String).join(',');
		// the largest value of each line among the points kept (the test reads it)
		this.figure.dataset.peak = this.data.slice(1).map((a) => String(Math.max(...a))).join(',');
		this.plot.setData(this.data);
		this.fit(t);
	}

	// At least the last 30 s on the x axis: an empty chart, one point, or points within the
	// same second would otherwise get a meaningless range (1970, or whole years).
	fit(last) {
		const first = this.data[0].length ? this.data[0][0] : last;
		this.plot.setScale('x', { min: Math.min(first, last - 30), max: last + 1 });
	}

	setColour(i, colour) {
		const s = this.plot.series[i + 1];
		s.stroke = () => colour;
		s.points.stroke = () => colour;
		const marker = this.figure.querySelectorAll('.u-legend .u-series')[i + 1]?.querySelector('.u-marker');
		if (marker)
			marker.style.borderColor = colour;
		this.plot.redraw();
	}
}

function plotNumber(topic, value, colour) {
	let chart = plots.get(topic);
	if (!chart) {
		if (plots.size >= MAX_PLOTS)
			return;
		const fig = document.createElement('figure');
		fig.className = 'chart';
		fig.dataset.topic = topic;
		const cap = document.createElement('figcaption');
		cap.textContent = topic;
		fig.append(cap);
		$('plots').append(fig);
		$('plots-empty').hidden = true;
		chart = new LiveChart(fig, [topic], [colour]);
		plots.set(topic, chart);
	}
	chart.push(Date.now() / 1000, [value]);
}

// ---------------------------------------------------------------------------- broker panel

// $SYS/broker/... arrives as a burst of retained messages every sys_interval seconds. Each
// burst becomes one point on every chart: a burst is taken as over when no $SYS message came
// for 300 ms. Rates are counter differences over the time between two bursts.
const sys = { values: {}, prev: null, timer: 0, charts: null };

function sysCharts() {
	if (!sys.charts) {
		sys.charts = {
			clients: new LiveChart($('chart-clients'), ['connected'], ['#2a7ab0']),
			msgs: new LiveChart($('chart-msgs'), ['in', 'out'], ['#27ae60', '#c0392b']),
			bytes: new LiveChart($('chart-bytes'), ['in', 'out'], ['#27ae60', '#c0392b']),
		};
	}
	return sys.charts;
}

function duration(s) {
	const d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60;
	return (d ? d + ' d ' : '') + (d || h ? h + ' h ' : '') + (d || h || m ? m + ' min ' : '') + (s % 60) + ' s';
}

function onSys(topic, text) {
	const key = topic.slice('$SYS/broker/'.length);
	sys.values[key] = text;
	if (key === 'version')
		$('sys-version').textContent = text;
	else if (key === 'uptime')
		$('sys-uptime').textContent = duration(parseInt(text, 10) || 0);
	else if (key === 'clients/connected')
		$('sys-clients').textContent = text;
	clearTimeout(sys.timer);
	sys.timer = setTimeout(sysFlush, 300);
}

function sysFlush() {
	const v = sys.values;
	const now = Date.now() / 1000;
	const counters = {
		msgIn: Number(v['messages/received']), msgOut: Number(v['messages/sent']),
		bytesIn: Number(v['bytes/received']), bytesOut: Number(v['bytes/sent']),
	};
	const charts = sysCharts();
	if (v['clients/connected'] !== undefined)
		charts.clients.push(now, [Number(v['clients/connected'])]);
	const p = sys.prev;
	if (p && now > p.t) {
		const rate = (k) => Math.max(0, (counters[k] - p[k]) / (now - p.t));
		const r = { msgIn: rate('msgIn'), msgOut: rate('msgOut'), bytesIn: rate('bytesIn'), bytesOut: rate('bytesOut') };
		charts.msgs.push(now, [r.msgIn, r.msgOut]);
		charts.bytes.push(now, [r.bytesIn, r.bytesOut]);
		const f = (x) => (x >= 100 ? x.toFixed(0) : x.toFixed(1));
		$('sys-msgs').textContent = f(r.msgIn) + ', ' + f(r.msgOut);
		$('sys-bytes').textContent = f(r.bytesIn) + ', ' + f(r.bytesOut);
	}
	sys.prev = { t: now, ...counters };
	$('broker-panel').dataset.bursts = String((Number($('broker-panel').dataset.bursts) || 0) + 1);
}

// ---------------------------------------------------------------------------- messages

function pad(n, w) {
	return String(n).padStart(w, '0');
}

function renderPayload(m) {
	const c = m.cls;
	if (c.kind === 'image') {
		const img = document.createElement('img');
		m.url = m.url || URL.createObjectURL(new Blob([m.payload], { type: c.mime }));
		img.src = m.url;
		img.alt = m.topic + ' (' + c.mime + ', ' + m.payload.length + ' bytes)';
		img.className = 'payload-image';
		return img;
	}
	const pre = document.createElement('pre');
	pre.className = 'payload';
	if (c.kind === 'json' && $('pretty-json').checked)
		pre.textContent = JSON.stringify(c.json, null, 2);
	else if (c.kind === 'binary')
		pre.textContent = hex(m.payload, 48) + '  (' + m.payload.length + ' bytes)';
	else
		pre.textContent = c.text;
	return pre;
}

function addMessage(topic, payload, packet) {
	const sub = subscriptionFor(topic);
	if (!sub) {
		// only the broker panel's $SYS subscription matched, or a subscription just removed
		// (its UNSUBSCRIBE not yet done): not shown. The latter are counted, for the test.
		if (!topic.startsWith('$SYS/broker/'))
			document.body.dataset.unmatched = String((Number(document.body.dataset.unmatched) || 0) + 1);
		return;
	}
	const cls = classify(payload);
	const m = { topic, payload, cls, qos: packet.qos, retain: packet.retain, time: new Date() };
	const li = document.createElement('li');
	li.className = 'message';
	li.dataset.topic = topic;
	li.dataset.kind = cls.kind;
	li.dataset.qos = String(packet.qos);
	li.dataset.retain = packet.retain ? '1' : '0';
	li.style.borderLeftColor = sub.colour;
	li.msg = m;
	const head = document.createElement('div');
	head.className = 'msg-head';
	const t = m.time;
	const time = document.createElement('time');
	time.textContent = pad(t.getHours(), 2) + ':' + pad(t.getMinutes(), 2) + ':' + pad(t.getSeconds(), 2) + '.' + pad(t.getMilliseconds(), 3);
	const tp = document.createElement('span');
	tp.className = 'topic';
	tp.style.color = sub.colour;
	tp.textContent = topic;
	const q = document.createElement('span');
	q.className = 'flag';
	q.textContent = 'QoS ' + packet.qos;
	head.append(time, tp, q);
	if (packet.retain) {
		const r = document.createElement('span');
		r.className = 'flag retain';
		r.textContent = 'retained';
		head.append(r);
	}
	const size = document.createElement('span');
	size.className = 'note';
	size.textContent = payload.length + ' B';
	head.append(size);
	li.append(head, renderPayload(m));
	const list = $('messages');
	list.prepend(li);
	while (list.children.length > MAX_MESSAGES) {
		const old = list.lastElementChild;
		if (old.msg && old.msg.url)
			URL.revokeObjectURL(old.msg.url);
		old.remove();
	}
	messageCount++;
	$('msg-count').textContent = String(messageCount);
	if (cls.kind === 'number')
		plotNumber(topic, cls.value, sub.colour);
}

function rerenderPayloads() {
	for (const li of $('messages').children)
		li.replaceChild(renderPayload(li.msg), li.lastElementChild);
}

// ---------------------------------------------------------------------------- connection

function setStatus(state, text) {
	const s = $('status');
	s.dataset.state = state;
	s.textContent = text || state;
	s.className = 'status ' + (state === 'connected' ? 'on' : state === 'connecting' ? 'wait' : 'off');
	const up = state === 'connected';
	$('publish').disabled = !up;
	$('disconnect').disabled = !(up || state === 'connecting');
	$('connect').disabled = up || state === 'connecting';
}

// MQTT 5 reason codes a broker gives in DISCONNECT (the common ones, MQTT 5.0 section 2.4)
const REASONS = {
	0x00: 'normal disconnection', 0x80: 'unspecified error', 0x81: 'malformed packet',
	0x82: 'protocol error', 0x83: 'implementation specific error', 0x87: 'not authorized',
	0x89: 'server busy', 0x8b: 'server shutting down', 0x8d: 'keep alive timeout',
	0x8e: 'session taken over', 0x8f: 'topic filter invalid', 0x90: 'topic name invalid',
	0x93: 'receive maximum exceeded', 0x94: 'topic alias invalid', 0x95: 'packet too large',
	0x96: 'message rate too high', 0x97: 'quota exceeded', 0x98: 'administrative action',
	0x99: 'payload format invalid', 0x9a: 'retain not supported', 0x9b: 'QoS not supported',
	0x9c: 'use another server', 0x9d: 'server moved', 0x9f: 'connection rate exceeded',
	0xa0: 'maximum connect time', 0xa1: 'subscription identifiers not supported',
	0xa2: 'wildcard subscriptions not supported',
};

function defaultUrl() {
	if (location.protocol === 'http:' || location.protocol === 'https:')
		return (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/mqtt';
	return 'ws://localhost:8080/mqtt';
}

function subscribeOne(s) {
	if (!client || !client.connected)
		return;
	s.li.dataset.state = 'pending';
	client.subscribe(s.filter, { qos: s.qos }, (err, granted) => {
		const g = granted && granted[0];
		if (err || !g || g.qos === 128 || g.qos > 2) {
			s.li.dataset.state = 'refused';
			s.state.textContent = err ? String(err.message || err) : 'refused';
		} else {
			s.li.dataset.state = 'active';
			s.state.textContent = 'granted QoS ' + g.qos;
		}
	});
}

function connect(ev) {
	ev.preventDefault();
	if (client)
		client.end(true);
	$('connect-error').textContent = '';
	const url = $('url').value.trim();
	const opts = {
		clientId: $('client-id').value.trim(),
		protocolVersion: Number($('protocol').value),
		keepalive: Number($('keepalive').value) || 0,
		clean: $('clean').checked,
		reconnectPeriod: 0,
		connectTimeout: 10000,
	};
	if ($('username').value)
		opts.username = $('username').value;
	if ($('password').value)
		opts.password = $('password').value;
	if ($('will-topic').value.trim()) {
		opts.will = {
			topic: $('will-topic').value.trim(),
			payload: $('will-payload').value,
			qos: Number($('will-qos').value),
			retain: $('will-retain').checked,
		};
	}
	saveSettings();
	setStatus('connecting', 'connecting…');
	const c = mqtt.connect(url, opts);
	client = c;
	c.on('connect', () => {
		if (client !== c)
			return;
		setStatus('connected', 'connected (MQTT ' + (opts.protocolVersion === 5 ? '5.0' : '3.1.1') + ')');
		for (const s of subs)
			subscribeOne(s);
		if ($('sys-panel').checked)
			c.subscribe(SYS_FILTER, { qos: 0 });
	});
	c.on('message', (topic, payload, packet) => {
		if (client !== c)
			return;
		if (topic.startsWith('$SYS/broker/') && $('sys-panel').checked)
			onSys(topic, payload.toString());
		addMessage(topic, new Uint8Array(payload), packet);
	});
	c.on('disconnect', (packet) => {
		if (client !== c)
			return;
		const rc = packet.reasonCode || 0;
		$('connect-error').textContent = 'The broker disconnected: ' + (REASONS[rc] || 'reason') +
			' (0x' + rc.toString(16).padStart(2, '0') + ')' + (packet.properties && packet.properties.reasonString ? ': ' + packet.properties.reasonString : '');
	});
	c.on('error', (err) => {
		if (client === c)
			$('connect-error').textContent = String(err.message || err);
	});
	c.on('close', () => {
		if (client !== c)
			return;
		setStatus('disconnected');
		if (!c.userEnded && !$('connect-error').textContent)
			$('connect-error').textContent = 'The connection was closed.';
		for (const s of subs) {
			s.li.dataset.state = 'inactive';
			s.state.textContent = '';
		}
	});
}

function disconnect() {
	if (client) {
		const c = client;
		c.userEnded = true;
		c.end(false, {}, () => {});
		if (!c.connected)
			c.end(true);
	}
}

// ---------------------------------------------------------------------------- subscriptions

function addSubscription(filter, qos, colour) {
	if (!filter || subs.some((s) => s.filter === filter))
		return;
	const li = document.createElement('li');
	li.dataset.filter = filter;
	li.dataset.state = 'inactive';
	const sw = document.createElement('input');
	sw.type = 'color';
	sw.value = colour;
	sw.title = 'colour of ' + filter;
	const name = document.createElement('code');
	name.textContent = filter;
	const q = document.createElement('span');
	q.className = 'flag';
	q.textContent = 'QoS ' + qos;
	const state = document.createElement('span');
	state.className = 'note sub-state';
	const rm = document.createElement('button');
	rm.type = 'button';
	rm.textContent = 'Remove';
	rm.className = 'remove';
	li.append(sw, name, q, state, rm);
	$('subs').append(li);
	const s = { filter, qos, colour, li, state };
	subs.push(s);
	sw.addEventListener('input', () => {
		s.colour = sw.value;
		for (const [topic, chart] of plots)
			if (subscriptionFor(topic) === s)
				chart.setColour(0, s.colour);
		saveSettings();
	});
	rm.addEventListener('click', () => {
		subs.splice(subs.indexOf(s), 1);
		li.remove();
		if (client && client.connected)
			client.unsubscribe(filter);
		saveSettings();
	});
	subscribeOne(s);
	saveSettings();
}

// ---------------------------------------------------------------------------- publishing

async function publish(ev) {
	ev.preventDefault();
	const out = $('pub-result');
	out.className = 'note';
	const topic = $('pub-topic').value;
	const format = $('pub-format').value;
	let payload;
	try {
		if (!topic)
			throw new Error('a topic is needed');
		if (format === 'file') {
			const f = $('pub-file').files[0];
			if (!f)
				throw new Error('choose a file');
			payload = Buffer.from(await f.arrayBuffer());
		} else {
			payload = $('pub-payload').value;
			if (format === 'json')
				JSON.parse(payload); // refuse what is not JSON; send the text as typed
		}
	} catch (e) {
		out.className = 'note error';
		out.textContent = e.message;
		return;
	}
	const opts = { qos: Number($('pub-qos').value), retain: $('pub-retain').checked };
	const size = typeof payload === 'string' ? new TextEncoder().encode(payload).length : payload.length;
	out.textContent = 'sending…';
	client.publish(topic, payload, opts, (err) => {
		if (err) {
			out.className = 'note error';
			out.textContent = String(err.message || err);
		} else {
			out.textContent = 'published ' + size + ' bytes on ' + topic + (opts.qos ? ' (acknowledged)' : '');
			out.dataset.count = String((Number(out.dataset.count) || 0) + 1);
		}
	});
}

function formatChanged() {
	const file = $('pub-format').value === 'file';
	$('pub-file').hidden = !file;
	$('pub-payload').hidden = file;
}

// ---------------------------------------------------------------------------- settings

const SETTINGS = ['url', 'client-id', 'protocol', 'username', 'keepalive', 'clean', 'sys-panel',
	'will-topic', 'will-payload', 'will-qos', 'will-retain'];

function saveSettings() {
	const o = { subs: subs.map((s) => ({ filter: s.filter, qos: s.qos, colour: s.colour })) };
	for (const id of SETTINGS)
		o[id] = $(id).type === 'checkbox' ? $(id).checked : $(id).value;
	try {
		localStorage.setItem(STORE_KEY, JSON.stringify(o));
	} catch {
		/* private mode: settings are not kept */
	}
}

function loadSettings() {
	let o = {};
	try {
		o = JSON.parse(localStorage.getItem(STORE_KEY) || '{}') || {};
	} catch {
		o = {};
	}
	for (const id of SETTINGS) {
		if (o[id] === undefined)
			continue;
		if ($(id).type === 'checkbox')
			$(id).checked = !!o[id];
		else
			$(id).value = o[id];
	}
	if (!$('url').value)
		$('url').value = defaultUrl();
	if (!$('client-id').value)
		$('client-id').value = 'midge-web-' + Math.random().toString(16).slice(2, 8);
	for (const s of o.subs || [])
		addSubscription(s.filter, s.qos, s.colour);
}

// ---------------------------------------------------------------------------- start

function start() {
	loadSettings();
	$('connect-form').addEventListener('submit', connect);
	$('disconnect').addEventListener('click', disconnect);
	$('sub-form').addEventListener('submit', (ev) => {
		ev.preventDefault();
		addSubscription($('sub-topic').value.trim(), Number($('sub-qos').value), $('sub-colour').value);
		$('sub-topic').value = '';
		$('sub-colour').value = PALETTE[paletteNext++ % PALETTE.length];
	});
	$('pub-form').addEventListener('submit', publish);
	$('pub-format').addEventListener('change', formatChanged);
	$('pretty-json').addEventListener('change', rerenderPayloads);
	$('clear').addEventListener('click', () => {
		for (const li of $('messages').children)
			if (li.msg && li.msg.url)
				URL.revokeObjectURL(li.msg.url);
		$('messages').replaceChildren();
		messageCount = 0;
		$('msg-count').textContent = '0';
	});
	formatChanged();
	setStatus('disconnected');
	document.body.dataset.ready = '1';
}

start();
