// manual-split: bring the new release up beside the old one, send it a small share of traffic
// (10% by default), wait for a person to run `cutover promote`, then move all traffic over and keep
// the old machines stopped, so going back is a switch rather than a redeploy.
//
// This is the split a Fly user asked for: "a new set of VMs started, ready to go, then manually switch
// all (or a percentage) of traffic ... if there was any problem you could switch traffic back".
//
// New machines: for every serving machine not on the target release, a clone on the target, created
// cordoned; or, when the target release already has stopped and cordoned machines (kept by an earlier
// run of this strategy), those are started instead of cloning. If every new machine is such a kept one
// (what `cutover rollback` meets), the deploy switches at once without a split or a gate: the release
// already served before. Nothing old is touched until the promotion, so any failure before it only
// removes (or re-stops) the new machines.

import {
  cloneMachines, explain, fail, finishEarlier, groupBy, leave, human, listMachines, log, machines, params, phase, retry,
  retryBatch, runtime, shouldRun, specs, stopMachines, traffic, usePlan, waitServing, describeError, payloadOf,
} from 'cutover-sdk';

const GATE = 'split';

/** @returns {import('cutover-sdk').StrategyInfo} */
export function describe() {
  return {
    name: 'manual-split',
    summary: 'Start the new release beside the old, give it a share of traffic (10%), wait for `cutover ' +
      'promote`, then switch all traffic and keep the old machines stopped for an instant rollback.',
    params: [
      specs.retries(),
      specs.integer('split_percent', 10, 'Share of new connections the new release gets until promoted.'),
      specs.duration('promote_timeout', 3_600_000, 'How long to wait for `cutover promote split` before giving up (the new machines are removed).'),
    ],
  };
}

/** @param {import('cutover-sdk').DeployPlan} plan */
export function deploy(plan) {
  usePlan(plan); // retry idempotent calls for as long as wait_timeout allows
  const target = plan.target;
  // Leftovers of earlier deploys (tagged by them) are finished first: neither old nor new here.
  const fleet = finishEarlier(plan, listMachines());
  const onTarget = fleet.filter((m) => m.release.version === target.version);
  // The current release: machines in rotation on another release. Cordoned ones on other releases are
  // standbys of earlier deploys and are left alone.
  const old = fleet.filter((m) => m.release.version !== target.version && !m.cordoned);
  if (old.length === 0) {
    log.info(`every serving machine is already on v${target.version}`);
    return;
  }
  const caps = traffic.capabilities();
  if (!caps.cordon) {
    throw fail('unsupported', 'manual-split keeps the new release out of traffic by cordoning it until it is healthy, and this platform cannot cordon; nothing was changed');
  }
  const withVolumes = old.filter((m) => m.volumes.length > 0);
  if (withVolumes.length > 0) {
    throw fail('invalid', `manual-split clones machines, and ${withVolumes.length} machine(s) have volumes (machine ${withVolumes[0].id}): a volume attaches to one machine only; use a rolling strategy. Nothing was changed.`);
  }

  const standbys = onTarget.filter((m) => m.cordoned);
  const newOf = pairStandbys(old, standbys);
  const adopted = [...newOf.values()];
  const toClone = old.filter((m) => !newOf.has(m.id)).map((m) => m.id);
  const toStart = standbys.filter((s) => adopted.includes(s.id) && !shouldRun(s.state)).map((s) => s.id);
  log.info(`manual-split: ${old.length} machine(s) serving v${old[0].release.version}; v${target.version} gets ` +
    `${adopted.length} kept machine(s) back and ${toClone.length} clone(s)`);

  phase('start new');
  const { cloneOf, failures: cloneFailures } = cloneMachines(toClone, target, false);
  for (const [src, clone] of cloneOf) newOf.set(src, clone);
  const clones = [...cloneOf.values()];
  const newIds = old.map((m) => newOf.get(m.id)).filter(Boolean);
  const undo = (failures, context) => {
    abandon(clones, toStart, plan);
    return explain(failures, context);
  };
  if (cloneFailures.length) throw undo(cloneFailures, `start new: cloning failed for ${cloneFailures.length} machine(s)`);
  const startFailures = retryBatch(machines.start, toStart);
  if (startFailures.length) throw undo(startFailures, 'start new: starting kept machines failed');
  const notServing = waitServing(newIds, plan.waitTimeoutMs);
  if (notServing.length) throw undo(notServing, `start new: ${notServing.length} machine(s) on v${target.version} did not come up healthy`);

  const instant = toClone.length === 0;
  if (instant) {
    // Every new machine is one this strategy kept: the release served before, so this is a switch back.
    log.info(`all ${newIds.length} machine(s) of v${target.version} were kept from before: switching back at once, no split`);
  } else {
    split(plan, old, newIds, caps, clones, toStart);
  }

  phase('switch');
  // New in before old out: at no instant is neither in rotation.
  const inFailures = retryBatch(traffic.uncordon, newIds);
  if (inFailures.length) throw undo(inFailures, 'switch: putting the new machines in rotation failed');
  if (caps.weights) retry(() => traffic.setWeights([{ version: target.version, percent: 100 }]), 'setting weights');
  const oldIds = old.map((m) => m.id);
  const outFailures = retryBatch(traffic.cordon, oldIds);
  if (outFailures.length) throw explain(outFailures, `switch: v${target.version} serves, but taking the old machines out of rotation failed`);

  phase('retire old');
  // Kept stopped and cordoned: `cutover rollback` finds them and switches back (see the header).
  // Past the switch: a platform that refuses to stop them even past the whole budget leaves them as
  // leftovers (tagged; `cutover resume` stops them), not a failed deploy with v<target> serving.
  const stopFailures = stopMachines(oldIds, plan);
  if (stopFailures.length) leave(plan, stopFailures, 'stop', 'old machine(s)');
  // Stand-ins for machines that were stopped before go back to stopped: the fleet keeps its shape.
  const wereStopped = old.filter((m) => !shouldRun(m.state)).map((m) => newOf.get(m.id));
  const restFailures = wereStopped.length ? stopMachines(wereStopped, plan) : [];
  if (restFailures.length) leave(plan, restFailures, 'stop', 'stand-in machine(s)');
  // Routing goes back to machine count, which now means: only v<target>.
  if (caps.weights) retry(() => traffic.setWeights([]), 'clearing weights');
  log.info(`all traffic on v${target.version} (${newIds.length} machine(s)); ${oldIds.length} old machine(s) kept stopped and cordoned: \`cutover rollback\` switches back to them`);
}

/** Give the new release its share, then wait at the gate. On a timeout or refusal, traffic goes back
 * to the old release and the new machines are removed before failing. */
function split(plan, old, newIds, caps, clones, toStart) {
  const percent = Math.min(99, Math.max(1, params.integer('split_percent', 10)));
  const timeout = params.durationMs('promote_timeout', 3_600_000);
  phase(`split ${percent}/${100 - percent}`);
  if (caps.weights) {
    retry(() => traffic.setWeights(splitWeights(plan.target.version, percent, old)), 'setting weights');
  } else {
    const share = Math.round((100 * newIds.length) / (newIds.length + old.length));
    log.warn(`this platform cannot weight traffic by release: v${plan.target.version} gets its machine-count share (~${share}%) instead of ${percent}%`);
  }
  const failures = retryBatch(traffic.uncordon, newIds);
  if (failures.length) {
    resetWeights(caps);
    abandon(clones, toStart, plan);
    throw explain(failures, 'split: putting the new machines in rotation failed');
  }
  log.info(`v${plan.target.version} takes ${percent}% of new connections; waiting at manual gate \`${GATE}\` for up to ${human(timeout)}: \`cutover promote ${GATE}\` sends it all traffic`);
  try {
    runtime.awaitPromotion(GATE, BigInt(timeout));
  } catch (thrown) {
    const e = payloadOf(thrown);
    retryBatch(traffic.cordon, newIds);
    resetWeights(caps);
    abandon(clones, toStart, plan);
    throw { tag: e.tag ?? 'timeout', val: `split: not promoted (${describeError(e)}); traffic is back on the old release and the new machines were removed` };
  }
  log.info(`promoted: moving all traffic to v${plan.target.version}`);
}

/** `percent` to the target, the rest to the old releases by their machine counts, adding up to 100. */
function splitWeights(targetVersion, percent, old) {
  const byVersion = groupBy(old, (m) => String(m.release.version));
  const weights = [{ version: targetVersion, percent }];
  let left = 100 - percent;
  const entries = [...byVersion];
  entries.forEach(([version, ms], i) => {
    const share = i === entries.length - 1 ? left : Math.floor(((100 - percent) * ms.length) / old.length);
    left -= share;
    weights.push({ version: BigInt(version), percent: share });
  });
  return weights;
}

function resetWeights(caps) {
  if (!caps.weights) return;
  try { retry(() => traffic.setWeights([]), 'clearing weights'); } catch (thrown) {
    log.warn(`could not clear the weights: ${describeError(payloadOf(thrown))}`);
  }
}

/** Pair each old machine with a kept machine of the target: same process group, same region first. */
function pairStandbys(old, standbys) {
  const free = [...standbys];
  const newOf = new Map();
  for (const sameRegion of [true, false]) {
    for (const m of old) {
      if (newOf.has(m.id)) continue;
      const i = free.findIndex((s) => s.processGroup === m.processGroup && (!sameRegion || s.region === m.region));
      if (i >= 0) newOf.set(m.id, free.splice(i, 1)[0].id);
    }
  }
  return newOf;
}

/** Undo before the switch: destroy the clones this deploy made, stop the kept machines it started. */
function abandon(clones, started, plan) {
  phase('remove new');
  const left = clones.length ? retryBatch(machines.destroy, clones) : [];
  if (started.length) stopMachines(started, plan);
  log.warn(left.length
    ? `${left.length} new machine(s) could not be destroyed (they are cordoned): destroy them by hand`
    : `new machines removed (${clones.length} destroyed, ${started.length} kept one(s) stopped again); the old release serves as before`);
}
