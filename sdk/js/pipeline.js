// Pipelines (contract 0.2): the same steps on many machines, each machine going on to its next step as
// soon as its own is done.
//
// A batch call returns when its slowest machine is done; cordon, update, wait and uncordon a batch in
// four calls and the deploy waits four times for the slowest machine. `pipeline` hands the host the
// whole sequence: machine A is updated while B is still being cordoned. With a window, one pipeline is
// a whole roll that keeps `max_unavailable` machines moving:
//
//   import { pipeline, maxUnavailable, explain } from 'cutover-sdk';
//   const left = pipeline.pipeline(ids, pipeline.moveSteps(plan.target, true, true, plan.waitTimeoutMs),
//     { window: maxUnavailable(plan, ids.length), stopOnFailure: true });
//   if (!left.ok) throw explain(left.errors(), `moving to v${plan.target.version}`);
//
// A machine whose step failed with a transient (`platform`) error goes through again from that step,
// as long as the retry policy allows for that machine and step (the `retries` parameter, then while the
// pauses before its retries fit in the time budget: see `allowsInPipeline` and `usePlan`).
//
// The call exists only in cutover:strategy@0.2.0. Built against 0.1 (`--wit wit`), `available` is false
// and `pipeline`/`retire` throw an `unsupported` error saying how to rebuild.

import * as machines from 'cutover:strategy/machines';
import { _retryPolicy, describeError, isTransient, log, params, retry, retryBatch } from './index.js';

/** @typedef {import('./index').Step} Step */
/** @typedef {import('./index').StepError} StepError */
/** @typedef {import('./index').MachineError} MachineError */

/** Whether this build has `machines.pipeline` (built against contract 0.2). */
export const available = typeof machines.pipeline === 'function';

const NOT_0_2 =
  'pipeline needs contract cutover:strategy@0.2.0, and this strategy was built against 0.1.0: build it ' +
  'with --wit wit/v0.2 (in every project `cutover new` makes)';

function need() {
  if (!available) {
    const payload = { tag: 'unsupported', val: NOT_0_2 };
    throw Object.assign(new Error(NOT_0_2), { payload });
  }
}

const ms = (n) => BigInt(Math.max(0, Math.trunc(Number(n))));

/** Step constructors: `steps.cordon()`, `steps.update(release)`, `steps.waitState('started', ms)`. */
export const steps = Object.freeze({
  cordon: () => ({ tag: 'cordon' }),
  uncordon: () => ({ tag: 'uncordon' }),
  update: (release) => ({ tag: 'update', val: release }),
  start: () => ({ tag: 'start' }),
  stop: (signal, timeoutMs) => ({ tag: 'stop', val: { signal, timeoutMs: ms(timeoutMs) } }),
  destroy: () => ({ tag: 'destroy' }),
  waitState: (state, timeoutMs) => ({ tag: 'wait-state', val: { state, timeoutMs: ms(timeoutMs) } }),
  waitHealthy: (timeoutMs) => ({ tag: 'wait-healthy', val: ms(timeoutMs) }),
  waitDrained: (pollMs, timeoutMs) => ({ tag: 'wait-drained', val: { pollMs: ms(pollMs), timeoutMs: ms(timeoutMs) } }),
});

/** The machines of a pipeline that did not take every step, once retries are spent. */
export class Unfinished {
  constructor() {
    /** Failed machines (`{ id, step, error }`, `step` from 0 in the steps as given): lasting failures
     * first, in the order listed, then transient ones that outlasted their retries. @type {StepError[]} */
    this.failed = [];
    /** Machines never started because another failed first (with `stopOnFailure`). @type {string[]} */
    this.notStarted = [];
  }

  /** Whether every machine took every step. */
  get ok() { return this.failed.length === 0 && this.notStarted.length === 0; }

  /** The failures as a batch call reports them (what `explain` takes). @returns {MachineError[]} */
  errors() { return this.failed.map((f) => ({ id: f.id, error: f.error })); }

  /** The machines that failed, whichever step. */
  failedIds() { return this.failed.map((f) => f.id); }
}

/** Take `stepList` on every machine of `ids` (at most `window` under way at once, 0: no bound),
 * retrying transient failures from the step that failed. Returns what did not finish (`.ok`: all did).
 * @param {string[]} ids @param {Step[]} stepList
 * @param {{ window?: number, stopOnFailure?: boolean, retries?: number }} [options] @returns {Unfinished} */
export function pipeline(ids, stepList, { window = 0, stopOnFailure = false, retries = params.retries() } = {}) {
  need();
  const options = { window: Math.max(0, Math.trunc(window)), stopOnFailure: !!stopOnFailure };
  const left = new Unfinished();
  // Machines still to go, by the step they go on from, each with the transient failure that sent it
  // back (null for a machine not started yet).
  let todo = new Map(ids.length ? [[0, ids.map((id) => [id, null])]] : []);
  // Per machine and step, its retries so far: each step of each machine is one operation with a policy
  // of its own, however many others share the pipeline (per machine alone, a cordon that failed early
  // would count against a wait failing later); see `allowsInPipeline` in index.js.
  const tries = new Map();
  for (;;) {
    const transient = [];
    const keptOut = [];
    const deferred = [];
    // Machines furthest along first. A machine that failed half-way may be out of service, so with a
    // window, once a call leaves a failure the calls after it wait for the next round: a full window of
    // others beside the failed machine would take more out than the window allows.
    const order = [...todo.keys()].sort((a, b) => b - a);
    for (let n = 0; n < order.length; n++) {
      const from = order[n];
      let failure;
      try {
        machines.pipeline(todo.get(from).map(([id]) => id), stepList.slice(from), options);
        continue;
      } catch (thrown) {
        failure = thrown && typeof thrown === 'object' && 'payload' in thrown ? thrown.payload : thrown;
        if (!failure || !Array.isArray(failure.failed)) throw thrown;
      }
      keptOut.push(...failure.notStarted);
      for (const f of failure.failed) {
        const shifted = { id: f.id, step: f.step + from, error: f.error };
        (isTransient(f.error) ? transient : left.failed).push(shifted);
      }
      if (options.window > 0) {
        for (const later of order.slice(n + 1)) {
          for (const [id, err] of todo.get(later)) deferred.push([later, id, err]);
        }
        break;
      }
    }
    todo = new Map();
    // Each machine that failed for now goes again from the step that failed, while its policy allows;
    // one that outlasts it has failed.
    const again = [];
    let attempt = 0;
    for (const f of transient) {
      const key = `${f.step} ${f.id}`;
      const count = (tries.get(key) ?? 0) + 1;
      tries.set(key, count);
      if (_retryPolicy.allowsInPipeline(count, retries)) {
        attempt = Math.max(attempt, count);
        again.push([f.step, f.id, f]);
      } else {
        left.failed.push(f);
      }
    }
    // Machines half-way go on with the retries; those not started yet too, unless a lasting failure
    // stopped the pipeline: then they stay not started.
    const lasting = left.failed.length > 0;
    for (const [from, id, err] of deferred) {
      if (err === null && lasting) left.notStarted.push(id);
      else again.push([from, id, err]);
    }
    if (lasting) left.notStarted.push(...keptOut);
    else for (const id of keptOut) again.push([0, id, null]);
    const errors = again.filter(([, , err]) => err !== null).map(([, , err]) => err);
    if (errors.length === 0) {
      left.notStarted.push(...again.map(([, id]) => id));
      break;
    }
    if (attempt > 0) {
      log.warn(`${errors.length} machine(s) hit a transient error, ${_retryPolicy.label(attempt, retries)}: ${describeError(errors[0].error)}`);
      _retryPolicy.backoff(attempt);
    }
    for (const [from, id, err] of again) {
      if (!todo.has(from)) todo.set(from, []);
      todo.get(from).push([id, err]);
    }
  }
  return left;
}

/** The steps that move a machine in place to `release`: cordon (when the platform can), update, and for
 * a machine that was serving, wait until started and passing, then uncordon. A stopped machine is
 * updated and stays stopped, its routing as it was (as flyctl does).
 * @returns {Step[]} */
export function moveSteps(release, serving, canCordon, waitTimeoutMs) {
  const out = canCordon ? [steps.cordon()] : [];
  out.push(steps.update(release));
  if (serving) out.push(steps.waitState('started', waitTimeoutMs), steps.waitHealthy(waitTimeoutMs));
  if (canCordon) out.push(steps.uncordon());
  return out;
}

/** Stop `ids` gracefully (the plan's kill signal and timeout), wait until each is down and, with
 * `destroy`, destroy it, each machine on its own. A machine whose process exits while it stops ends
 * `failed`, not `stopped`, and its wait times out: those are looked up in one `list`, and the ones down
 * count as stopped (and are destroyed).
 * @returns {{ notStopped: MachineError[], notDestroyed: MachineError[], ok: boolean }} */
export function retire(ids, plan, destroy, retries = params.retries()) {
  const todo = [steps.stop(plan.killSignal, plan.killTimeoutMs), steps.waitState('stopped', plan.waitTimeoutMs)];
  if (destroy) todo.push(steps.destroy());
  const unfinished = pipeline(ids, todo, { retries });
  const notStopped = [];
  const notDestroyed = [];
  const timedOut = [];
  for (const f of unfinished.failed) {
    const e = { id: f.id, error: f.error };
    if (f.step === 1 && f.error.tag === 'timeout') timedOut.push(e);
    else (f.step <= 1 ? notStopped : notDestroyed).push(e);
  }
  if (timedOut.length) {
    let fleet = null; // unreadable: nothing is known to be down
    try { fleet = new Map(retry(() => machines.list(), 'listing machines', retries).map((m) => [m.id, m])); } catch { /* see above */ }
    const down = (id) => fleet !== null && (!fleet.has(id) || ['stopped', 'failed', 'destroyed'].includes(fleet.get(id).state));
    const gone = timedOut.filter((e) => down(e.id));
    notStopped.push(...timedOut.filter((e) => !down(e.id)));
    if (gone.length) {
      log.info('machines that failed while stopping are down: counted as stopped');
      if (destroy) notDestroyed.push(...retryBatch(machines.destroy, gone.map((e) => e.id)));
    }
  }
  return { notStopped, notDestroyed, ok: notStopped.length === 0 && notDestroyed.length === 0 };
}
