//! The report as an SVG plot: bars per scenario, the flow-scaling curve.

use std::fmt::Write as _;

use super::{Measured, Report, Row};

impl Report {
    pub fn to_svg(&self) -> String {
        svg(self)
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const W: f64 = 860.0;
const BAR_H: f64 = 22.0;
const LEFT: f64 = 230.0;
const CURVE_H: f64 = 260.0;

/// Bars: delivered Mpps of every measured throughput row (not the scaling
/// points, not failover). Below them the
/// flow-scaling curve (delivered Mpps over log10 flows).
fn svg(r: &Report) -> String {
    let bars: Vec<(&Row, &Measured)> = r
        .rows
        .iter()
        .filter(|row| !row.id.starts_with("flows_"))
        .filter_map(|row| row.measured().map(|m| (row, m)))
        .filter(|(_, m)| m.failover.is_empty())
        .collect();
    let curve: Vec<(u64, f64)> = r
        .rows
        .iter()
        .filter(|row| row.id.starts_with("flows_"))
        .filter_map(|row| row.measured().map(|m| (row.flows, m.delivered_pps / 1e6)))
        .collect();
    let max = bars
        .iter()
        .map(|(_, m)| m.delivered_pps / 1e6)
        .chain(curve.iter().map(|c| c.1))
        .fold(0.0f64, f64::max)
        .max(0.001);
    let bars_top = 50.0;
    let curve_top = bars_top + BAR_H * bars.len() as f64 + 70.0;
    let height = curve_top + CURVE_H + 60.0;
    let width = W - LEFT - 90.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{height}" viewBox="0 0 {W} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        s,
        r#"<rect x="0" y="0" width="{W}" height="{height}" fill="white"/>"#
    );
    let _ = writeln!(
        s,
        r#"<text x="10" y="24" font-size="16">vipbench {}: delivered Mpps per scenario ({} B frames, kernel {})</text>"#,
        xml_escape(&r.mode),
        r.frame_size,
        xml_escape(&r.kernel)
    );
    for (i, (row, m)) in bars.iter().enumerate() {
        let y = bars_top + BAR_H * i as f64;
        let mpps = m.delivered_pps / 1e6;
        let w = (mpps / max * width).max(1.0);
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            LEFT - 8.0,
            y + 15.0,
            xml_escape(&row.label)
        );
        let _ = writeln!(
            s,
            r##"<rect class="bar" x="{LEFT}" y="{:.1}" width="{w:.1}" height="{:.1}" fill="#4a7ebb"/>"##,
            y + 3.0,
            BAR_H - 6.0
        );
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}">{mpps:.3}</text>"#,
            LEFT + w + 6.0,
            y + 15.0
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="10" y="{:.1}" font-size="16">flow scaling, vipd NAT: delivered Mpps over flows</text>"#,
        curve_top - 20.0
    );
    let (x0, y0) = (LEFT, curve_top + CURVE_H);
    let _ = writeln!(
        s,
        r#"<line x1="{x0}" y1="{y0}" x2="{:.1}" y2="{y0}" stroke="black"/><line x1="{x0}" y1="{curve_top}" x2="{x0}" y2="{y0}" stroke="black"/>"#,
        x0 + width
    );
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{max:.2} Mpps</text><text x="{:.1}" y="{y0}" text-anchor="end">0</text>"#,
        x0 - 6.0,
        curve_top + 4.0,
        x0 - 6.0
    );
    if !curve.is_empty() {
        let lo = curve
            .iter()
            .map(|c| c.0.max(1) as f64)
            .fold(f64::MAX, f64::min)
            .log10();
        let hi = curve
            .iter()
            .map(|c| c.0.max(1) as f64)
            .fold(0.0, f64::max)
            .log10();
        let span = (hi - lo).max(1.0);
        let pts: Vec<(f64, f64, u64)> = curve
            .iter()
            .map(|&(f, mpps)| {
                let x = x0 + ((f.max(1) as f64).log10() - lo) / span * width;
                let y = y0 - mpps / max * CURVE_H;
                (x, y, f)
            })
            .collect();
        let path: Vec<String> = pts
            .iter()
            .map(|(x, y, _)| format!("{x:.1},{y:.1}"))
            .collect();
        let _ = writeln!(
            s,
            r##"<polyline class="scaling" fill="none" stroke="#c0504d" stroke-width="2" points="{}"/>"##,
            path.join(" ")
        );
        for (x, y, f) in &pts {
            let _ = writeln!(
                s,
                r##"<circle cx="{x:.1}" cy="{y:.1}" r="3" fill="#c0504d"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
                y0 + 16.0,
                flows_label(*f)
            );
        }
    }
    s.push_str("</svg>\n");
    s
}

fn flows_label(f: u64) -> String {
    match f {
        f if f >= 1_000_000 && f % 1_000_000 == 0 => format!("{}M", f / 1_000_000),
        f if f >= 1_000 && f % 1_000 == 0 => format!("{}k", f / 1_000),
        f => f.to_string(),
    }
}
