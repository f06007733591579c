// js-pipelined: a cutover:strategy@0.2.0 test guest rolling the fleet with the JavaScript SDK's
// `pipeline`: every machine not on the target goes through `moveSteps` on its own, at most
// `max_unavailable` machines at once, retrying transient errors from the step that failed. With the
// `stop_on_failure` parameter (the default) the first lasting failure starts no further machine; the
// deploy then fails naming each failed machine with its step, and the machines never started. Built
// against contract 0.1 it fails with the SDK's `unsupported` error saying to rebuild against 0.2.

import { explain, listMachines, log, maxUnavailable, params, phase, pipeline, shouldRun, specs, usePlan } from 'cutover-sdk';

export function describe() {
  return {
    name: 'js-pipelined',
    summary: 'test guest: a rolling deploy as one pipeline with a window, in JavaScript',
    params: [specs.retries(), specs.boolean('stop_on_failure', true, 'Start no further machine after a failure.')],
  };
}

export function deploy(plan) {
  usePlan(plan);
  const todo = listMachines().filter((m) => m.release.version !== plan.target.version);
  const serving = todo.filter((m) => shouldRun(m.state)).map((m) => m.id);
  const idle = todo.filter((m) => !shouldRun(m.state)).map((m) => m.id);
  const window = maxUnavailable(plan, todo.length);
  phase(`rolling ${todo.length} machine(s), ${window} at a time`);
  let left = pipeline.pipeline(serving, pipeline.moveSteps(plan.target, true, true, plan.waitTimeoutMs), {
    window,
    stopOnFailure: params.boolean('stop_on_failure', true),
  });
  if (left.ok && idle.length) left = pipeline.pipeline(idle, pipeline.moveSteps(plan.target, false, true, plan.waitTimeoutMs));
  if (!left.ok) {
    const failed = left.failed.map((f) => `${f.id} at step ${f.step}`).join(', ');
    log.error(`unfinished: failed [${failed}], not started [${left.notStarted.join(', ')}]`);
    throw explain(left.errors(), `moving to v${plan.target.version} (not started: ${left.notStarted.length})`);
  }
}
