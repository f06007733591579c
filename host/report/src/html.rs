//! The HTML page: the SVG inline (no file beside it, no script, no network) under a table of the
//! release's facts, so the page can be mailed or attached to a ticket as one file.

use crate::timeline::Timeline;
use cutover_journal::ReleaseRecord;
use std::time::{Duration, UNIX_EPOCH};

/// Escape text for HTML.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The page for `r`, around `svg`.
pub(crate) fn page(r: &ReleaseRecord, t: &Timeline, svg: &str) -> String {
    let started = UNIX_EPOCH + Duration::from_millis(r.started_at_ms.max(0) as u64);
    let mut facts: Vec<(&str, String)> = vec![
        ("app", r.app.clone()),
        ("release", format!("#{} ({})", r.id, r.kind.as_str())),
        ("version", format!("v{} {}", r.target.version, r.target.image)),
        (
            "previous",
            r.previous.as_ref().map(|p| format!("v{} {}", p.version, p.image)).unwrap_or("none".into()),
        ),
        ("strategy", format!("{} (blake3 {})", r.strategy, r.strategy_hash)),
        ("parameters", r.params.to_string()),
        ("platform", r.platform.clone()),
        ("status", r.status.as_str().to_string()),
        ("started", humantime::format_rfc3339_seconds(started).to_string()),
        ("duration", r.duration_ms.map(|d| format!("{:.1} s", d as f64 / 1000.0)).unwrap_or("—".into())),
        ("machines", t.lanes.len().to_string()),
        ("phases", t.phases.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(" → ")),
    ];
    if let Some(e) = &r.error {
        facts.push(("error", e.clone()));
    }
    if let Some(f) = &t.failure {
        for m in f.marks.iter().take(20) {
            let at = format!("{:.1} s", m.at_ms as f64 / 1000.0);
            facts.push(("failed call", format!("{at} {} {}", m.machine.as_deref().unwrap_or(""), m.what)));
        }
    }
    for l in &r.leftovers {
        facts.push(("leftover", format!("{}: {}", l.id, l.todo)));
    }
    let rows: String =
        facts.iter().map(|(k, v)| format!("<tr><th>{}</th><td>{}</td></tr>\n", esc(k), esc(v))).collect();
    let title = esc(&format!("{} release #{} (v{})", r.app, r.id, r.target.version));
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\n<style>\
         body{{font-family:sans-serif;margin:1.5em}}table{{border-collapse:collapse;margin-bottom:1em}}\
         th{{text-align:left;padding:2px 12px 2px 0;color:#555;vertical-align:top}}td{{padding:2px 0}}\
         svg{{max-width:100%;height:auto}}</style></head>\n<body><h1>{title}</h1>\n<table>\n{rows}</table>\n{svg}\n\
         </body></html>\n"
    )
}
