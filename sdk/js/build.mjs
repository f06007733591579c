// Build a JavaScript strategy into a component: bundle the entry and everything it imports (the SDK
// included) into one module with esbuild, then componentize-js. Bundling first is what lets a strategy
// import the SDK from outside its own folder: componentize-js only sees files under the entry's folder.
//
//   node path/to/cutover-sdk/build.mjs [--entry strategy.js] [--wit wit] [--out strategy.wasm]
//
// Paths are relative to the current directory (the strategy's project). `--wit` picks the contract:
// `wit/v0.2` builds a cutover:strategy@0.2.0 component (what `cutover new` projects do), `wit` a 0.1.0
// one. The SDK and strategies import the contract's interfaces without a version
// (`cutover:strategy/machines`); this script gives them the version of the package in `--wit`, and an
// interface that contract lacks (`metrics` in 0.1) a stand-in whose calls throw `unsupported`. The
// strategy's `deploy` is exported wrapped in the SDK's `guardDeploy`, so whatever it throws reaches the
// host as the contract's error. The SDK is the folder this script is in: strategies import it as
// `cutover-sdk`. componentize-js and esbuild are found in
// ./node_modules, else in the SDK's node_modules (where `sdk/setup` installs them in the repository).
import { mkdir, writeFile, access } from 'node:fs/promises';
import { readFileSync, readdirSync } from 'node:fs';
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

// The contract in --wit: its package version and the interfaces it declares.
function contract(dir) {
  let text = '';
  try {
    for (const f of readdirSync(dir)) if (f.endsWith('.wit')) text += readFileSync(join(dir, f), 'utf8');
  } catch (e) {
    console.error(`build.mjs: cannot read the contract in --wit ${dir}: ${e.message}`);
    process.exit(2);
  }
  const version = /package\s+cutover:strategy@([0-9A-Za-z.+-]+)\s*;/.exec(text)?.[1];
  if (!version) {
    console.error(`build.mjs: no \`package cutover:strategy@X.Y.Z;\` in the .wit files of --wit ${dir} (expected the contract: wit/v0.2 or wit)`);
    process.exit(2);
  }
  return { version, interfaces: new Set([...text.matchAll(/^\s*interface\s+([a-z][a-z0-9-]*)/gm)].map((m) => m[1])) };
}

const witDir = resolve(opt.wit);
const { version, interfaces } = contract(witDir);

// `cutover:strategy/NAME` (with or without a version) -> the contract's import at its version, or the
// stand-in when this contract has no such interface.
const contractImports = {
  name: 'cutover-contract',
  setup(b) {
    b.onResolve({ filter: /^cutover:strategy\// }, (args) => {
      const name = args.path.slice('cutover:strategy/'.length).split('@')[0];
      if (interfaces.has(name)) return { path: `cutover:strategy/${name}@${version}`, external: true };
      return { path: name, namespace: 'cutover-missing' };
    });
    b.onLoad({ filter: /.*/, namespace: 'cutover-missing' }, (args) => ({
      contents: `const payload = { tag: 'unsupported', val: ${JSON.stringify(
        `${args.path} needs contract cutover:strategy@0.2.0, and this strategy was built against ${version} ` +
          `(--wit ${opt.wit}): build it with --wit wit/v0.2 (in every project \`cutover new\` makes)`,
      )} };
function missing() { throw Object.assign(new Error(payload.val), { payload }); }
export const available = false;
export const query = missing, queryRange = missing, judge = missing;
`,
      loader: 'js',
    }));
  },
};

const started = Date.now();
const { build } = await load('esbuild');
const { componentize } = await load('@bytecodealliance/componentize-js');
const bundle = resolve('target', 'bundle.js');
await mkdir(dirname(bundle), { recursive: true });
// The component's exports: the strategy's, with `deploy` guarded.
const entry = resolve('target', 'entry.js');
await writeFile(entry, `import * as strategy from ${JSON.stringify(resolve(opt.entry))};
import { guardDeploy } from 'cutover-sdk';
export const describe = strategy.describe;
export const deploy = guardDeploy(strategy.deploy);
`);
await build({
  entryPoints: [entry],
  bundle: true,
  format: 'esm',
  platform: 'neutral',
  outfile: bundle,
  // The contract's interfaces are the component's imports, not files.
  plugins: [contractImports],
  // `cutover-sdk` names the SDK wherever it is (vendor/ in a project, sdk/js in the repository).
  alias: { 'cutover-sdk': join(sdk, 'index.js') },
  logLevel: 'warning',
});
const { component } = await componentize({
  sourcePath: bundle,
  witPath: witDir,
  worldName: 'strategy',
  // The host links WASI with nothing in it; fetch would import wasi:http, which it does not provide.
  disableFeatures: ['http', 'fetch-event'],
});
await writeFile(opt.out, component);
console.log(`built ${opt.out} (cutover:strategy@${version}, ${(component.length / 1e6).toFixed(1)} MB) in ${((Date.now() - started) / 1000).toFixed(1)}s`);
