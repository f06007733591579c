// js-metered: a cutover:strategy@0.2.0 test guest on the JavaScript SDK, as `metered` is in Rust.
//
// By default a canary judged on metrics through the SDK's wrappers, then the template's careful rolling
// deploy: one canary is cloned, the error ratio of its release over the last five minutes is judged
// against the previous release's, and only if the judge passes is the fleet rolled in batches of
// `max_unavailable` (the first bad batch moved back); else the canary goes and the deploy fails. With
// no metrics server (verify's scenarios) the gate is the canary's checks, as a strategy's must be.
//
// The `escape` parameter makes it fail the way a new author's strategy does, to test what the SDK turns
// that into: `batch` lets a batch call's failure (a list of { id, error }) escape `deploy` (a stop of
// every machine, which fails when the platform's stop is down), `exception` throws a TypeError, `value`
// throws a string.

import {
  chunks, cloneMachines, explain, groupBy, listMachines, log, machines, maxUnavailable, metrics, params,
  payloadOf, phase, retryBatch, runtime, shouldRun, specs, traffic, usePlan, waitServing,
} from 'cutover-sdk';

const WINDOW_MS = 300000;
const STEP_MS = 15000;

export function describe() {
  return {
    name: 'js-metered',
    summary: 'test guest: a canary judged on metrics, then a rolling deploy, in JavaScript',
    params: [specs.retries(), specs.text('escape', '', 'Fail on purpose: batch, exception or value.')],
  };
}

export function deploy(plan) {
  usePlan(plan);
  const escape = params.text('escape', '');
  const fleet = listMachines();
  if (escape === 'batch') machines.stop(fleet.map((m) => m.id), plan.killSignal, plan.killTimeoutMs); // escapes on purpose
  if (escape === 'exception') throw new TypeError(`${fleet.length} machines is not what I expected`);
  if (escape === 'value') throw 'not a contract error';
  const todo = fleet.filter((m) => m.release.version !== plan.target.version);
  const serving = todo.filter((m) => shouldRun(m.state));
  if (serving.length) canary(plan, serving[0]);
  for (const [group, members] of groupBy(todo, (m) => m.processGroup)) {
    const batches = chunks(members, maxUnavailable(plan, members.length));
    batches.forEach((batch, i) => {
      phase(`${group}: batch ${i + 1}/${batches.length}`);
      try {
        move(plan, batch, plan.target);
      } catch (failure) {
        for (const back of groupBy(batch, (m) => String(m.release.version)).values()) {
          try { move(plan, back, back[0].release); } catch (e) { log.error(`moving back failed too: ${payloadOf(e).val}`); }
        }
        throw failure;
      }
    });
  }
}

// A routable clone of `source` on the target, judged, then destroyed; throws if it fails.
function canary(plan, source) {
  phase('canary');
  const { cloneOf, failures: failed } = cloneMachines([source.id], plan.target, true);
  if (failed.length) throw explain(failed, 'canary clone');
  const made = [...cloneOf.values()];
  try {
    const down = waitServing(made, plan.waitTimeoutMs);
    if (down.length) throw explain(down, 'canary');
    if (!gate(plan)) throw { tag: 'unhealthy', val: 'the metric judge failed the canary' };
  } finally {
    const gone = retryBatch(machines.destroy, made);
    if (gone.length) log.error(`the canary could not be destroyed: ${gone[0].error.val}`);
  }
}

function move(plan, batch, release) {
  const ids = batch.map((m) => m.id);
  const running = batch.filter((m) => shouldRun(m.state)).map((m) => m.id);
  const steps = [
    ['cordon', () => retryBatch(traffic.cordon, running)],
    ['update', () => retryBatch(machines.update, ids, release)],
    ['wait', () => waitServing(running, plan.waitTimeoutMs)],
    ['uncordon', () => retryBatch(traffic.uncordon, running)],
  ];
  for (const [step, run] of steps) {
    const failed = run();
    if (failed.length) throw explain(failed, `${step} on v${release.version}`);
  }
}

function errorRatio(version, now) {
  return metrics.values(metrics.queryRange(`error_ratio{version="${version}"}`, now - WINDOW_MS, now, STEP_MS));
}

// Whether the canary's release may go on: the judge's verdict, or (no metrics server) its checks.
function gate(plan) {
  const now = Number(runtime.now());
  let instant;
  try {
    instant = metrics.query(`error_ratio{version="${plan.target.version}"}`);
  } catch (e) {
    if (payloadOf(e)?.tag !== 'unsupported') throw e;
    log.info(`no metrics (${payloadOf(e).val}): the canary's checks are the gate`);
    return true;
  }
  log.info(`canary error ratio now: ${metrics.values(instant).join(', ')}`);
  const previous = plan.previous ? plan.previous.version : 0n;
  const j = metrics.judge(errorRatio(plan.target.version, now), errorRatio(previous, now));
  log.info(`judge: ${j.verdict}, p-value ${j.pValue.toFixed(4)}, effect size ${j.effectSize.toFixed(4)}`);
  return j.verdict !== 'fail';
}
