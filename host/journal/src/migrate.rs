//! `cutover journal migrate`: copying a journal into an empty PostgreSQL journal, keeping release
//! numbers (so "deploy #12" means the same deploy before and after) and every event, promotion and
//! traffic reading.

use crate::error::JournalError;
use crate::journal::Journal;

/// What a migration copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migrated {
    /// Releases copied.
    pub releases: usize,
    /// Events copied.
    pub events: usize,
    /// Promotions copied.
    pub promotions: usize,
}

impl Journal {
    /// Copy every row of this journal into `to`, which must hold no release yet (a copy is not a
    /// merge: two journals' release numbers would collide). One transaction: all or nothing.
    pub fn migrate_to(&self, to: &Journal) -> Result<Migrated, JournalError> {
        if !to.store.is_empty()? {
            return Err(JournalError::Refused(format!(
                "{} already holds releases: a journal is migrated into an empty one (release numbers would \
                 collide)",
                to.location()
            )));
        }
        let dump = self.store.dump()?;
        to.store.load(&dump)?;
        Ok(Migrated {
            releases: dump.releases.len(),
            events: dump.events.len(),
            promotions: dump.promotions.len(),
        })
    }
}
