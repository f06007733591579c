//! `[deploy] release_command` in a deploy: run once on the new release after the fleet is leased and the
//! release journaled, before the strategy (or a launch) changes any machine. Its start, every output
//! line and its end are events, so the terminal, `--json` and the journal all see them, and a resume
//! can tell whether it finished ([`Resolution`]).

use crate::Deploy;
use cutover_core::events::{Event, EventKind};
use cutover_core::release_command::TAIL_LINES;
use cutover_core::{Platform, Release, ReleaseLog};
use cutover_runtime::{HostClock, Recorder};
use std::collections::VecDeque;
use std::sync::Mutex;

/// Lines of output a failed release command's error shows (the journal keeps [`TAIL_LINES`]).
const ERROR_TAIL: usize = 20;

/// The release command's output as events, and its last lines.
struct Notes<'a> {
    recorder: &'a Recorder,
    tail: Mutex<VecDeque<String>>,
}

impl ReleaseLog for Notes<'_> {
    fn line(&self, line: &str) {
        let line = cutover_core::release_command::clean_line(line.as_bytes());
        {
            let mut tail = self.tail.lock().unwrap_or_else(|e| e.into_inner());
            if tail.len() == TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(line.clone());
        }
        // A line the journal refuses is lost from the record, not from the run: the recorder keeps
        // the refusal, and the deploy stops before its first change.
        let _ = self.recorder.record(EventKind::ReleaseCommandOutput { line });
    }

    fn note(&self, message: String) {
        // Not a host call: a resume replays host calls to the strategy, and this is none of its.
        let _ = self.recorder.record(EventKind::ReleaseCommandNote { message });
    }
}

/// What a resumed deploy does about the release command, from its journaled events.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Resolution {
    /// Nothing to do: there is none, it succeeded, or it was skipped.
    Done,
    /// It started and no end was recorded: the process died while it ran. Run it again.
    Rerun,
    /// It never started and the strategy has not either: run it now.
    Run,
    /// It ended in failure, but the process died before the deploy's end was recorded.
    Failed(String),
}

/// What the journal says of a deploy's release command.
pub(crate) fn resolve(events: &[Event]) -> Resolution {
    let mut started = false;
    let mut strategy_began = false;
    for e in events {
        match &e.kind {
            EventKind::ReleaseCommandStarted { .. } => started = true,
            EventKind::ReleaseCommandFinished { error: None, .. }
            | EventKind::ReleaseCommandSkipped { .. } => {
                return Resolution::Done;
            }
            EventKind::ReleaseCommandFinished { error: Some(error), .. } => {
                return Resolution::Failed(error.clone());
            }
            EventKind::HostCall { .. } | EventKind::Intent { .. } if !started => strategy_began = true,
            _ => {}
        }
    }
    match (started, strategy_began) {
        (true, _) => Resolution::Rerun,
        (false, false) => Resolution::Run,
        (false, true) => Resolution::Done,
    }
}

impl Deploy<'_> {
    /// Run the config's release command on `release`, recording it; `Some(error)` aborts the deploy
    /// (nothing else has changed). `rerun`: a resume runs it again after a crash during it.
    pub(crate) async fn release_command(
        &self,
        platform: &dyn Platform,
        recorder: &Recorder,
        clock: HostClock,
        release: &Release,
        rerun: bool,
    ) -> Option<String> {
        let cmd = self.config.release_command_for(release)?;
        if self.config.skip_release_command {
            let skipped = recorder.record(EventKind::ReleaseCommandSkipped {
                command: cmd.command,
                why: "--skip-release-command".into(),
            });
            return skipped.err().map(|e| format!("nothing was changed: {e}"));
        }
        let started = clock.elapsed_ms();
        // Fail closed: a command whose start is not on record does not run (a resume could not
        // tell that it had).
        if let Err(e) = recorder.record(EventKind::ReleaseCommandStarted {
            command: cmd.command.clone(),
            release: release.clone(),
            timeout_ms: cmd.timeout.as_millis() as u64,
            rerun,
        }) {
            return Some(format!("nothing was changed: {e}"));
        }
        let notes = Notes { recorder, tail: Mutex::new(VecDeque::new()) };
        let result = platform.run_release_command(&cmd, &notes).await;
        let tail: Vec<String> = notes.tail.into_inner().unwrap_or_else(|e| e.into_inner()).into();
        let exit_code = match &result {
            Ok(()) => Some(0),
            Err(cutover_core::ReleaseCommandError::Exited(code)) => Some(*code),
            Err(_) => None,
        };
        let error = result.err().map(|e| with_tail(&e.to_string(), &tail));
        let finished = recorder.record(EventKind::ReleaseCommandFinished {
            exit_code,
            error: error.clone(),
            tail,
            took_ms: clock.elapsed_ms().saturating_sub(started),
        });
        // Its end must be on record before anything changes, or a resume would run it again.
        let error = error.or_else(|| {
            finished.err().map(|e| e.to_string()).or_else(|| recorder.failure().map(|e| e.to_string()))
        });
        error.map(|e| format!("{e}\nnothing was changed: the deploy stopped before its first machine change"))
    }
}

/// `error`, then the last lines of output, indented.
fn with_tail(error: &str, tail: &[String]) -> String {
    if tail.is_empty() {
        // On Fly the output is not streamed: the notes before it say where it is.
        return format!("{error} (no output was captured)");
    }
    let shown = &tail[tail.len().saturating_sub(ERROR_TAIL)..];
    let mut out = format!("{error}; its last {} line(s) of output:", shown.len());
    for line in shown {
        out.push_str("\n    ");
        out.push_str(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use cutover_core::events::{FleetSummary, HostCall, HostReply};

    fn ev(seq: u64, kind: EventKind) -> Event {
        Event { seq, at_ms: seq, kind }
    }

    fn started() -> EventKind {
        EventKind::ReleaseCommandStarted {
            command: "migrate".into(),
            release: Release { version: 2, image: "i".into() },
            timeout_ms: 1000,
            rerun: false,
        }
    }

    fn finished(error: Option<&str>) -> EventKind {
        EventKind::ReleaseCommandFinished {
            exit_code: Some(if error.is_some() { 3 } else { 0 }),
            error: error.map(str::to_string),
            tail: vec![],
            took_ms: 1,
        }
    }

    #[test]
    fn a_resume_reruns_only_a_release_command_whose_end_is_not_on_record() {
        assert_eq!(resolve(&[]), Resolution::Run);
        assert_eq!(resolve(&[ev(0, started())]), Resolution::Rerun);
        let output = EventKind::ReleaseCommandOutput { line: "x".into() };
        assert_eq!(resolve(&[ev(0, started()), ev(1, output)]), Resolution::Rerun);
        assert_eq!(resolve(&[ev(0, started()), ev(1, finished(None))]), Resolution::Done);
        assert_eq!(
            resolve(&[ev(0, started()), ev(1, finished(Some("boom")))]),
            Resolution::Failed("boom".into())
        );
        let call =
            EventKind::HostCall { call: HostCall::List, reply: HostReply::Machines(vec![]), took_ms: 0 };
        assert_eq!(resolve(&[ev(0, call)]), Resolution::Done, "a deploy whose strategy began ran none");
        let end = EventKind::DeployFinished {
            outcome: cutover_core::events::Outcome::Failed,
            error: None,
            duration_ms: 0,
            fleet: FleetSummary::default(),
        };
        assert_eq!(resolve(&[ev(0, end)]), Resolution::Run);
    }

    #[test]
    fn the_error_shows_the_tail() {
        let tail: Vec<String> = (0..30).map(|i| format!("line {i}")).collect();
        let e = with_tail("release command exited with code 3", &tail);
        assert!(e.starts_with("release command exited with code 3; its last 20 line(s)"), "{e}");
        assert!(e.contains("line 29") && e.contains("line 10") && !e.contains("line 9\n"), "{e}");
    }
}
