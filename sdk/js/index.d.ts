// Types of the contract (wit/v0.2/strategy.wit, cutover:strategy@0.2.0; 0.1.0 is the same without
// `metrics` and `machines.pipeline`) as componentize-js maps them, and of the SDK's helpers: editors use this file for
// completion and checking of index.js and strategies.

export type MachineState =
  | 'created' | 'starting' | 'started' | 'stopping' | 'stopped'
  | 'suspended' | 'failed' | 'replacing' | 'destroying' | 'destroyed';
export type CheckStatus = 'passing' | 'warning' | 'critical';
export interface Check { name: string; status: CheckStatus; output: string }
export interface Release { version: bigint; image: string }
export interface Machine {
  id: string; name: string; region: string; processGroup: string; state: MachineState;
  release: Release; cordoned: boolean; checks: Check[]; volumes: string[]; metadata: [string, string][];
}
export type MaxUnavailable = { tag: 'count'; val: number } | { tag: 'fraction'; val: number };
export type ParamValue =
  | { tag: 'boolean'; val: boolean } | { tag: 'integer'; val: bigint } | { tag: 'float'; val: number }
  | { tag: 'text'; val: string } | { tag: 'duration-ms'; val: bigint } | { tag: 'integers'; val: bigint[] };
export type ParamKind = 'boolean' | 'integer' | 'float' | 'text' | 'duration' | 'integers' | 'count-or-fraction';
export interface ParamSpec { name: string; kind: ParamKind; default?: ParamValue; summary: string }
export interface StrategyInfo { name: string; summary: string; params: ParamSpec[] }
export interface DeployPlan {
  app: string; target: Release; previous?: Release; processGroups: string[];
  maxUnavailable: MaxUnavailable; waitTimeoutMs: bigint; killSignal: string; killTimeoutMs: bigint;
  params: [string, ParamValue][];
}
export type ErrorKind = 'not-found' | 'conflict' | 'timeout' | 'unhealthy' | 'platform' | 'denied' | 'invalid' | 'unsupported';
export interface ContractError { tag: ErrorKind; val: string }
export interface MachineError { id: string; error: ContractError }
export interface TrafficCapabilities { cordon: boolean; connectionCounts: boolean; weights: boolean; stats: boolean }
export interface ReleaseWeight { version: bigint; percent: number }
export interface TrafficStats { requests: bigint; errors: bigint; p50Ms: number; p99Ms: number }
export type Level = 'debug' | 'info' | 'warn' | 'error';
type Result<T> = { tag: 'ok'; val: T } | { tag: 'err'; val: ContractError };

/** The host's interfaces. Calls returning `result` throw on error (the error is the thrown value's `payload`). */
export declare const machines: {
  list(): Machine[];
  get(id: string): Machine;
  cloneFrom(sources: string[], target: Release, routable: boolean): Result<string>[];
  update(ids: string[], target: Release): void;
  start(ids: string[]): void;
  stop(ids: string[], signal: string, timeoutMs: bigint): void;
  destroy(ids: string[]): void;
  waitState(ids: string[], state: MachineState, timeoutMs: bigint): void;
  setMetadata(id: string, key: string, value: string): void;
  /** Contract 0.2 only (absent in a 0.1 build): throws a `PipelineFailure` payload. */
  pipeline?(ids: string[], steps: Step[], options: PipelineOptions): void;
};
export declare const health: {
  waitHealthy(ids: string[], timeoutMs: bigint): void;
  checks(id: string): Check[];
};
export declare const traffic: {
  capabilities(): TrafficCapabilities;
  cordon(ids: string[]): void;
  uncordon(ids: string[]): void;
  connections(ids: string[]): Result<number>[];
  setWeights(weights: ReleaseWeight[]): void;
  weights(): ReleaseWeight[];
  stats(version: bigint, windowMs: bigint): TrafficStats;
};
export declare const runtime: {
  log(level: Level, message: string): void;
  phase(name: string): void;
  progress(done: number, total: number): void;
  now(): bigint;
  sleep(ms: bigint): void;
  param(name: string): ParamValue | undefined;
  awaitPromotion(gate: string, timeoutMs: bigint): void;
};

export interface Point { timeMs: number; value: number }
export interface Series { labels: [string, string][]; points: Point[] }
export type Harm = 'increase' | 'decrease' | 'either';
export interface JudgeOptions { confidence: number; harm: Harm; tolerance: number; minEffect: number }
export type Verdict = 'pass' | 'marginal' | 'fail';
export interface Judgment {
  verdict: Verdict; pValue: number; effectSize: number; ciLow: number; ciHigh: number; reason: string;
}
/** The SDK's metrics wrappers (contract 0.2; built against 0.1, `available` is false and calls throw
 * `unsupported`). Times are plain milliseconds. */
export declare const metrics: {
  available: boolean;
  DEFAULT_JUDGE_OPTIONS: Readonly<JudgeOptions>;
  query(promql: string, timeMs?: number): Series[];
  queryRange(promql: string, startMs: number, endMs: number, stepMs: number): Series[];
  values(answer: Series[]): number[];
  labels(series: Series): Record<string, string>;
  judge(canary: number[], baseline: number[], options?: Partial<JudgeOptions>): Judgment;
};

// machines.pipeline (contract 0.2).
export interface StopSpec { signal: string; timeoutMs: bigint }
export interface StateWait { state: MachineState; timeoutMs: bigint }
export interface DrainWait { pollMs: bigint; timeoutMs: bigint }
export type Step =
  | { tag: 'cordon' } | { tag: 'uncordon' } | { tag: 'update'; val: Release } | { tag: 'start' }
  | { tag: 'stop'; val: StopSpec } | { tag: 'destroy' } | { tag: 'wait-state'; val: StateWait }
  | { tag: 'wait-healthy'; val: bigint } | { tag: 'wait-drained'; val: DrainWait };
export interface PipelineOptions { window: number; stopOnFailure: boolean }
/** A machine that failed a step (`step` counted from 0); its later steps were not taken. */
export interface StepError { id: string; step: number; error: ContractError }
export interface PipelineFailure { failed: StepError[]; notStarted: string[] }
/** What a pipeline left unfinished once retries were spent (`ok`: nothing). */
export declare class Unfinished {
  failed: StepError[];
  notStarted: string[];
  readonly ok: boolean;
  errors(): MachineError[];
  failedIds(): string[];
}
/** Step constructors (milliseconds as numbers or BigInt). */
export declare const steps: {
  cordon(): Step; uncordon(): Step; update(release: Release): Step; start(): Step;
  stop(signal: string, timeoutMs: number | bigint): Step; destroy(): Step;
  waitState(state: MachineState, timeoutMs: number | bigint): Step; waitHealthy(timeoutMs: number | bigint): Step;
  waitDrained(pollMs: number | bigint, timeoutMs: number | bigint): Step;
};
/** The SDK's pipelines (contract 0.2; built against 0.1, `available` is false and `pipeline`/`retire` throw
 * `unsupported`). Transient failures are retried from the step that failed. */
export declare const pipeline: {
  available: boolean;
  steps: typeof steps;
  Unfinished: typeof Unfinished;
  pipeline(ids: string[], steps: Step[], options?: { window?: number; stopOnFailure?: boolean; retries?: number }): Unfinished;
  moveSteps(release: Release, serving: boolean, canCordon: boolean, waitTimeoutMs: number | bigint): Step[];
  retire(ids: string[], plan: DeployPlan, destroy: boolean, retries?: number):
    { notStopped: MachineError[]; notDestroyed: MachineError[]; ok: boolean };
};

/** What a strategy module exports (strategy.js: `export function describe() {...}` and `deploy`). */
export interface Strategy {
  describe(): StrategyInfo;
  /** Return when the app is on plan.target; throw a ContractError (see `fail`) to fail. */
  deploy(plan: DeployPlan): void;
}

export declare const DEFAULT_RETRIES: number;
export declare function payloadOf(thrown: unknown): any;
export declare function fail(tag: ErrorKind, message: string): ContractError;
export declare function batchError(failures: MachineError[], context?: string): ContractError;
export declare function asContractError(thrown: unknown): ContractError;
export declare function guardDeploy<F extends (plan: DeployPlan) => void>(deploy: F): F;
export declare function describeError(e: ContractError): string;
export declare function isTransient(e: ContractError): boolean;
export declare function explain(failures: MachineError[], context: string): ContractError;
export declare function withContext(e: ContractError, context: string): ContractError;
export declare const log: { debug(m: string): void; info(m: string): void; warn(m: string): void; error(m: string): void };
export declare function phase(name: string): void;
export declare function progress(done: number, total: number): void;
export declare function human(ms: number | bigint): string;
export declare const params: {
  boolean(name: string, d: boolean): boolean;
  integer(name: string, d: number): number;
  float(name: string, d: number): number;
  text(name: string, d: string): string;
  durationMs(name: string, d: number): number;
  integers(name: string, d: number[]): number[];
  retries(): number;
};
export declare const specs: {
  boolean(name: string, d: boolean | undefined, summary: string): ParamSpec;
  integer(name: string, d: number | undefined, summary: string): ParamSpec;
  float(name: string, d: number | undefined, summary: string): ParamSpec;
  text(name: string, d: string | undefined, summary: string): ParamSpec;
  duration(name: string, dMs: number | undefined, summary: string): ParamSpec;
  integers(name: string, d: number[] | undefined, summary: string): ParamSpec;
  retries(): ParamSpec;
};
export declare function retry<T>(call: () => T, what: string, retries?: number, budgetMs?: number): T;
export declare function usePlan(plan: DeployPlan): void;
export declare function retryBatchWithin<A extends unknown[]>(budgetMs: number, op: (ids: string[], ...args: A) => void, ids: string[], ...args: A): MachineError[];
export declare function retryBatch<A extends unknown[]>(op: (ids: string[], ...args: A) => void, ids: string[], ...args: A): MachineError[];
export declare function listMachines(): Machine[];
export declare function chunks<T>(items: T[], size: number): T[][];
export declare function groupBy<T>(items: T[], key: (t: T) => string): Map<string, T[]>;
export declare function maxUnavailable(plan: DeployPlan, groupSize: number): number;
export declare function shouldRun(state: MachineState): boolean;
export declare function waitServing(ids: string[], timeoutMs: bigint | number): MachineError[];
export declare function stopMachines(ids: string[], plan: DeployPlan): MachineError[];
export declare function cloneMachines(sources: string[], target: Release, routable?: boolean): { cloneOf: Map<string, string>; failures: MachineError[] };
/** The metadata key that marks a leftover machine (`cutover_leftover = "<todo> by v<N>"`). */
export declare const LEFTOVER_KEY: string;
/** Tag `failures` as leftovers of this deploy (what is left to do: `todo`) and log them; returns a sentence naming them. */
export declare function leave(plan: DeployPlan, failures: MachineError[], todo: 'stop-destroy' | 'destroy' | 'stop', what: string): string;
/** What is left to do to a machine an earlier deploy tagged as a leftover, or ''. */
export declare function todoOf(m: Machine): '' | 'stop-destroy' | 'destroy' | 'stop';
/** Finish the leftovers earlier deploys tagged in `fleet`; returns the fleet without them. */
export declare function finishEarlier(plan: DeployPlan, fleet: Machine[]): Machine[];
