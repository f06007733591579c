// {{name}}: a cutover deploy strategy.
//
// As generated, a careful rolling deploy: per process group, batches of `max_unavailable`, each batch
// cordoned, updated, waited for (started, then passing its checks) and put back in rotation. The first
// batch that fails is moved back to the release it ran and the deploy stops, so at most one batch is
// ever on a bad release. Change `deploy` to make it yours; wit/v0.2/strategy.wit documents every host
// call.

import {
  chunks, explain, groupBy, listMachines, log, machines, maxUnavailable, phase, retryBatch, shouldRun,
  specs, traffic, usePlan, waitServing,
} from 'cutover-sdk';

/** @returns {import('cutover-sdk').StrategyInfo} */
export function describe() {
  return {
    name: '{{name}}',
    summary: 'Roll each process group in batches of max_unavailable, health-gated; the first bad batch is moved back and stops the deploy.',
    params: [specs.retries()],
  };
}

/** @param {import('cutover-sdk').DeployPlan} plan */
export function deploy(plan) {
  usePlan(plan); // retry idempotent calls for as long as wait_timeout allows
  const todo = listMachines().filter((m) => m.release.version !== plan.target.version);
  log.info(`{{name}}: ${todo.length} machine(s) to v${plan.target.version} (${plan.target.image})`);
  for (const [group, members] of groupBy(todo, (m) => m.processGroup)) {
    const batches = chunks(members, maxUnavailable(plan, members.length));
    batches.forEach((batch, i) => {
      phase(`${group}: batch ${i + 1}/${batches.length}`);
      try {
        move(plan, batch, plan.target);
      } catch (failure) {
        log.warn(`batch ${i + 1} failed; moving it back`);
        for (const back of groupBy(batch, (m) => String(m.release.version)).values()) {
          try { move(plan, back, back[0].release); } catch (e) { log.error(`moving back failed too: ${e.val}`); }
        }
        throw failure;
      }
    });
  }
  log.info(`all ${todo.length} machine(s) on v${plan.target.version}`);
}

/** cordon -> update -> wait started and healthy -> uncordon, each retried on transient errors; throws
 * the first lasting failure as a contract error. */
function move(plan, batch, release) {
  const ids = batch.map((m) => m.id);
  const running = batch.filter((m) => shouldRun(m.state)).map((m) => m.id); // stopped ones stay stopped
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
