//! The results page's pictures, drawn on the server as SVG: the interval bar of one comparison
//! around zero (one axis per metric, shared by its rows), the cumulative lift with its interval
//! band per day, and the cumulative units per bucket (which checks the split). Each picture has
//! an accessible label, and the page gives its numbers as text too: colour is never the only cue.
//!
//! Also how the page writes the statistics' numbers (rates, lifts, p-values).

use std::fmt::Write;

use chrono::{DateTime, Utc};

use super::bars::{colour, escape};
use super::format::count;

/// The zero line and the axes.
const AXIS: &str = "#59636E";
/// Grid lines.
const GRID: &str = "#D1D9E0";
/// Significantly better, in the metric's direction.
const BETTER: &str = "#0072B2";
/// Significantly worse.
const WORSE: &str = "#D55E00";
/// Not significant.
const INCONCLUSIVE: &str = "#8C959F";
/// Milliseconds in a day.
const DAY: i64 = 86_400_000;

/// Width of an interval bar and of its metric's axis, pixels.
pub const BAR_WIDTH: u32 = 160;
/// Space kept free at each end of the bar's axis.
const BAR_PAD: f64 = 10.0;

/// What a comparison says, as a colour and a word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// Significantly better (blue).
    Better,
    /// Significantly worse (vermillion).
    Worse,
    /// Not significant (grey).
    Inconclusive,
}

impl Tone {
    /// The CSS class suffix and the word shown beside the bar.
    pub fn word(self) -> &'static str {
        match self {
            Tone::Better => "better",
            Tone::Worse => "worse",
            Tone::Inconclusive => "inconclusive",
        }
    }

    fn fill(self) -> &'static str {
        match self {
            Tone::Better => BETTER,
            Tone::Worse => WORSE,
            Tone::Inconclusive => INCONCLUSIVE,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Numbers

/// A plain number: thousands separated from 1,000, else two decimals (three below 1), trailing
/// zeros kept so a column reads evenly.
pub fn number(v: f64) -> String {
    if !v.is_finite() {
        return "—".into();
    }
    let sign = if v < 0.0 { "-" } else { "" };
    let a = v.abs();
    if a >= 1000.0 {
        format!("{sign}{}", count(a.round() as usize))
    } else if a >= 100.0 {
        format!("{sign}{a:.1}")
    } else if a >= 1.0 || a == 0.0 {
        format!("{sign}{a:.2}")
    } else {
        format!("{sign}{a:.3}")
    }
}

/// A rate as a percentage with two decimals (`3.10%`).
pub fn rate(v: f64) -> String {
    format!("{:.2}%", v * 100.0)
}

/// A signed relative change (`+6.8%`, `-0.42%`, `0%`): one decimal, two below one percent.
pub fn signed_percent(v: f64) -> String {
    let p = v * 100.0;
    let text = if p.abs() < 1.0 { format!("{:.2}", p.abs()) } else { format!("{:.1}", p.abs()) };
    if all_zero(&text) {
        return "0%".into();
    }
    format!("{}{text}%", if p < 0.0 { "−" } else { "+" })
}

/// A signed absolute difference: percentage points for rates, the metric's units otherwise.
pub fn signed_difference(v: f64, points: bool) -> String {
    let text = if points { format!("{:.2} pp", (v * 100.0).abs()) } else { number(v.abs()) };
    if all_zero(&text) {
        return if points { "0 pp".into() } else { "0".into() };
    }
    format!("{}{text}", if v < 0.0 { "−" } else { "+" })
}

/// Whether a number's text rounds to zero (every digit a 0).
fn all_zero(text: &str) -> bool {
    text.chars().filter(char::is_ascii_digit).all(|c| c == '0')
}

/// A number's text without trailing decimal zeros (`+50.0%` → `+50%`, `2.50 pp` → `2.5 pp`),
/// for axis ticks.
pub fn compact(text: &str) -> String {
    let end = text.rfind(|c: char| c.is_ascii_digit()).map_or(0, |i| i + 1);
    let (number, suffix) = text.split_at(end);
    if !number.contains('.') {
        return text.to_string();
    }
    format!("{}{suffix}", number.trim_end_matches('0').trim_end_matches('.'))
}

/// A p-value: `<0.001`, else three decimals.
pub fn p_value(p: f64) -> String {
    if p < 0.001 { "<0.001".into() } else { format!("{p:.3}") }
}

/// A date as the charts label days (`Jan 5`), in UTC.
pub fn day(millis: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(millis).map_or_else(|| "-".into(), |d| d.format("%b %-d").to_string())
}

/// A share of 100 for a split (`50`, `52.6`).
pub fn share_number(share: f64) -> String {
    let p = (share * 1000.0).round() / 10.0;
    if (p - p.round()).abs() < 1e-9 { format!("{}", p.round() as i64) } else { format!("{p:.1}") }
}

/// The smallest "nice" number (1, 2 or 5 times a power of ten) at least `v`.
fn nice_ceiling(v: f64) -> f64 {
    if !(v.is_finite() && v > 0.0) {
        return 1.0;
    }
    let power = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * power).find(|n| *n >= v * (1.0 - 1e-12)).unwrap_or(10.0 * power)
}

/// The bound of a metric's interval axis: a nice number at least every interval's end.
pub fn axis_bound(ends: impl Iterator<Item = f64>) -> Option<f64> {
    let widest = ends.filter(|v| v.is_finite()).map(f64::abs).fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))))?;
    Some(nice_ceiling(widest.max(1e-9)))
}

// ---------------------------------------------------------------------------------------------
// Interval bars

fn bar_x(v: f64, bound: f64) -> f64 {
    let inner = f64::from(BAR_WIDTH) - 2.0 * BAR_PAD;
    (BAR_PAD + (v.clamp(-bound, bound) + bound) / (2.0 * bound) * inner).clamp(0.0, f64::from(BAR_WIDTH))
}

/// One comparison's interval around zero: a 6 px bar from `low` to `high`, an 8 px dot at the
/// estimate, the zero line, coloured by `tone`, on the axis `-bound..bound`.
pub fn interval_bar(low: f64, estimate: f64, high: f64, bound: f64, tone: Tone, label: &str) -> String {
    let (x0, xl, xe, xh) = (bar_x(0.0, bound), bar_x(low, bound), bar_x(estimate, bound), bar_x(high, bound));
    let fill = tone.fill();
    let mut svg = format!(
        "<svg class=\"ci ci-{}\" width=\"{BAR_WIDTH}\" height=\"16\" viewBox=\"0 0 {BAR_WIDTH} 16\" role=\"img\" aria-label=\"{}\">",
        tone.word(),
        escape(label)
    );
    let _ = write!(svg, "<line x1=\"{x0:.1}\" y1=\"0\" x2=\"{x0:.1}\" y2=\"16\" stroke=\"{AXIS}\" stroke-width=\"1\"/>");
    let _ = write!(svg, "<rect x=\"{xl:.1}\" y=\"5\" width=\"{:.1}\" height=\"6\" rx=\"1\" fill=\"{fill}\"/>", (xh - xl).max(1.0));
    // Ends cut by the axis get an arrow so a clipped interval is not read as a short one.
    if low < -bound {
        let _ = write!(svg, "<path d=\"M{xl:.1} 8 l5 -5 v10 z\" fill=\"{fill}\"/>");
    }
    if high > bound {
        let _ = write!(svg, "<path d=\"M{xh:.1} 8 l-5 -5 v10 z\" fill=\"{fill}\"/>");
    }
    let _ = write!(svg, "<circle cx=\"{xe:.1}\" cy=\"8\" r=\"4\" fill=\"{fill}\" stroke=\"#FFFFFF\" stroke-width=\"1\"/>");
    svg.push_str("</svg>");
    svg
}

/// The axis above a metric's interval bars: its ends and zero, labelled.
pub fn interval_axis(bound: f64, label: impl Fn(f64) -> String) -> String {
    let w = f64::from(BAR_WIDTH);
    let (left, zero, right) = (bar_x(-bound, bound), bar_x(0.0, bound), bar_x(bound, bound));
    let mut svg = format!(
        "<svg class=\"ci-axis\" width=\"{BAR_WIDTH}\" height=\"18\" viewBox=\"0 0 {BAR_WIDTH} 18\" role=\"img\" aria-label=\"{}\">",
        escape(&format!("Interval axis from {} to {}", label(-bound), label(bound)))
    );
    for (x, text, anchor) in [(left, compact(&label(-bound)), "start"), (zero, "0".to_string(), "middle"), (right, compact(&label(bound)), "end")] {
        let tx = match anchor {
            "start" => (x - BAR_PAD + 1.0).max(0.0),
            "end" => (x + BAR_PAD - 1.0).min(w),
            _ => x,
        };
        let _ = write!(
            svg,
            "<line x1=\"{x:.1}\" y1=\"13\" x2=\"{x:.1}\" y2=\"18\" stroke=\"{AXIS}\"/><text x=\"{tx:.1}\" y=\"10\" text-anchor=\"{anchor}\" fill=\"{AXIS}\" aria-hidden=\"true\">{}</text>",
            escape(&text)
        );
    }
    svg.push_str("</svg>");
    svg
}

// ---------------------------------------------------------------------------------------------
// Daily charts

/// One bucket's line on a daily chart: per day (its end, epoch milliseconds) the value and,
/// for the lift chart, the interval.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// The bucket value (its colour).
    pub bucket: i32,
    /// Points in day order: (day end, value, interval low, interval high).
    pub points: Vec<(i64, f64, f64, f64)>,
}

/// A vertical mark on a daily chart: a revision that changed the test's ranges.
#[derive(Debug, Clone, PartialEq)]
pub struct Boundary {
    /// When, epoch milliseconds.
    pub time: i64,
    /// Its label (`r12`).
    pub label: String,
}

const CHART_W: f64 = 720.0;
const CHART_H: f64 = 200.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 18.0;
const BOTTOM: f64 = 26.0;

/// The plotting area and its scales: time from the start of the first day to the end of the
/// last, values from `low` to `high`.
struct Frame {
    t0: i64,
    t1: i64,
    low: f64,
    high: f64,
}

impl Frame {
    /// Where a day's point goes: the middle of its day (a day's figures are as of its end).
    fn day_x(&self, day_end: i64) -> f64 {
        self.x(day_end - DAY / 2)
    }

    fn x(&self, t: i64) -> f64 {
        let span = (self.t1 - self.t0).max(1) as f64;
        LEFT + ((t - self.t0) as f64 / span).clamp(0.0, 1.0) * (CHART_W - LEFT - RIGHT)
    }

    fn y(&self, v: f64) -> f64 {
        let span = (self.high - self.low).max(1e-12);
        TOP + (1.0 - ((v - self.low) / span).clamp(0.0, 1.0)) * (CHART_H - TOP - BOTTOM)
    }
}

/// Round ticks covering `low..high` (about five), and the range they span.
fn ticks(low: f64, high: f64) -> (Vec<f64>, f64, f64) {
    let span = (high - low).max(1e-9);
    let step = nice_ceiling(span / 5.0);
    let first = (low / step).floor() * step;
    let last = (high / step).ceil() * step;
    let n = ((last - first) / step).round() as i64;
    ((0..=n).map(|i| first + i as f64 * step).collect(), first, last)
}

/// The frame of a chart over `days` (day ends) and values `low..high`, its opening SVG with
/// the grid, the value ticks, the day labels and the revision boundaries.
fn open_chart(class: &str, label: &str, days: &[i64], low: f64, high: f64, tick_label: &dyn Fn(f64) -> String, boundaries: &[Boundary])
    -> (String, Frame) {
    let (values, low, high) = ticks(low, high);
    let t0 = days.first().map_or(0, |d| d - DAY + 1);
    let t1 = days.last().copied().unwrap_or(DAY);
    let frame = Frame { t0, t1, low, high };
    let mut svg = format!(
        "<svg class=\"chart {class}\" width=\"{CHART_W}\" height=\"{CHART_H}\" viewBox=\"0 0 {CHART_W} {CHART_H}\" role=\"img\" aria-label=\"{}\">",
        escape(label)
    );
    for v in &values {
        let y = frame.y(*v);
        let stroke = if v.abs() < 1e-12 { AXIS } else { GRID };
        let _ = write!(
            svg,
            "<line x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"{stroke}\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"{AXIS}\" aria-hidden=\"true\">{}</text>",
            CHART_W - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            escape(&compact(&tick_label(*v)))
        );
    }
    // At most about eight day labels.
    let every = days.len().div_ceil(8).max(1);
    for (i, d) in days.iter().enumerate().filter(|(i, _)| i % every == 0 || *i + 1 == days.len()) {
        if i + 1 == days.len() && i % every != 0 && i % every < every / 2 {
            continue; // too close to the previous label
        }
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"{AXIS}\" aria-hidden=\"true\">{}</text>",
            frame.day_x(*d),
            CHART_H - 8.0,
            escape(&day(*d))
        );
    }
    for b in boundaries.iter().filter(|b| b.time > t0 && b.time < t1) {
        let x = frame.x(b.time);
        let _ = write!(
            svg,
            "<line class=\"boundary\" x1=\"{x:.1}\" y1=\"{TOP}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"{AXIS}\" stroke-dasharray=\"4 3\"/><text x=\"{:.1}\" y=\"12\" fill=\"{AXIS}\" aria-hidden=\"true\">{}</text>",
            CHART_H - BOTTOM,
            x + 3.0,
            escape(&b.label)
        );
    }
    (svg, frame)
}

/// The cumulative lift per day of every bucket against the control, with its interval band,
/// the zero line and the revision boundaries.
pub fn lift_chart(lines: &[Line], boundaries: &[Boundary], format: &dyn Fn(f64) -> String, label: &str) -> String {
    let mut days: Vec<i64> = lines.iter().flat_map(|l| l.points.iter().map(|p| p.0)).collect();
    days.sort_unstable();
    days.dedup();
    let ends = lines.iter().flat_map(|l| l.points.iter().flat_map(|p| [p.1, p.2, p.3])).filter(|v| v.is_finite());
    let (low, high) = ends.fold((0.0f64, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let (mut svg, frame) = open_chart("lift-chart", label, &days, low, high, format, boundaries);
    for line in lines {
        let (fill, _) = colour(line.bucket);
        let pts: Vec<(f64, f64, f64, f64)> =
            line.points.iter().map(|&(t, v, lo, hi)| (frame.day_x(t), frame.y(v), frame.y(lo), frame.y(hi))).collect();
        if pts.len() == 1 {
            let (x, y, lo, hi) = pts[0];
            let _ = write!(svg, "<rect class=\"band\" x=\"{:.1}\" y=\"{hi:.1}\" width=\"8\" height=\"{:.1}\" fill=\"{fill}\" fill-opacity=\"0.2\"/>", x - 4.0, (lo - hi).max(1.0));
            let _ = write!(svg, "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"4\" fill=\"{fill}\"/>");
            continue;
        }
        let mut band = String::new();
        for (x, _, _, hi) in &pts {
            let _ = write!(band, "{x:.1},{hi:.1} ");
        }
        for (x, _, lo, _) in pts.iter().rev() {
            let _ = write!(band, "{x:.1},{lo:.1} ");
        }
        let _ = write!(svg, "<polygon class=\"band\" points=\"{}\" fill=\"{fill}\" fill-opacity=\"0.2\"/>", band.trim_end());
        let path: Vec<String> = pts.iter().map(|(x, y, _, _)| format!("{x:.1},{y:.1}")).collect();
        let _ = write!(svg, "<polyline points=\"{}\" fill=\"none\" stroke=\"{fill}\" stroke-width=\"2\"/>", path.join(" "));
    }
    svg.push_str("</svg>");
    svg
}

/// Units exposed so far per bucket and day: the lines keep the ranges' proportions when the
/// split works.
pub fn units_chart(lines: &[Line], boundaries: &[Boundary], label: &str) -> String {
    let mut days: Vec<i64> = lines.iter().flat_map(|l| l.points.iter().map(|p| p.0)).collect();
    days.sort_unstable();
    days.dedup();
    let high = lines.iter().flat_map(|l| l.points.iter().map(|p| p.1)).fold(1.0f64, f64::max);
    let (mut svg, frame) = open_chart("units-chart", label, &days, 0.0, high, &|v| count(v.max(0.0).round() as usize), boundaries);
    for (i, line) in lines.iter().enumerate() {
        let (stroke, _) = colour(line.bucket);
        let pts: Vec<String> = line.points.iter().map(|&(t, v, _, _)| format!("{:.1},{:.1}", frame.day_x(t), frame.y(v))).collect();
        // Dashes tell the lines apart without their colours (every other bucket).
        let dash = if i % 2 == 1 { " stroke-dasharray=\"6 3\"" } else { "" };
        if pts.len() == 1 {
            let _ = write!(svg, "<circle cx=\"{}\" r=\"4\" fill=\"{stroke}\"/>", pts[0].replacen(',', "\" cy=\"", 1));
        } else {
            let _ = write!(svg, "<polyline points=\"{}\" fill=\"none\" stroke=\"{stroke}\" stroke-width=\"2\"{dash}/>", pts.join(" "));
        }
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics_read_as_people_write_them() {
        assert_eq!(rate(0.031), "3.10%");
        assert_eq!(signed_percent(0.068), "+6.8%");
        assert_eq!(signed_percent(-0.0042), "−0.42%");
        assert_eq!(signed_percent(0.0), "0%");
        assert_eq!(signed_difference(0.0021, true), "+0.21 pp");
        assert_eq!(signed_difference(-12.5, false), "−12.50");
        assert_eq!(p_value(0.0004), "<0.001");
        assert_eq!(p_value(0.0181), "0.018");
        assert_eq!(number(1234.4), "1,234");
        assert_eq!(number(0.1234), "0.123");
        assert_eq!(share_number(0.526), "52.6");
        assert_eq!(share_number(0.5), "50");
        assert_eq!(compact("+50.0%"), "+50%");
        assert_eq!(compact("−2.50 pp"), "−2.5 pp");
        assert_eq!(compact("1,000"), "1,000");
    }

    #[test]
    fn an_axis_bound_is_a_nice_number_covering_every_interval() {
        assert_eq!(axis_bound([0.012, -0.124].into_iter()), Some(0.2));
        assert_eq!(axis_bound([0.05].into_iter()), Some(0.05));
        assert_eq!(axis_bound(std::iter::empty()), None);
    }

    #[test]
    fn an_interval_bar_is_coloured_by_its_verdict_around_zero() {
        let svg = interval_bar(0.012, 0.068, 0.124, 0.2, Tone::Better, "+6.8% <b>");
        assert!(svg.contains("class=\"ci ci-better\"") && svg.contains(BETTER), "{svg}");
        assert!(svg.contains("&lt;b&gt;") && !svg.contains("<b>"));
        // Zero sits in the middle of the axis; the dot right of it.
        assert!(svg.contains("x1=\"80.0\""), "{svg}");
        let worse = interval_bar(-0.3, -0.25, -0.2, 0.2, Tone::Worse, "x");
        assert!(worse.contains(WORSE) && worse.contains("<path"), "a clipped end has an arrow: {worse}");
    }

    #[test]
    fn a_daily_chart_marks_revision_boundaries_inside_its_days() {
        let day0 = 20_000 * DAY - 1;
        let line = Line { bucket: 1, points: vec![(day0, 0.05, -0.01, 0.11), (day0 + DAY, 0.06, 0.01, 0.1)] };
        let inside = Boundary { time: day0 + DAY / 2, label: "r7".into() };
        let outside = Boundary { time: day0 + 5 * DAY, label: "r9".into() };
        let svg = lift_chart(std::slice::from_ref(&line), &[inside, outside], &|v| signed_percent(v), "lift");
        assert!(svg.contains(">r7<") && !svg.contains(">r9<"), "{svg}");
        assert!(svg.contains("<polygon class=\"band\"") && svg.contains("#E69F00"));
        let units = units_chart(&[line], &[], "units");
        assert!(units.contains("polyline"));
    }
}
