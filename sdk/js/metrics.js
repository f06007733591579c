// Metrics (contract 0.2): Prometheus-compatible queries the host performs, and its statistical judge,
// with plain numbers where the contract has u64 (BigInt) and Kayenta's defaults for the judge:
//
//   import { metrics } from 'cutover-sdk';
//   const now = Number(runtime.now());
//   const canary = metrics.values(metrics.queryRange(`error_ratio{version="${v}"}`, now - 300000, now, 15000));
//   const j = metrics.judge(canary, baseline);          // confidence 0.98, harm 'increase'
//   if (j.verdict === 'fail') ...
//
// The host answers from `[cutover.metrics] url` (on the simulator, the scenario's `[[metrics]]`). A
// query that fails throws like every host call (the contract error is the thrown value's `payload`):
// `unsupported` when no server is configured, `invalid` for a query the server refuses, `timeout`,
// `platform`, `denied` when the sandbox policy does not grant `metrics.*`.
//
// The interface exists only in cutover:strategy@0.2.0. Built against 0.1 (`--wit wit`), build.mjs
// links a stand-in whose `available` is false and whose calls throw an `unsupported` error saying how
// to rebuild, so a 0.1 strategy that never calls them builds and runs as before.

import * as wit from 'cutover:strategy/metrics';

/** @typedef {import('./index').Series} Series */
/** @typedef {import('./index').Judgment} Judgment */
/** @typedef {import('./index').JudgeOptions} JudgeOptions */

/** Whether this build has the metrics interface (built against contract 0.2). */
export const available = wit.available !== false;

/** Kayenta's defaults, as the contract documents them. @type {JudgeOptions} */
export const DEFAULT_JUDGE_OPTIONS = Object.freeze({ confidence: 0.98, harm: 'increase', tolerance: 0.25, minEffect: 0 });

function series(answer) {
  return answer.map((s) => ({ labels: s.labels, points: s.points.map((p) => ({ timeMs: Number(p.timeMs), value: p.value })) }));
}

function ms(n) {
  return BigInt(Math.max(0, Math.trunc(Number(n))));
}

/** The value of `promql` at `timeMs` (ms since the epoch; omitted: now on the host's clock).
 * @param {string} promql @param {number} [timeMs] @returns {Series[]} */
export function query(promql, timeMs) {
  return series(wit.query(promql, timeMs === undefined ? undefined : ms(timeMs)));
}

/** The values of `promql` from `startMs` to `endMs` every `stepMs`.
 * @param {string} promql @param {number} startMs @param {number} endMs @param {number} stepMs @returns {Series[]} */
export function queryRange(promql, startMs, endMs, stepMs) {
  return series(wit.queryRange(promql, ms(startMs), ms(endMs), ms(Math.max(1, Number(stepMs)))));
}

/** Every point's value of every series, in order: what `judge` takes. @param {Series[]} answer @returns {number[]} */
export function values(answer) {
  return answer.flatMap((s) => s.points.map((p) => p.value));
}

/** A series' labels as an object. @param {Series} s @returns {Record<string, string>} */
export function labels(s) {
  return Object.fromEntries(s.labels);
}

/** Canary against baseline with the host's Mann–Whitney U judge; options default to Kayenta's. The
 * host checks values and options and throws `invalid` naming what is wrong.
 * @param {number[]} canary @param {number[]} baseline @param {Partial<JudgeOptions>} [options] @returns {Judgment} */
export function judge(canary, baseline, options = {}) {
  const o = { ...DEFAULT_JUDGE_OPTIONS, ...options };
  return wit.judge(canary.map(Number), baseline.map(Number), {
    confidence: Number(o.confidence), harm: o.harm, tolerance: Number(o.tolerance), minEffect: Number(o.minEffect),
  });
}
