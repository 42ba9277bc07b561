//! The allocation bar: one SVG per allocation, its segments in range (hash) order, coloured by
//! bucket value with the same colours on every page (Okabe-Ito, colour-blind safe; hatched for
//! inactive buckets and for values past the palette), a white gap between segments, an outline
//! (light segments are below 3:1 on white), the bucket name and share inside a segment wide
//! enough for it, and every bucket in the accessible label. Drawn on the server.

use std::fmt::Write;

/// The palette, by bucket value 0..=6.
const PALETTE: [&str; 7] = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442"];
const INACTIVE: &str = "#BBBBBB";
const OUTLINE: &str = "#59636E";

/// One range of a bar.
#[derive(Debug, Clone)]
pub struct Segment {
    /// The bucket's value.
    pub value: i32,
    /// The bucket's name (or its value as text when it has none).
    pub name: String,
    /// The share of the allocation, in [0, 1].
    pub share: f64,
}

/// The colour of a bucket value, and whether it is hatched.
pub fn colour(value: i32) -> (&'static str, bool) {
    if value < 0 {
        return (INACTIVE, true);
    }
    let index = usize::try_from(value).unwrap_or(0);
    (PALETTE[index % PALETTE.len()], index >= PALETTE.len())
}

/// Text that reads on a colour: white on the dark blue, the text colour elsewhere.
fn text_colour(fill: &str) -> &'static str {
    if fill == PALETTE[0] || fill == PALETTE[5] || fill == PALETTE[2] { "#FFFFFF" } else { "#1F2328" }
}

/// XML-escapes text for an attribute or element.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// A swatch for a legend (an inline SVG square in the bucket's colour).
pub fn swatch(value: i32) -> String {
    let (fill, hatched) = colour(value);
    let pattern = if hatched { hatch_defs("sw", value, fill) } else { String::new() };
    let paint = if hatched { format!("url(#sw-h{value})") } else { fill.to_string() };
    format!(
        "<svg class=\"swatch-svg\" width=\"10\" height=\"10\" viewBox=\"0 0 10 10\" aria-hidden=\"true\" focusable=\"false\">{pattern}<rect x=\"0.5\" y=\"0.5\" width=\"9\" height=\"9\" fill=\"{paint}\" stroke=\"{OUTLINE}\"/></svg>"
    )
}

fn hatch_defs(id: &str, value: i32, fill: &str) -> String {
    format!(
        "<defs><pattern id=\"{id}-h{value}\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" patternTransform=\"rotate(45)\"><rect width=\"6\" height=\"6\" fill=\"{fill}\"/><rect width=\"2\" height=\"6\" fill=\"#FFFFFF\" opacity=\"0.7\"/></pattern></defs>"
    )
}

/// Bar options.
#[derive(Debug, Clone)]
pub struct Bar<'a> {
    /// A page-unique id for the bar's patterns.
    pub id: &'a str,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels (12 in tables, 24 on the test page).
    pub height: u32,
    /// With a prefix, the boundaries between ranges are draggable handles that move the number
    /// inputs `<prefix>0`, `<prefix>1`, ...
    pub drag: Option<&'a str>,
}

/// The bar as inline SVG.
pub fn bar(segments: &[Segment], options: &Bar<'_>) -> String {
    let Bar { id, width, height, drag } = *options;
    let id = escape(id);
    let label = segments
        .iter()
        .map(|s| format!("{} {}", s.name, super::format::percent(s.share)))
        .collect::<Vec<_>>()
        .join(", ");
    let mut svg = String::new();
    let drag_attr = drag.map(|p| format!(" data-drag=\"{}\"", escape(p))).unwrap_or_default();
    let _ = write!(
        svg,
        "<svg class=\"bar\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"{}\"{drag_attr}>",
        escape(&if label.is_empty() { "no ranges".to_string() } else { label })
    );
    let mut defs = String::new();
    for s in segments {
        let (fill, hatched) = colour(s.value);
        if hatched && !defs.contains(&format!("{id}-h{}\"", s.value)) {
            defs.push_str(&hatch_defs(&id, s.value, fill));
        }
    }
    svg.push_str(&defs);
    let inner = f64::from(width);
    let mut x = 0.0f64;
    let visible: Vec<&Segment> = segments.iter().filter(|s| s.share > 0.0).collect();
    for (i, s) in visible.iter().enumerate() {
        let w = s.share * inner;
        let (fill, hatched) = colour(s.value);
        let paint = if hatched { format!("url(#{id}-h{})", s.value) } else { fill.to_string() };
        // A one-pixel white gap between segments.
        let gap = if i + 1 < visible.len() { 1.0 } else { 0.0 };
        let rect_w = (w - gap).max(0.5);
        let title = format!("{} ({}): {}", s.name, s.value, super::format::percent(s.share));
        let _ = write!(
            svg,
            "<rect x=\"{x:.2}\" y=\"0.5\" width=\"{rect_w:.2}\" height=\"{}\" fill=\"{paint}\" stroke=\"{OUTLINE}\" stroke-width=\"1\"><title>{}</title></rect>",
            f64::from(height) - 1.0,
            escape(&title)
        );
        let text = format!("{} {}", s.name, super::format::percent(s.share));
        // About 6.5 px a character at 10 px bold: only a label that fits is drawn inside.
        if w >= 40.0 && (text.chars().count() as f64) * 6.5 + 6.0 <= w && height >= 12 {
            let _ = write!(
                svg,
                "<text class=\"seg-label\" x=\"{:.2}\" y=\"{:.1}\" fill=\"{}\" aria-hidden=\"true\">{}</text>",
                x + 3.0,
                f64::from(height) / 2.0 + 3.5,
                text_colour(fill),
                escape(&text)
            );
        }
        x += w;
    }
    if segments.iter().all(|s| s.share <= 0.0) {
        let _ = write!(
            svg,
            "<rect x=\"0.5\" y=\"0.5\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"{OUTLINE}\" stroke-dasharray=\"3 2\"/>",
            f64::from(width) - 1.0,
            f64::from(height) - 1.0
        );
    }
    if drag.is_some() {
        // Handles on every boundary between consecutive ranges (by range index, zero-length
        // ones included, so they line up with the inputs).
        let mut acc = 0.0;
        for (i, s) in segments.iter().enumerate().take(segments.len().saturating_sub(1)) {
            acc += s.share * inner;
            let _ = write!(
                svg,
                "<rect data-boundary=\"{i}\" x=\"{:.2}\" y=\"0\" width=\"8\" height=\"{height}\" class=\"handle\" fill=\"#1F2328\" fill-opacity=\"0.001\"><title>Drag to move share between range {} and range {}</title></rect>",
                acc - 4.0,
                i + 1,
                i + 2
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bar_escapes_names_and_labels_every_bucket() {
        let segments = [
            Segment { value: 0, name: "off".into(), share: 0.9 },
            Segment { value: 1, name: "<img src=x onerror=alert(1)>".into(), share: 0.1 },
        ];
        let svg = bar(&segments, &Bar { id: "t", width: 120, height: 12, drag: None });
        assert!(!svg.contains("<img"), "{svg}");
        assert!(svg.contains("&lt;img src=x onerror=alert(1)&gt; 10%"));
        assert!(svg.contains("aria-label=\"off 90%, &lt;img"));
        assert!(svg.contains("#0072B2") && svg.contains("#E69F00"));
    }

    #[test]
    fn inactive_and_high_values_are_hatched() {
        assert_eq!(colour(-1), (INACTIVE, true));
        assert_eq!(colour(7), (PALETTE[0], true));
        let svg = bar(&[Segment { value: -1, name: "inactive".into(), share: 1.0 }], &Bar { id: "x", width: 120, height: 12, drag: None });
        assert!(svg.contains("url(#x-h-1)") && svg.contains("<pattern id=\"x-h-1\""), "{svg}");
    }
}
