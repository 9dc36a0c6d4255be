// Builds midge's web page into a folder of static files: index.html, app.js, app.css.
//   node web/build.mjs OUTDIR
// esbuild bundles src/app.js with MQTT.js, uPlot and the CSS (all from node_modules, pinned by
// package-lock.json), so the page fetches nothing but these three files from the broker.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const out = resolve(process.argv[2] || join(here, '..', 'build', 'www'));
mkdirSync(out, { recursive: true });

await build({
	entryPoints: { app: join(here, 'src', 'app.js') },
	bundle: true,
	minify: true,
	// a classic script, not a module: module scripts need the server to send a JavaScript
	// Content-Type, and mosquitto 2.0's http_dir sends none
	format: 'iife',
	platform: 'browser',
	target: ['es2020'],
	outdir: out,
	legalComments: 'linked', // the libraries' licence texts, in app.js.LEGAL.txt
	logLevel: 'warning',
	// MQTT.js's browser build refers to Node's `global`; the page's global is globalThis
	define: { global: 'globalThis' },
});
copyFileSync(join(here, 'src', 'index.html'), join(out, 'index.html'));
