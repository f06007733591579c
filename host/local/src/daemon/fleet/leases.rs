//! Machine leases as Fly keeps them: a live lease held by someone else refuses every mutation of
//! the machine (and any other attempt to lease it) until it expires or its holder releases it. The
//! API checks [`Fleet::check_lease`] before every mutating call; the nonce is the proof of holding.

use super::{Fleet, err, find, find_mut, unix_now};
use cutover_core::{ErrorKind, OpError};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A lease on a machine (Fly's shape).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lease {
    /// The holder's proof: mutating calls carry it in `fly-machine-lease-nonce`.
    pub nonce: String,
    /// When the lease lapses, in seconds since the Unix epoch.
    pub expires_at: i64,
    /// Who holds it (the `fly-machine-lease-owner` header of whoever took it), for conflict messages.
    pub owner: String,
    /// Changes on every take or refresh, as Fly's does.
    pub version: String,
}

impl Fleet {
    /// Check a lease nonce for a mutating call: a live lease held by someone else refuses it.
    pub fn check_lease(&self, app: &str, id: &str, nonce: Option<&str>) -> Result<(), OpError> {
        let st = self.lock();
        let m = find(&st, app, id)?;
        match &m.lease {
            Some(l) if l.expires_at > unix_now() && nonce != Some(l.nonce.as_str()) => Err(err(
                ErrorKind::Conflict,
                format!("machine {id} is leased by {} until {}", l.owner, l.expires_at),
            )),
            _ => Ok(()),
        }
    }

    /// Take or refresh a lease: a live lease of another owner is a conflict.
    pub fn lease(
        &self,
        app: &str,
        id: &str,
        ttl: Duration,
        owner: &str,
        nonce: Option<&str>,
    ) -> Result<Lease, OpError> {
        let mut st = self.lock();
        let m = find_mut(&mut st, app, id)?;
        if let Some(l) = &m.lease
            && l.expires_at > unix_now()
            && nonce != Some(l.nonce.as_str())
        {
            return Err(err(
                ErrorKind::Conflict,
                format!("machine {id} is leased by {} until {}", l.owner, l.expires_at),
            ));
        }
        let lease = Lease {
            nonce: nonce.map(str::to_string).unwrap_or_else(|| format!("{:016x}", rand::random::<u64>())),
            expires_at: unix_now() + ttl.as_secs().max(1) as i64,
            owner: owner.to_string(),
            version: format!("{:x}", rand::random::<u32>()),
        };
        m.lease = Some(lease.clone());
        Ok(lease)
    }

    /// The live lease on a machine, whoever holds it; `None` once it has expired.
    pub fn lease_of(&self, app: &str, id: &str) -> Result<Option<Lease>, OpError> {
        let st = self.lock();
        Ok(find(&st, app, id)?.lease.clone().filter(|l| l.expires_at > unix_now()))
    }

    /// Drop the lease on a machine: only its holder (`nonce`) may, while it is live.
    pub fn release_lease(&self, app: &str, id: &str, nonce: Option<&str>) -> Result<(), OpError> {
        let mut st = self.lock();
        let m = find_mut(&mut st, app, id)?;
        match &m.lease {
            // Only the holder (who has the nonce) may release a live lease.
            Some(l) if nonce != Some(l.nonce.as_str()) && l.expires_at > unix_now() => {
                Err(err(ErrorKind::Conflict, format!("machine {id} is leased by {}", l.owner)))
            }
            _ => {
                m.lease = None;
                Ok(())
            }
        }
    }
}
