// Build strategy.js into a component: the SDK's build script bundles it (with the SDK) using esbuild
// and runs componentize-js against the contract in --wit (wit/v0.2: cutover:strategy@0.2.0). Arguments
// pass through: --entry, --wit, --out.
import './vendor/cutover-sdk/build.mjs';
