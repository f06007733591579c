//! The picture: plotters charts stacked under a header, all sharing one time axis (seconds since the
//! deploy began). Lanes (or stacked counts past `Options::max_lanes`), the phases, the traffic split,
//! and the traffic readings when the deploy took any.

use crate::timeline::{LaneState, Timeline};
use crate::{Options, ReportError};
use cutover_journal::ReleaseRecord;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::collections::BTreeMap;

/// Pixels per machine lane.
const LANE_PX: u32 = 16;
/// Height of the stacked-count chart that replaces lanes past the bound.
const AGGREGATE_PX: u32 = 340;
/// Height of the header (title, facts, legend) with a one-line status.
const HEADER_PX: u32 = 92;
/// Characters per line of the status (a failure's reason wraps onto more lines).
const STATUS_CHARS: usize = 170;
/// Lines of status at most; the rest is on the HTML page (`cutover report --out FILE.html`).
const STATUS_LINES: usize = 3;
/// Height of the phase strip.
const PHASES_PX: u32 = 56;
/// Height of the traffic-split chart and of each traffic-reading chart.
const CHART_PX: u32 = 170;
/// Most points a stacked area keeps: a 10,000-machine deploy changes its counts thousands of times,
/// more than a picture 1,200 pixels wide can show.
const MAX_COUNT_POINTS: usize = 1_500;

/// The axes' numbers and names, in pixels: plotters sizes them by the chart's height unless told, which
/// made the short phase strip's name and the lane chart's axis all but unreadable.
const LABEL_FONT: (&str, u32) = ("sans-serif", 12);
/// See [`LABEL_FONT`].
const DESC_FONT: (&str, u32) = ("sans-serif", 14);
/// Phase names, in pixels, and the width of one character of them (sans-serif runs narrower than this
/// on average, so a name said to fit does).
const PHASE_FONT: u32 = 13;
/// See [`PHASE_FONT`].
const PHASE_CHAR_PX: f64 = 7.2;
/// Rows a phase's name may take in the strip, top down, in the strip's own units (0 bottom, 1 top).
const PHASE_ROWS: [f64; 3] = [0.95, 0.65, 0.35];
/// Left and right margins and the label area of every chart, in pixels: what is left of the width is
/// the time axis.
const CHART_SIDES_PX: u32 = 12 + 24 + 150;

/// Most readings of a release drawn with a dot each (a minute's worth at one a second).
const MAX_DOTS: usize = 60;

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

/// One quantity read off a traffic reading (its rate, error rate, p99).
type Reading = fn(&crate::timeline::StatPoint) -> f64;

/// Colours of releases: the target green, the previous blue, any other from the rest in turn.
fn release_colour(v: u64, record: &ReleaseRecord) -> RGBColor {
    const OTHERS: [RGBColor; 4] =
        [RGBColor(255, 127, 14), RGBColor(148, 103, 189), RGBColor(140, 86, 75), RGBColor(227, 119, 194)];
    if v == record.target.version {
        RGBColor(44, 160, 44)
    } else if record.previous.as_ref().is_some_and(|p| p.version == v) {
        RGBColor(31, 119, 180)
    } else {
        OTHERS[(v % OTHERS.len() as u64) as usize]
    }
}

/// `c` mixed with white: `keep` of the colour, the rest white.
fn tint(c: RGBColor, keep: f64) -> RGBColor {
    let mix = |x: u8| (x as f64 * keep + 255.0 * (1.0 - keep)).round() as u8;
    RGBColor(mix(c.0), mix(c.1), mix(c.2))
}

/// How a machine in `state` on a release coloured `c` is filled, and whether it gets an outline.
fn state_fill(c: RGBColor, state: LaneState) -> (RGBColor, bool) {
    match state {
        LaneState::Serving => (c, false),
        LaneState::Cordoned => (tint(c, 0.35), true),
        LaneState::Starting => (tint(c, 0.6), false),
        LaneState::Stopped => (RGBColor(170, 170, 170), false),
        LaneState::Destroyed => (WHITE, false),
    }
}

const RED: RGBColor = RGBColor(214, 39, 40);

fn secs(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

/// Draw `t` as an SVG document.
pub(crate) fn svg(record: &ReleaseRecord, t: &Timeline, opts: &Options) -> Result<String, ReportError> {
    let aggregate = t.lanes.len() > opts.max_lanes;
    let body_px = if aggregate { AGGREGATE_PX } else { LANE_PX * t.lanes.len().max(1) as u32 + 50 };
    let stats = !t.stats.is_empty();
    let status = status_lines(record, t);
    let header_px = HEADER_PX + 16 * (status.len() as u32 - 1);
    let height = header_px + PHASES_PX + body_px + CHART_PX + if stats { 3 * CHART_PX } else { 0 };
    let width = opts.width.max(400);
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (width, height)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut breaks = vec![header_px, header_px + PHASES_PX, header_px + PHASES_PX + body_px];
        let mut y = header_px + PHASES_PX + body_px + CHART_PX;
        if stats {
            for _ in 0..3 {
                breaks.push(y);
                y += CHART_PX;
            }
        }
        let areas = root.split_by_breakpoints::<u32, u32, _, _>([], breaks);
        let end_s = secs(t.end_ms).max(0.001);
        header(&areas[0], record, t, &status, aggregate)?;
        phases(&areas[1], t, end_s)?;
        if aggregate {
            counts(&areas[2], record, t, end_s)?;
        } else {
            lanes(&areas[2], record, t, end_s)?;
        }
        weights(&areas[3], record, t, end_s)?;
        if stats {
            let series: [(&str, Reading); 3] = [
                ("requests per second", |p| p.rate),
                ("errors (% of requests)", |p| p.error_rate * 100.0),
                ("p99 latency (ms)", |p| p.p99_ms),
            ];
            for (i, (name, f)) in series.into_iter().enumerate() {
                stat_chart(&areas[4 + i], record, t, end_s, name, f)?;
            }
        }
        root.present()?;
    }
    Ok(out)
}

/// How the release ended, in lines of at most [`STATUS_CHARS`] (a long reason wraps, then is cut).
fn status_lines(r: &ReleaseRecord, t: &Timeline) -> Vec<String> {
    let status = match (&t.failure, r.duration_ms) {
        (Some(f), _) => format!("{} after {:.1} s: {}", r.status.as_str(), secs(f.at_ms), f.why),
        (None, Some(d)) => format!("{} in {:.1} s", r.status.as_str(), d as f64 / 1000.0),
        (None, None) => r.status.as_str().to_string(),
    };
    let chars: Vec<char> = status.chars().collect();
    let mut lines: Vec<String> = chars.chunks(STATUS_CHARS).map(|c| c.iter().collect()).collect();
    if lines.len() > STATUS_LINES {
        lines.truncate(STATUS_LINES);
        lines[STATUS_LINES - 1].push('…');
    }
    lines
}

fn header(
    area: &Area,
    r: &ReleaseRecord,
    t: &Timeline,
    status: &[String],
    aggregate: bool,
) -> Result<(), ReportError> {
    let title = format!(
        "{} · release #{} · v{}{} · {} · {} on {}",
        r.app,
        r.id,
        r.target.version,
        r.previous.as_ref().map(|p| format!(" (from v{})", p.version)).unwrap_or_default(),
        r.kind.as_str(),
        r.strategy,
        r.platform,
    );
    area.draw(&Text::new(title, (12, 8), ("sans-serif", 20).into_font()))?;
    let colour = if t.failure.is_some() { RED } else { BLACK };
    for (i, line) in status.iter().enumerate() {
        let y = 34 + 16 * i as i32;
        area.draw(&Text::new(line.clone(), (12, y), ("sans-serif", 14).into_font().color(&colour)))?;
    }
    // Legend: one swatch per release, then one per state (in a neutral grey release colour).
    let mut x = 12;
    let y = 62 + 16 * (status.len() as i32 - 1);
    let font = ("sans-serif", 12).into_font();
    for &v in &t.versions {
        let c = release_colour(v, r);
        area.draw(&Rectangle::new([(x, y), (x + 14, y + 12)], c.filled()))?;
        let role = if v == r.target.version {
            " target"
        } else if r.previous.as_ref().is_some_and(|p| p.version == v) {
            " previous"
        } else {
            ""
        };
        let label = format!("v{v}{role}");
        area.draw(&Text::new(label.clone(), (x + 18, y), font.clone()))?;
        x += 30 + 7 * label.len() as i32;
    }
    x += 20;
    let grey = RGBColor(90, 90, 90);
    for s in LaneState::ALL {
        let (fill, outline) = state_fill(grey, s);
        area.draw(&Rectangle::new([(x, y), (x + 14, y + 12)], fill.filled()))?;
        if outline || s == LaneState::Destroyed {
            area.draw(&Rectangle::new([(x, y), (x + 14, y + 12)], grey.stroke_width(1)))?;
        }
        area.draw(&Text::new(s.as_str(), (x + 18, y), font.clone()))?;
        x += 30 + 7 * s.as_str().len() as i32;
    }
    if aggregate {
        let note = format!("{} machines: counts per release and state", t.lanes.len());
        area.draw(&Text::new(note, (x + 20, y), font.clone()))?;
    }
    Ok(())
}

fn phases(area: &Area, t: &Timeline, end_s: f64) -> Result<(), ReportError> {
    let mut chart = ChartBuilder::on(area)
        .margin_left(12)
        .margin_right(24)
        .y_label_area_size(150)
        .build_cartesian_2d(0f64..end_s, 0f64..1f64)?;
    chart
        .configure_mesh()
        .label_style(LABEL_FONT)
        .axis_desc_style(DESC_FONT)
        .disable_mesh()
        .disable_x_axis()
        .y_labels(0)
        .y_desc("phases")
        .draw()?;
    let shades = [RGBColor(235, 235, 245), RGBColor(215, 215, 230)];
    for (i, p) in t.phases.iter().enumerate() {
        let (a, b) = (secs(p.from_ms), secs(p.to_ms.max(p.from_ms)));
        chart.draw_series([Rectangle::new([(a, 0.05), (b, 0.95)], shades[i % 2].filled())])?;
    }
    let px_per_s = area.dim_in_pixel().0.saturating_sub(CHART_SIDES_PX) as f64 / end_s;
    let starts: Vec<f64> = t.phases.iter().map(|p| secs(p.from_ms) * px_per_s).collect();
    let widths: Vec<f64> = t.phases.iter().map(|p| p.name.chars().count() as f64 * PHASE_CHAR_PX).collect();
    let font = ("sans-serif", PHASE_FONT).into_font();
    for (i, place) in label_rows(&starts, &widths, end_s * px_per_s).into_iter().enumerate() {
        if let Some((row, x)) = place {
            let at = (x / px_per_s, PHASE_ROWS[row]);
            chart.draw_series([Text::new(t.phases[i].name.clone(), at, font.clone())])?;
        }
    }
    if let Some(f) = &t.failure {
        chart.draw_series([PathElement::new(
            vec![(secs(f.at_ms), 0.0), (secs(f.at_ms), 1.0)],
            RED.stroke_width(2),
        )])?;
    }
    Ok(())
}

/// Where each phase's name goes, given where each phase starts and how wide its name is (pixels along
/// the time axis, which is `axis_px` long): the row of [`PHASE_ROWS`] and the pixel it starts at. A
/// name starts with its phase, or, near the end of the axis, ends with the axis; it takes the first
/// row where it clears the name before it by a gap, so short phases stagger down the rows instead of
/// writing over each other. `None` (not drawn) when no row has room: its band is still shown, and the
/// HTML page lists every phase by name.
pub(crate) fn label_rows(starts: &[f64], widths: &[f64], axis_px: f64) -> Vec<Option<(usize, f64)>> {
    const GAP_PX: f64 = 6.0;
    let mut ends = [f64::NEG_INFINITY; PHASE_ROWS.len()];
    starts
        .iter()
        .zip(widths)
        .map(|(&x, &w)| {
            let x = x.min(axis_px - w).max(0.0);
            let row = (0..ends.len()).find(|&r| ends[r] + GAP_PX <= x)?;
            ends[row] = x + w;
            Some((row, x))
        })
        .collect()
}

fn lanes(area: &Area, r: &ReleaseRecord, t: &Timeline, end_s: f64) -> Result<(), ReportError> {
    let n = t.lanes.len().max(1) as i32;
    let ids: Vec<&str> = t.lanes.iter().map(|l| l.id.as_str()).collect();
    let row = |i: usize| n - 1 - i as i32;
    let mut chart = ChartBuilder::on(area)
        .margin_left(12)
        .margin_right(24)
        .x_label_area_size(36)
        .y_label_area_size(150)
        .build_cartesian_2d(0f64..end_s, (0..n - 1).into_segmented())?;
    chart
        .configure_mesh()
        .label_style(LABEL_FONT)
        .axis_desc_style(DESC_FONT)
        .disable_y_mesh()
        .y_labels(n as usize)
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => {
                ids.get((n - 1 - *i) as usize).map(|s| s.to_string()).unwrap_or_default()
            }
            SegmentValue::Last => String::new(),
        })
        .x_desc("seconds since the deploy began")
        .draw()?;
    for p in t.phases.iter().skip(1) {
        let x = secs(p.from_ms);
        chart.draw_series([PathElement::new(
            vec![(x, SegmentValue::Exact(0)), (x, SegmentValue::Last)],
            RGBColor(160, 160, 190).stroke_width(1),
        )])?;
    }
    for (i, lane) in t.lanes.iter().enumerate() {
        let y = row(i);
        for s in &lane.segments {
            if s.state == LaneState::Destroyed || s.to_ms <= s.from_ms && s.to_ms != t.end_ms {
                continue;
            }
            let (fill, outline) = state_fill(release_colour(s.version, r), s.state);
            let x1 = secs(s.to_ms.max(s.from_ms + 1).min(t.end_ms.max(s.from_ms + 1)));
            let corners = [(secs(s.from_ms), SegmentValue::Exact(y)), (x1, SegmentValue::Exact(y + 1))];
            chart.draw_series([Rectangle::new(corners.clone(), fill.filled())])?;
            if outline {
                let c = release_colour(s.version, r);
                chart.draw_series([Rectangle::new(corners, c.stroke_width(1))])?;
            }
        }
    }
    if let Some(f) = &t.failure {
        let index: std::collections::HashMap<&str, usize> =
            ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
        for m in &f.marks {
            if let Some(&i) = m.machine.as_deref().and_then(|id| index.get(id)) {
                chart.draw_series([Cross::new(
                    (secs(m.at_ms), SegmentValue::CenterOf(row(i))),
                    6,
                    RED.stroke_width(3),
                )])?;
            }
        }
        let x = secs(f.at_ms);
        chart.draw_series([PathElement::new(
            vec![(x, SegmentValue::Exact(0)), (x, SegmentValue::Last)],
            RED.stroke_width(2),
        )])?;
    }
    Ok(())
}

fn counts(area: &Area, r: &ReleaseRecord, t: &Timeline, end_s: f64) -> Result<(), ReportError> {
    // Thin the points to at most MAX_COUNT_POINTS, keeping the last of each slice of time.
    let step = (t.end_ms / MAX_COUNT_POINTS as u64).max(1);
    let mut points: Vec<&crate::timeline::CountPoint> = Vec::new();
    for p in &t.counts {
        match points.last() {
            Some(last) if last.at_ms / step == p.at_ms / step => *points.last_mut().expect("non-empty") = p,
            _ => points.push(p),
        }
    }
    let max = points.iter().map(|p| p.counts.values().sum::<usize>()).max().unwrap_or(1).max(1);
    let mut chart = ChartBuilder::on(area)
        .margin_left(12)
        .margin_right(24)
        .x_label_area_size(36)
        .y_label_area_size(150)
        .build_cartesian_2d(0f64..end_s, 0f64..max as f64 * 1.05)?;
    chart
        .configure_mesh()
        .label_style(LABEL_FONT)
        .axis_desc_style(DESC_FONT)
        .y_desc("machines")
        .x_desc("seconds since the deploy began")
        .draw()?;
    let mut keys: Vec<(u64, LaneState)> = points.iter().flat_map(|p| p.counts.keys().copied()).collect();
    keys.sort_by_key(|(v, s)| (*s, *v));
    keys.dedup();
    let mut below: Vec<f64> = vec![0.0; points.len()];
    for key in keys {
        let mut top = Vec::with_capacity(points.len() * 2);
        let mut bottom = Vec::with_capacity(points.len() * 2);
        for (i, p) in points.iter().enumerate() {
            let next = points.get(i + 1).map(|q| q.at_ms).unwrap_or(t.end_ms);
            let n = p.counts.get(&key).copied().unwrap_or(0) as f64;
            let (x0, x1) = (secs(p.at_ms), secs(next));
            top.push((x0, below[i] + n));
            top.push((x1, below[i] + n));
            bottom.push((x0, below[i]));
            bottom.push((x1, below[i]));
            below[i] += n;
        }
        let (fill, _) = state_fill(release_colour(key.0, r), key.1);
        bottom.reverse();
        top.extend(bottom);
        chart.draw_series([Polygon::new(top, fill.filled())])?;
    }
    if let Some(f) = &t.failure {
        let x = secs(f.at_ms);
        chart.draw_series([PathElement::new(vec![(x, 0.0), (x, max as f64 * 1.05)], RED.stroke_width(2))])?;
    }
    Ok(())
}

fn weights(area: &Area, r: &ReleaseRecord, t: &Timeline, end_s: f64) -> Result<(), ReportError> {
    let mut chart = ChartBuilder::on(area)
        .margin_left(12)
        .margin_right(24)
        .x_label_area_size(30)
        .y_label_area_size(150)
        .build_cartesian_2d(0f64..end_s, 0f64..105f64)?;
    chart
        .configure_mesh()
        .label_style(LABEL_FONT)
        .axis_desc_style(DESC_FONT)
        .y_desc("traffic split (%)")
        .y_labels(5)
        .draw()?;
    let mut by: BTreeMap<u64, Vec<(f64, f64)>> = BTreeMap::new();
    for &v in &t.versions {
        by.insert(v, Vec::new());
    }
    for (i, w) in t.weights.iter().enumerate() {
        let next = t.weights.get(i + 1).map(|n| n.at_ms).unwrap_or(t.end_ms);
        for (v, line) in by.iter_mut() {
            let p = w.percent.iter().find(|(x, _)| x == v).map(|(_, p)| *p).unwrap_or(0.0);
            line.push((secs(w.at_ms), p));
            line.push((secs(next), p));
        }
    }
    for (v, line) in by {
        let c = release_colour(v, r);
        chart
            .draw_series(LineSeries::new(line, c.stroke_width(2)))?
            .label(format!("v{v}"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], c.stroke_width(2)));
    }
    chart.configure_series_labels().border_style(BLACK).background_style(WHITE.mix(0.8)).draw()?;
    Ok(())
}

fn stat_chart(
    area: &Area,
    r: &ReleaseRecord,
    t: &Timeline,
    end_s: f64,
    name: &str,
    f: Reading,
) -> Result<(), ReportError> {
    let max = t.stats.iter().map(f).fold(0.0, f64::max);
    let top = if max > 0.0 { max * 1.15 } else { 1.0 };
    let mut chart = ChartBuilder::on(area)
        .margin_left(12)
        .margin_right(24)
        .x_label_area_size(30)
        .y_label_area_size(150)
        .build_cartesian_2d(0f64..end_s, 0f64..top)?;
    chart
        .configure_mesh()
        .label_style(LABEL_FONT)
        .axis_desc_style(DESC_FONT)
        .y_desc(name)
        .y_labels(5)
        .draw()?;
    for &v in &t.versions {
        let points: Vec<(f64, f64)> =
            t.stats.iter().filter(|p| p.version == v).map(|p| (secs(p.at_ms), f(p))).collect();
        if points.is_empty() {
            continue;
        }
        let c = release_colour(v, r);
        // Dots mark the readings while they are few enough to tell apart; past that they only blur
        // the line.
        if points.len() <= MAX_DOTS {
            chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, c.filled())))?;
        }
        chart.draw_series(LineSeries::new(points, c.stroke_width(2)))?;
    }
    if let Some(fl) = &t.failure {
        let x = secs(fl.at_ms);
        chart.draw_series([PathElement::new(vec![(x, 0.0), (x, top)], RED.stroke_width(2))])?;
    }
    Ok(())
}
