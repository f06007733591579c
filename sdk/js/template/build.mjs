// Build strategy.js into a component: the SDK's build script bundles it (with the SDK) using esbuild
// and runs componentize-js against wit/. Arguments pass through: --entry, --wit, --out.
import './vendor/cutover-sdk/build.mjs';
