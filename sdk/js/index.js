// Helpers for writing cutover deploy strategies in JavaScript (ES module, bundled into the component by
// build.mjs). The contract's interfaces are imported as `cutover:strategy/<name>`; build.mjs gives them
// the version of the contract it builds against (`--wit wit/v0.2`: 0.2.0, `--wit wit`: 0.1.0), so this
// one SDK serves both. componentize-js maps them as jco does: records are objects with camelCase
// fields, enums are kebab-case strings, variants are `{ tag, val }`, u64 are BigInt, option is a value
// or undefined. A host call whose result is an error throws; the error's `payload` is the contract's
// error (`{ tag: 'platform', val }`) for single calls, or a list of `{ id, error }` for batch calls.
// `deploy` fails by throwing a contract error: `throw fail('unhealthy', '...')`; build.mjs wraps it in
// `guardDeploy`, so anything else thrown (a batch failure, an Error, a string) becomes one too.

import * as machines from 'cutover:strategy/machines';
import * as health from 'cutover:strategy/health';
import * as traffic from 'cutover:strategy/traffic';
import * as runtime from 'cutover:strategy/runtime';
import * as metrics from './metrics.js';
import * as pipeline from './pipeline.js';

export { machines, health, traffic, runtime, metrics, pipeline };
export { steps } from './pipeline.js';

/** @typedef {import('./index').ContractError} ContractError */
/** @typedef {import('./index').MachineError} MachineError */
/** @typedef {import('./index').Machine} Machine */
/** @typedef {import('./index').DeployPlan} DeployPlan */
/** @typedef {import('./index').Release} Release */
/** @typedef {import('./index').ParamSpec} ParamSpec */

export const DEFAULT_RETRIES = 3;

// ---- errors -------------------------------------------------------------------------------------

const KINDS = {
  'not-found': 'not found', conflict: 'conflict', timeout: 'timed out', unhealthy: 'unhealthy',
  platform: 'platform error', denied: 'denied', invalid: 'invalid', unsupported: 'unsupported',
};

/** The contract error a thrown host error carries (its `payload`), or the value itself. */
export function payloadOf(thrown) {
  return thrown && typeof thrown === 'object' && 'payload' in thrown ? thrown.payload : thrown;
}

/** A contract error to throw from `deploy`: `throw fail('timeout', 'green never started')`.
 * @param {ContractError['tag']} tag @param {string} message @returns {ContractError} */
export function fail(tag, message) {
  return { tag, val: message };
}

/** An error as a short sentence ("timed out: ..."). @param {ContractError} e */
export function describeError(e) {
  if (e && typeof e === 'object' && e.tag in KINDS) return `${KINDS[e.tag]}: ${e.val}`;
  return String(e);
}

/** Whether retrying may help: only `platform` errors are transient. @param {ContractError} e */
export function isTransient(e) {
  return !!e && e.tag === 'platform';
}

/** One error for a failed batch, of the first machine's kind, naming it and counting the rest.
 * @param {MachineError[]} failures @param {string} context @returns {ContractError} */
export function explain(failures, context) {
  const first = failures[0];
  const more = failures.length > 1 ? ` (and ${failures.length - 1} more machine(s))` : '';
  return { tag: first.error.tag, val: `${context}: machine ${first.id}: ${describeError(first.error)}${more}` };
}

/** The same kind of error with context before its message. @param {ContractError} e @param {string} context */
export function withContext(e, context) {
  return { tag: e.tag, val: `${context}: ${describeError(e)}` };
}

// How many failed machines an escaped batch failure names before counting the rest, and how many stack
// frames a thrown Error keeps: enough to act on, short enough for a log line and the journal.
const NAMED_MACHINES = 10;
const FRAMES = 3;

function isContractError(e) {
  return !!e && typeof e === 'object' && e.tag in KINDS && typeof e.val === 'string';
}

function isBatch(e) {
  return Array.isArray(e) && e.every((f) => f && typeof f === 'object' && 'id' in f && isContractError(f.error));
}

/** One error for a whole failed batch, of the first machine's kind, naming every failed machine (up to
 * ten) with its reason: what an escaped batch failure becomes.
 * @param {MachineError[]} failures @param {string} [context] @returns {ContractError} */
export function batchError(failures, context = '') {
  if (failures.length === 0) return { tag: 'platform', val: `${context || 'a batch call'} failed, naming no machine` };
  const named = failures.slice(0, NAMED_MACHINES).map((f) => `${f.id}: ${describeError(f.error)}`).join('; ');
  const more = failures.length > NAMED_MACHINES ? `; and ${failures.length - NAMED_MACHINES} more` : '';
  const prefix = context ? `${context}: ` : '';
  return { tag: failures[0].error.tag, val: `${prefix}${failures.length} machine(s) failed: ${named}${more}` };
}

/** The contract error a value thrown out of `deploy` is reported as: a contract error (or a host
 * error carrying one) unchanged; a batch failure (a list of `{ id, error }`) as `batchError`, naming
 * the machines; an `Error` or any other value as a `platform` error (the contract has no kind for a bug
 * in the strategy) with its message and the first stack frames.
 * @param {unknown} thrown @returns {ContractError} */
export function asContractError(thrown) {
  const p = payloadOf(thrown);
  if (isContractError(p)) return { tag: p.tag, val: p.val };
  if (isBatch(p)) return batchError(p, 'deploy let a batch failure escape');
  if (thrown instanceof Error) {
    // The strategy's frames only: not the guard's, nor componentize-js's export glue.
    const frames = String(thrown.stack ?? '').split('\n').map((l) => l.trim())
      .filter((l) => l && !l.startsWith('guarded@') && !l.includes('initializer.js')).slice(0, FRAMES);
    const where = frames.length ? ` (at ${frames.join(' <- ')})` : '';
    return { tag: 'platform', val: `the strategy threw ${thrown.name}: ${thrown.message}${where}` };
  }
  let shown;
  try { shown = JSON.stringify(p, (_, v) => (typeof v === 'bigint' ? `${v}` : v)); } catch { shown = undefined; }
  return { tag: 'platform', val: `the strategy threw ${typeof p === 'string' ? JSON.stringify(p) : (shown ?? String(p))}, not a contract error` };
}

/** `deploy` wrapped so nothing but a contract error leaves it (see `asContractError`). Without it, a
 * thrown batch failure or non-Error value cannot be lowered to the contract's error and the component
 * traps instead of failing the deploy with a reason. build.mjs applies it to every strategy's `deploy`.
 * @template {(plan: DeployPlan) => void} F @param {F} deploy @returns {F} */
export function guardDeploy(deploy) {
  if (typeof deploy !== 'function' || deploy.cutoverGuarded) return deploy;
  const guarded = /** @type {F} */ (/** @type {unknown} */ ((plan) => {
    try {
      deploy(plan);
    } catch (thrown) {
      throw asContractError(thrown);
    }
  }));
  Object.defineProperty(guarded, 'cutoverGuarded', { value: true });
  return guarded;
}

// ---- logging --------------------------------------------------------------------------------------

// The sandbox has no terminal: these lines are what the user sees and the journal keeps.
export const log = {
  /** @param {string} m */ debug: (m) => runtime.log('debug', m),
  /** @param {string} m */ info: (m) => runtime.log('info', m),
  /** @param {string} m */ warn: (m) => runtime.log('warn', m),
  /** @param {string} m */ error: (m) => runtime.log('error', m),
};

/** Mark the start of a named phase (timed by the UI and the journal). @param {string} name */
export function phase(name) { runtime.phase(name); }

/** Progress within the current phase. @param {number} done @param {number} total */
export function progress(done, total) { runtime.progress(done, total); }

/** A duration for logs: "250ms", "2.5s", "45s", "1m30s". @param {number|bigint} ms */
export function human(ms) {
  ms = Number(ms);
  if (ms < 1000) return `${ms}ms`;
  if (ms < 10000 && ms % 1000) return `${(ms / 1000).toFixed(1)}s`;
  const s = Math.round(ms / 1000);
  return [[Math.floor(s / 3600), 'h'], [Math.floor(s / 60) % 60, 'm'], [s % 60, 's']]
    .filter(([n]) => n > 0).map(([n, u]) => `${n}${u}`).join('');
}

// ---- parameters -----------------------------------------------------------------------------------

// The host fills in declared defaults and checks kinds before `deploy`; these defaults only matter for
// parameters a strategy did not declare.
function param(name, tag) {
  const v = runtime.param(name);
  return v && v.tag === tag ? v.val : undefined;
}

export const params = {
  /** @param {string} name @param {boolean} d */ boolean: (name, d) => param(name, 'boolean') ?? d,
  /** @param {string} name @param {number} d */ integer: (name, d) => Number(param(name, 'integer') ?? d),
  /** @param {string} name @param {number} d */ float: (name, d) => param(name, 'float') ?? d,
  /** @param {string} name @param {string} d */ text: (name, d) => param(name, 'text') ?? d,
  /** Milliseconds. @param {string} name @param {number} d */
  durationMs: (name, d) => Number(param(name, 'duration-ms') ?? d),
  /** @param {string} name @param {number[]} d */
  integers: (name, d) => (param(name, 'integers') ?? d).map(Number),
  /** The `retries` parameter (see `specs.retries()`). */
  retries: () => Math.max(0, Number(param('retries', 'integer') ?? DEFAULT_RETRIES)),
};

function spec(name, kind, def, summary) {
  return { name, kind, default: def, summary };
}

/** Parameter declarations for `describe()`; a default of `undefined` makes the parameter required. */
export const specs = {
  /** @returns {ParamSpec} */
  boolean: (name, d, summary) => spec(name, 'boolean', d === undefined ? undefined : { tag: 'boolean', val: d }, summary),
  /** @returns {ParamSpec} */
  integer: (name, d, summary) => spec(name, 'integer', d === undefined ? undefined : { tag: 'integer', val: BigInt(d) }, summary),
  /** @returns {ParamSpec} */
  float: (name, d, summary) => spec(name, 'float', d === undefined ? undefined : { tag: 'float', val: d }, summary),
  /** @returns {ParamSpec} */
  text: (name, d, summary) => spec(name, 'text', d === undefined ? undefined : { tag: 'text', val: d }, summary),
  /** A duration ("30s" in config), default in ms. @returns {ParamSpec} */
  duration: (name, dMs, summary) => spec(name, 'duration', dMs === undefined ? undefined : { tag: 'duration-ms', val: BigInt(dMs) }, summary),
  /** @returns {ParamSpec} */
  integers: (name, d, summary) => spec(name, 'integers', d === undefined ? undefined : { tag: 'integers', val: d.map(BigInt) }, summary),
  /** The `retries` parameter the built-ins declare. @returns {ParamSpec} */
  retries: () => spec('retries', 'integer', { tag: 'integer', val: BigInt(DEFAULT_RETRIES) },
    'How often a machine operation is retried after a transient platform error.'),
};

// ---- retries --------------------------------------------------------------------------------------
//
// Retries are bounded by time, not only by count: at least `retries` (the parameter), and beyond that as
// long as the budget allows, counted from an operation's first failure on the host's clock. The budget
// is the deploy's `wait_timeout` once `usePlan(plan)` was called at the start of `deploy` (5 minutes,
// flyctl's default, before that). Every call retried this way is idempotent (cordon, uncordon, stop,
// destroy, waits); `cloneMachines` is not, and retries by count only.

let budgetMs = 300000;

/** Retry idempotent calls for as long as this deploy's `wait_timeout` (call at the start of deploy).
 * @param {DeployPlan} plan */
export function usePlan(plan) {
  budgetMs = Number(plan.waitTimeoutMs);
}

// Capped, so a platform that is down is still asked again every 10 s.
function backoffMs(attempt) {
  return Math.min(500 * attempt, 10000);
}

function backoff(attempt) {
  // The host's clock: instant under the simulator.
  runtime.sleep(BigInt(backoffMs(attempt)));
}

// `started` holds the time of the first failure once there was one: the clock is read only then, so a
// call that succeeds at once costs no extra host call.
function allows(attempt, retries, started, budget) {
  if (started.length === 0) started.push(Number(runtime.now()));
  return attempt <= retries || (budget > 0 && Number(runtime.now()) - started[0] < budget);
}

function label(attempt, retries) {
  return attempt <= retries ? `retry ${attempt}/${retries}` : `retry ${attempt} (within the time budget)`;
}

// A pipeline's machine is retried only once the whole call returns (its last machine done: a boot, a
// drain), so its retries come a call apart: beyond `retries`, it goes again while the pauses before its
// retries fit in the budget, as many tries as retryBatch would make, however long the calls.
function allowsInPipeline(attempt, retries) {
  let paused = 0;
  for (let k = 1; k <= attempt; k++) paused += backoffMs(k);
  return attempt <= retries || paused < budgetMs;
}

// The retry policy for pipeline.js; not part of the SDK's surface.
export const _retryPolicy = { allowsInPipeline, backoff, label };

/** One non-batch host call, retried on `platform` errors; other errors are rethrown as thrown.
 * @template T @param {() => T} call @param {string} what @param {number} [retries] @returns {T} */
export function retry(call, what, retries = params.retries(), budget = budgetMs) {
  const started = [];
  for (let attempt = 0; ; ) {
    try {
      return call();
    } catch (thrown) {
      const e = payloadOf(thrown);
      if (!isTransient(e) || !allows(attempt + 1, retries, started, budget)) throw thrown;
      attempt += 1;
      log.warn(`${what} failed (${describeError(e)}), ${label(attempt, retries)}`);
      backoff(attempt);
    }
  }
}

/** Run a batch call `op(ids, ...args)`, retrying only the machines whose error was transient. Returns
 * the lasting failures, lasting ones first (empty: every machine succeeded), so the error a deploy ends
 * with names what stopped it rather than a 503 beside it.
 * @param {(ids: string[], ...args: any[]) => void} op @param {string[]} ids @param {...any} args
 * @returns {MachineError[]} */
export function retryBatch(op, ids, ...args) {
  return retryBatchWithin(budgetMs, op, ids, ...args);
}

/** `retryBatch` with its own time budget in ms (0: by count only, for calls that are not idempotent).
 * @param {number} budget @param {(ids: string[], ...args: any[]) => void} op @param {string[]} ids
 * @param {...any} args @returns {MachineError[]} */
export function retryBatchWithin(budget, op, ids, ...args) {
  const retries = params.retries();
  const started = [];
  let todo = [...ids];
  const lasting = [];
  for (let attempt = 0; todo.length > 0; ) {
    let failures;
    try {
      op(todo, ...args);
      break;
    } catch (thrown) {
      failures = payloadOf(thrown);
      if (!Array.isArray(failures)) throw thrown;
    }
    const transient = failures.filter((f) => isTransient(f.error));
    lasting.push(...failures.filter((f) => !isTransient(f.error)));
    if (transient.length === 0) break;
    attempt += 1;
    if (!allows(attempt, retries, started, budget)) { lasting.push(...transient); break; }
    log.warn(`${transient.length} machine(s) hit a transient error, ${label(attempt, retries)}: ${describeError(transient[0].error)}`);
    backoff(attempt);
    todo = transient.map((f) => f.id);
  }
  return lasting;
}

// ---- fleet helpers --------------------------------------------------------------------------------

/** Every machine of the app, retrying transient errors. @returns {Machine[]} */
export function listMachines() {
  return retry(() => machines.list(), 'listing machines');
}

/** Items in batches of at most `size` (at least 1). @template T @param {T[]} items @param {number} size @returns {T[][]} */
export function chunks(items, size) {
  size = Math.max(1, size);
  const out = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** Items by key, keys sorted (a stable order whatever `list` returned).
 * @template T @param {T[]} items @param {(t: T) => string} key @returns {Map<string, T[]>} */
export function groupBy(items, key) {
  const groups = new Map();
  for (const item of items) {
    const k = key(item);
    if (!groups.has(k)) groups.set(k, []);
    groups.get(k).push(item);
  }
  return new Map([...groups].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** How many of `groupSize` machines may be out of service at once under the plan (at least 1).
 * @param {DeployPlan} plan @param {number} groupSize */
export function maxUnavailable(plan, groupSize) {
  const mu = plan.maxUnavailable;
  const n = mu.tag === 'count' ? mu.val : Math.ceil(mu.val * groupSize - 1e-9);
  return Math.max(1, Math.min(n, Math.max(groupSize, 1)));
}

/** Whether a machine was meant to be serving (stopped/created/suspended ones were not). @param {Machine['state']} state */
export function shouldRun(state) {
  return !['stopped', 'suspended', 'created'].includes(state);
}

/** Wait until `ids` are started, then passing their checks. Returns the failures of the first wait
 * that failed (empty: all serving). @param {string[]} ids @param {bigint|number} timeoutMs @returns {MachineError[]} */
export function waitServing(ids, timeoutMs) {
  const failed = retryBatch(machines.waitState, ids, 'started', BigInt(timeoutMs));
  return failed.length ? failed : retryBatch(health.waitHealthy, ids, BigInt(timeoutMs));
}

/** Stop `ids` gracefully (the plan's kill signal and timeout) and wait until they are stopped
 * (contract 0.2: machine by machine, with `pipeline.retire`).
 * @param {string[]} ids @param {DeployPlan} plan @returns {MachineError[]} */
export function stopMachines(ids, plan) {
  // On 0.2 each machine is stopped and waited for on its own, and one down after a timed-out wait counts.
  if (pipeline.available) return pipeline.retire(ids, plan, false).notStopped;
  const failed = retryBatch(machines.stop, ids, plan.killSignal, plan.killTimeoutMs);
  return failed.length ? failed : retryBatch(machines.waitState, ids, 'stopped', plan.waitTimeoutMs);
}

/** Clone each source onto `target` (cordoned unless `routable`), re-cloning only sources whose error
 * was transient. @param {string[]} sources @param {Release} target @param {boolean} [routable]
 * @returns {{ cloneOf: Map<string, string>, failures: MachineError[] }} */
export function cloneMachines(sources, target, routable = false) {
  const cloneOf = new Map();
  // A retried clone after a lost answer could make a second machine: by count only.
  const failures = retryBatchWithin(0, (batch) => {
    const failed = [];
    machines.cloneFrom(batch, target, routable).forEach((r, i) => {
      if (r.tag === 'ok') cloneOf.set(batch[i], r.val);
      else failed.push({ id: batch[i], error: r.val });
    });
    if (failed.length) throw { payload: failed };
  }, sources);
  return { cloneOf, failures };
}

// ---- leftovers ----------------------------------------------------------------------------------
// Past the point of no return (the new release took the traffic), what is left -- stopping or
// destroying old machines -- is idempotent clean-up, retried for the whole budget; when the platform
// stays down past it, the deploy still succeeds and the machines are *leftovers*, tagged in their
// metadata `cutover_leftover = "<todo> by v<N>"` (as the Rust and Python SDKs tag them), so that
// `cutover resume` or the next deploy (`finishEarlier`) finds and finishes them by their tag.

/** The metadata key that marks a leftover; its value is `<todo> by v<version>`. */
export const LEFTOVER_KEY = 'cutover_leftover';
const TODOS = ['stop-destroy', 'destroy', 'stop'];

/** Set LEFTOVER_KEY to `value` on every machine of `ids` ('' clears it), retried as one batch for the
 * whole budget (tagging is idempotent). Returns the machines left untagged.
 * @param {string[]} ids @param {string} value @returns {MachineError[]} */
function setTags(ids, value) {
  if (!ids.length) return [];
  return retryBatch((todo) => {
    const failed = [];
    for (const id of todo) {
      try {
        machines.setMetadata(id, LEFTOVER_KEY, value);
      } catch (thrown) {
        failed.push({ id, error: payloadOf(thrown) });
      }
    }
    if (failed.length) throw failed;
  }, ids);
}

/** Record `failures` as leftovers of this deploy: tag each machine and log what is left. Tagging is
 * retried by the time budget, as one batch (a tag given up after a few 503s left a machine nothing
 * could find again); the host records each tagging call, landed or not, with the release. Returns a
 * sentence naming the machines.
 * @param {DeployPlan} plan @param {MachineError[]} failures
 * @param {'stop-destroy' | 'destroy' | 'stop'} todo @param {string} what @returns {string} */
export function leave(plan, failures, todo, what) {
  if (!TODOS.includes(todo)) throw new Error(`todo must be one of ${TODOS.join(', ')}, not ${todo}`);
  const value = `${todo} by v${plan.target.version}`;
  const untagged = setTags(failures.map((f) => f.id), value).length;
  const ids = failures.map((f) => f.id);
  const first = failures.length ? ` (machine ${failures[0].id}: ${describeError(failures[0].error)})` : '';
  const note = `${ids.length} ${what} left to ${todo.replace('-', ' and ')}: ${ids.join(', ')}${first}; ` +
    `v${plan.target.version} is serving. They are tagged ${LEFTOVER_KEY}="${value}"` +
    (untagged ? ` (tagging failed for ${untagged})` : '');
  log.warn(`leftovers: ${note}`);
  return note;
}

/** What is left to do to `m` when an earlier deploy tagged it, or '' when it is no leftover.
 * @param {Machine} m @returns {string} */
export function todoOf(m) {
  const tag = m.metadata.find(([k, v]) => k === LEFTOVER_KEY && v);
  const word = tag ? tag[1].split(/\s+/)[0] : '';
  return TODOS.includes(word) ? word : '';
}

/** Finish the leftovers earlier deploys tagged in `fleet` and return the fleet without the ones gone
 * or still to finish. Machines to stop are stopped, untagged and kept; the others are stopped if need
 * be and destroyed. What fails stays tagged for the next try.
 * @param {DeployPlan} plan @param {Machine[]} fleet @returns {Machine[]} */
export function finishEarlier(plan, fleet) {
  const left = fleet.filter((m) => todoOf(m));
  if (!left.length) return fleet;
  const rest = fleet.filter((m) => !todoOf(m));
  log.info(`finishing ${left.length} leftover machine(s) of earlier deploys (tagged ${LEFTOVER_KEY})`);
  const toStop = left.filter((m) => todoOf(m) !== 'destroy').map((m) => m.id);
  const notStopped = new Set(toStop.length ? stopMachines(toStop, plan).map((f) => f.id) : []);
  const toDestroy = left
    .filter((m) => todoOf(m) === 'destroy' || (todoOf(m) === 'stop-destroy' && !notStopped.has(m.id)))
    .map((m) => m.id);
  const failed = toDestroy.length ? retryBatch(machines.destroy, toDestroy) : [];
  const toUntag = left.filter((m) => todoOf(m) === 'stop' && !notStopped.has(m.id)).map((m) => m.id);
  const stillTagged = new Set(setTags(toUntag, '').map((f) => f.id));
  rest.push(...left.filter((m) => toUntag.includes(m.id) && !stillTagged.has(m.id)));
  log.info(`destroyed ${toDestroy.length - failed.length} leftover machine(s) of earlier deploys; ${failed.length} still tagged`);
  return rest;
}
