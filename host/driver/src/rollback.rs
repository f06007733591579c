//! Choosing the release `cutover rollback` returns to, from the journal and what the fleet runs now.
//!
//! The known releases of an app are the targets of its successful deploys and the releases its deploys
//! started from (the first deploy's previous release is how the fleet looked before cutover). Without
//! `--to`, the rollback goes to the release the current one replaced: the `previous` of the latest
//! successful deploy (or rollback) that put the fleet on its current release; after a crash (the latest
//! deploy is interrupted), the release that deploy started from.

use cutover_core::Release;
use cutover_journal::{ReleaseRecord, ReleaseStatus};

/// The release to roll back to, or an error that says why there is none and what to do.
pub fn pick(
    app: &str,
    records: &[ReleaseRecord],
    current: Option<&Release>,
    to: Option<u64>,
) -> Result<Release, String> {
    let Some(current) = current else {
        return Err(format!("{app} has no machines, so there is nothing to roll back"));
    };
    if let Some(version) = to {
        if version == current.version {
            return Err(format!("{app} is already on v{version}; `cutover releases` lists the others"));
        }
        return known(records).into_iter().rev().find(|r| r.version == version).ok_or_else(|| {
            let versions: Vec<String> =
                known(records).iter().map(|r| format!("v{}", r.version)).collect::<Vec<_>>();
            format!(
                "v{version} is not a release cutover knows of {app} (known: {}); `cutover releases` lists \
                     them",
                if versions.is_empty() { "none".to_string() } else { dedup(versions).join(", ") }
            )
        });
    }
    // After a crash the fleet is part way between two releases: back to where the deploy started.
    if let Some(r) = records.last().filter(|r| r.status == ReleaseStatus::Interrupted) {
        return r.previous.clone().ok_or_else(|| {
            format!(
                "{app}'s deploy #{} (v{}) was interrupted, and it started from no other release; resume it \
                 with `cutover resume`, or name a release with `--to VERSION`",
                r.id, r.target.version
            )
        });
    }
    let put_there = records
        .iter()
        .rev()
        .find(|r| r.status == ReleaseStatus::Succeeded && r.target.version == current.version);
    match put_there {
        Some(r) => match &r.previous {
            Some(p) if p.version != current.version => Ok(p.clone()),
            _ => Err(format!(
                "{app} is on v{}, and the deploy that put it there (#{}) started from no other release; name \
                 one with `--to VERSION` (`cutover releases` lists them)",
                current.version, r.id
            )),
        },
        None => Err(format!(
            "{app} is on v{}, which no successful cutover deploy put there (it is where the app started, or \
             a failed deploy was already rolled back); name a release with `--to VERSION` (`cutover \
             releases` lists them)",
            current.version
        )),
    }
}

/// Every release the journal knows of, in the order it learned them.
fn known(records: &[ReleaseRecord]) -> Vec<Release> {
    let mut out = Vec::new();
    for r in records {
        out.extend(r.previous.clone());
        if r.status == ReleaseStatus::Succeeded {
            out.push(r.target.clone());
        }
    }
    out
}

fn dedup(mut v: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    v.retain(|x| seen.insert(x.clone()));
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use cutover_journal::ReleaseKind;

    fn rel(v: u64) -> Release {
        Release { version: v, image: format!("img:v{v}") }
    }

    fn record(id: i64, from: u64, to: u64, status: ReleaseStatus) -> ReleaseRecord {
        ReleaseRecord {
            id,
            app: "app".into(),
            kind: ReleaseKind::Deploy,
            target: rel(to),
            previous: Some(rel(from)),
            strategy: "rolling".into(),
            strategy_hash: String::new(),
            params: serde_json::Value::Null,
            platform: "sim".into(),
            status,
            error: None,
            started_at_ms: 0,
            duration_ms: None,
            pid: 0,
            waiting_gate: None,
            host: None,
            ci_job: None,
            heartbeat_at_ms: None,
            leftovers: vec![],
        }
    }

    #[test]
    fn goes_back_to_what_the_current_release_replaced() {
        let rs = [record(1, 1, 2, ReleaseStatus::Succeeded), record(2, 2, 3, ReleaseStatus::Succeeded)];
        assert_eq!(pick("app", &rs, Some(&rel(3)), None), Ok(rel(2)));
        // After rolling back to v2 (a record 3 -> 2), rolling back again undoes that (back to v3), as
        // `kubectl rollout undo` does; older releases need `--to`.
        let mut rs = rs.to_vec();
        rs.push(record(3, 3, 2, ReleaseStatus::Succeeded));
        assert_eq!(pick("app", &rs, Some(&rel(2)), None), Ok(rel(3)));
        assert_eq!(pick("app", &rs, Some(&rel(2)), Some(1)), Ok(rel(1)));
    }

    #[test]
    fn failed_deploys_are_not_targets_but_explain_themselves() {
        let rs = [record(1, 1, 2, ReleaseStatus::Failed)];
        let e = pick("app", &rs, Some(&rel(1)), None).unwrap_err();
        assert!(e.contains("no successful cutover deploy put there"), "{e}");
        let e = pick("app", &rs, Some(&rel(1)), Some(2)).unwrap_err();
        assert!(e.contains("v2 is not a release cutover knows") && e.contains("known: v1"), "{e}");
        let e = pick("app", &rs, Some(&rel(1)), Some(1)).unwrap_err();
        assert!(e.contains("already on v1"), "{e}");
        assert!(pick("app", &rs, None, None).unwrap_err().contains("no machines"));
    }
}
