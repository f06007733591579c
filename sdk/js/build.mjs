// Build a JavaScript strategy into a component: bundle the entry and everything it imports (the SDK
// included) into one module with esbuild, then componentize-js. Bundling first is what lets a strategy
// import the SDK from outside its own folder: componentize-js only sees files under the entry's folder.
//
//   node path/to/cutover-sdk/build.mjs [--entry strategy.js] [--wit wit] [--out strategy.wasm]
//
// Paths are relative to the current directory (the strategy's project). The SDK is the folder this
// script is in: strategies import it as `cutover-sdk`. componentize-js and esbuild are found in
// ./node_modules, else in the SDK's node_modules (where `sdk/setup` installs them in the repository).
import { mkdir, writeFile, access } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const { values: opt } = parseArgs({
  options: {
    entry: { type: 'string', default: 'strategy.js' },
    wit: { type: 'string', default: 'wit' },
    out: { type: 'string', default: 'strategy.wasm' },
  },
});
const sdk = dirname(fileURLToPath(import.meta.url));

// A package's ES module entry, from the first node_modules that has it (componentize-js exports only
// an `import` condition, so createRequire cannot resolve it).
async function load(pkg) {
  for (const base of [resolve('node_modules'), join(sdk, 'node_modules')]) {
    const dir = join(base, pkg);
    try { await access(join(dir, 'package.json')); } catch { continue; }
    const meta = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
    const exp = meta.exports?.['.'] ?? meta.exports;
    const entry = (typeof exp === 'string' ? exp : exp?.import ?? exp?.default) ?? meta.module ?? meta.main;
    return import(pathToFileURL(join(dir, entry)).href);
  }
  console.error(`build.mjs: cannot find ${pkg}: run \`npm ci\` here (or \`sdk/setup\` in the cutover repository)`);
  process.exit(2);
}

const started = Date.now();
const { build } = await load('esbuild');
const { componentize } = await load('@bytecodealliance/componentize-js');
const bundle = resolve('target', 'bundle.js');
await mkdir(dirname(bundle), { recursive: true });
await build({
  entryPoints: [opt.entry],
  bundle: true,
  format: 'esm',
  platform: 'neutral',
  outfile: bundle,
  // The contract's interfaces are the component's imports, not files.
  external: ['cutover:*'],
  // `cutover-sdk` names the SDK wherever it is (vendor/ in a project, sdk/js in the repository).
  alias: { 'cutover-sdk': join(sdk, 'index.js') },
  logLevel: 'warning',
});
const { component } = await componentize({
  sourcePath: bundle,
  witPath: resolve(opt.wit),
  worldName: 'strategy',
  // The host links WASI with nothing in it; fetch would import wasi:http, which it does not provide.
  disableFeatures: ['http', 'fetch-event'],
});
await writeFile(opt.out, component);
console.log(`built ${opt.out} (${(component.length / 1e6).toFixed(1)} MB) in ${((Date.now() - started) / 1000).toFixed(1)}s`);
