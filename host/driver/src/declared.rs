//! Leftovers as the strategy declared them, whether or not the platform took the tag.
//!
//! A strategy marks a machine it could not clean up by tagging it (`cutover_leftover = "destroy by
//! v2"`), and after the deploy the driver records the tagged machines with the release. When the
//! platform's metadata API is down too, the tag never lands, and a record made from the tags alone
//! would miss the machine: nothing would find it again. But the strategy's tagging call goes through
//! the host, which sees it made, landed or not. This sink watches the run's events for those calls, so
//! the release's record lists every machine the strategy declared left over, and `cutover resume`
//! finishes the untagged ones from the record.

use crate::status::LEFTOVER_KEY;
use cutover_core::events::{Event, EventKind, EventSink, HostCall, SinkError};
use cutover_journal::Leftover;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// An event sink that keeps, by machine, the last value the strategy set [`LEFTOVER_KEY`] to.
#[derive(Debug, Default)]
pub(crate) struct Declared {
    values: Mutex<BTreeMap<String, String>>,
}

impl Declared {
    /// Take in events already on record (a resumed deploy's, from before it was interrupted).
    pub(crate) fn seed(&self, events: &[Event]) {
        for e in events {
            let _ = self.event(e);
        }
    }

    /// The release's leftovers: those tagged on the platform (`tagged`, read back after the deploy),
    /// and those the strategy declared whose tag did not land. `present` says whether a machine is
    /// still on the platform (a declared machine that is gone is not left over); `None` when the fleet
    /// could not be read back, and every declared one is kept.
    pub(crate) fn merge(
        &self,
        mut tagged: Vec<Leftover>,
        present: Option<&dyn Fn(&str) -> bool>,
    ) -> Vec<Leftover> {
        let values = self.values.lock().unwrap_or_else(|p| p.into_inner());
        for (id, todo) in values.iter() {
            let still_there = present.is_none_or(|p| p(id));
            if !todo.is_empty() && still_there && !tagged.iter().any(|l| l.id == *id) {
                tagged.push(Leftover { id: id.clone(), todo: todo.clone() });
            }
        }
        tagged
    }
}

impl EventSink for Declared {
    fn event(&self, event: &Event) -> Result<(), SinkError> {
        if let EventKind::HostCall { call: HostCall::SetMetadata { id, key, value }, .. } = &event.kind
            && key == LEFTOVER_KEY
        {
            self.values.lock().unwrap_or_else(|p| p.into_inner()).insert(id.clone(), value.clone());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cutover_core::events::HostReply;

    fn tagging(id: &str, value: &str) -> Event {
        Event {
            seq: 0,
            at_ms: 0,
            kind: EventKind::HostCall {
                call: HostCall::SetMetadata { id: id.into(), key: LEFTOVER_KEY.into(), value: value.into() },
                reply: HostReply::Done,
                took_ms: 0,
            },
        }
    }

    /// A declared leftover whose tag did not land is listed beside the tagged ones; a cleared one, a
    /// gone one and other keys are not.
    #[test]
    fn declared_leftovers_join_the_tagged_ones() {
        let d = Declared::default();
        d.seed(&[
            tagging("a", "destroy by v2"),
            tagging("b", "stop by v2"),
            tagging("b", ""),
            tagging("c", "destroy by v2"),
        ]);
        let mut other = tagging("e", "x");
        if let EventKind::HostCall { call: HostCall::SetMetadata { key, .. }, .. } = &mut other.kind {
            *key = "fly_release_version".into();
        }
        d.event(&other).unwrap();
        let tagged = vec![Leftover { id: "d".into(), todo: "stop-destroy by v2".into() }];
        let present = |id: &str| id != "c";
        let merged = d.merge(tagged.clone(), Some(&present));
        let ids: Vec<&str> = merged.iter().map(|l| l.id.as_str()).collect();
        assert_eq!(ids, ["d", "a"]);
        assert_eq!(merged[1].todo, "destroy by v2");
        // Unread fleet: every declared one is kept.
        assert_eq!(d.merge(tagged, None).len(), 3);
    }
}
