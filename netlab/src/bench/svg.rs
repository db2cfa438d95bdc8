//! The chart, as hand-written SVG: one panel per figure (a workload's
//! metric), one bar per datapath at the median, a whisker from min to max.

use std::fmt::Write;

use super::catalog::BenchDatapath;
use super::report::{BenchReport, FigureSummary, display};

const PANEL_W: f64 = 300.0;
const PANEL_H: f64 = 220.0;
const COLUMNS: usize = 3;
const LEGEND_H: f64 = 60.0;
const MARGIN: f64 = 20.0;

fn colour(d: BenchDatapath) -> &'static str {
    match d {
        BenchDatapath::Kernel => "#7f8c8d",
        BenchDatapath::Ebpf => "#e67e22",
        BenchDatapath::EbpfXdp => "#c0392b",
        BenchDatapath::Direct => "#2980b9",
    }
}

/// Escape text for XML content and attribute values.
fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The whole chart.
pub fn render(report: &BenchReport) -> String {
    let panels = &report.summaries;
    let rows = panels.len().div_ceil(COLUMNS).max(1);
    let width = MARGIN * 2.0 + PANEL_W * COLUMNS as f64;
    let height = LEGEND_H + MARGIN + PANEL_H * rows as f64;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">"##
    );
    let _ = writeln!(svg, r##"<rect width="100%" height="100%" fill="white"/>"##);
    let s = &report.settings;
    let _ = writeln!(
        svg,
        r##"<text x="{MARGIN}" y="22" font-size="15" font-weight="bold">{}</text>"##,
        esc(&format!(
            "netlab bench: {} rounds × {} s, kernel {}, CPUs {}/{}",
            s.rounds, s.duration_secs, s.kernel, s.cpus.client, s.cpus.server
        ))
    );
    // Legend.
    let mut x = MARGIN;
    for d in &s.datapaths {
        let _ = writeln!(
            svg,
            r##"<rect x="{x}" y="34" width="12" height="12" fill="{}"/><text x="{}" y="44">{d}</text>"##,
            colour(*d),
            x + 16.0
        );
        x += 80.0;
    }
    let _ = writeln!(
        svg,
        r##"<text x="{x}" y="44" fill="#555">bar = median, whisker = min–max</text>"##
    );
    for (i, panel) in panels.iter().enumerate() {
        let px = MARGIN + PANEL_W * (i % COLUMNS) as f64;
        let py = LEGEND_H + PANEL_H * (i / COLUMNS) as f64;
        render_panel(&mut svg, report, panel, px, py);
    }
    svg.push_str("</svg>\n");
    svg
}

fn render_panel(svg: &mut String, report: &BenchReport, p: &FigureSummary, px: f64, py: f64) {
    let datapaths = &report.settings.datapaths;
    let _ = writeln!(
        svg,
        r##"<g class="panel" id="{}" transform="translate({px},{py})">"##,
        esc(&p.figure)
    );
    let _ = writeln!(
        svg,
        r##"<rect x="4" y="4" width="{}" height="{}" fill="none" stroke="#ccc"/>"##,
        PANEL_W - 8.0,
        PANEL_H - 8.0
    );
    let better = if p.higher_is_better {
        "higher is better"
    } else {
        "lower is better"
    };
    let _ = writeln!(
        svg,
        r##"<text x="12" y="22" font-weight="bold">{}</text>"##,
        esc(p.workload.title())
    );
    let _ = writeln!(
        svg,
        r##"<text x="12" y="37" fill="#555">{} ({}), {better}</text>"##,
        esc(p.metric.label()),
        esc(p.metric.display_unit().0)
    );
    // Plot area.
    let (left, top, bottom) = (40.0, 50.0, PANEL_H - 30.0);
    let plot_h = bottom - top;
    let top_value = p.datapaths.values().map(|s| s.max).fold(0.0_f64, f64::max);
    let scale = if top_value > 0.0 {
        plot_h / (top_value * 1.1)
    } else {
        0.0
    };
    let _ = writeln!(
        svg,
        r##"<line x1="{left}" y1="{bottom}" x2="{}" y2="{bottom}" stroke="#333"/>"##,
        PANEL_W - 16.0
    );
    let slot = (PANEL_W - 16.0 - left) / datapaths.len().max(1) as f64;
    for (j, d) in datapaths.iter().enumerate() {
        let cx = left + slot * (j as f64 + 0.5);
        let _ = writeln!(
            svg,
            r##"<text x="{cx}" y="{}" text-anchor="middle">{d}</text>"##,
            bottom + 14.0
        );
        let Some(s) = p.datapaths.get(d) else {
            let why = report.missing_label(p.workload, *d);
            let _ = writeln!(
                svg,
                r##"<text x="{cx}" y="{}" text-anchor="middle" fill="#999">{why}</text>"##,
                bottom - 6.0
            );
            continue;
        };
        let bar_w = slot * 0.5;
        let h = s.median * scale;
        let _ = writeln!(
            svg,
            r##"<rect class="bar" x="{:.1}" y="{:.1}" width="{bar_w:.1}" height="{h:.1}" fill="{}"/>"##,
            cx - bar_w / 2.0,
            bottom - h,
            colour(*d)
        );
        let (y_min, y_max) = (bottom - s.min * scale, bottom - s.max * scale);
        let _ = writeln!(
            svg,
            r##"<path class="whisker" d="M{cx:.1} {y_min:.1} V{y_max:.1} M{:.1} {y_min:.1} h8 M{:.1} {y_max:.1} h8" stroke="black" fill="none"/>"##,
            cx - 4.0,
            cx - 4.0
        );
        let _ = writeln!(
            svg,
            r##"<text x="{cx}" y="{:.1}" text-anchor="middle">{}</text>"##,
            y_max - 4.0,
            esc(&display(p.metric, s.median))
        );
    }
    svg.push_str("</g>\n");
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::bench::catalog::Workload;
    use crate::bench::ipv6::{self, Unavailable};
    use crate::bench::plan::{BenchArgs, Plan};
    use crate::bench::report::{self, Cpus, Method, Sample, Settings};

    fn sample(round: u32, d: BenchDatapath, w: Workload, v: f64) -> Sample {
        let values = w
            .metrics()
            .iter()
            .map(|m| (m.id().to_string(), v))
            .collect();
        Sample {
            round,
            datapath: d,
            workload: w,
            values,
            details: BTreeMap::new(),
        }
    }

    fn report() -> BenchReport {
        report_of(
            &[Workload::NsTcp1, Workload::NsRr, Workload::InetConnRate],
            &Unavailable::new(),
        )
    }

    /// A report of `workloads` on every datapath, two rounds, without the
    /// samples `unavailable` rules out.
    fn report_of(workloads: &[Workload], unavailable: &Unavailable) -> BenchReport {
        let args = BenchArgs {
            workloads: workloads.to_vec(),
            ..Default::default()
        };
        let plan = Plan::from_args(&args).unwrap();
        let mut samples = Vec::new();
        for r in 1..=2 {
            for w in &plan.workloads {
                for d in plan.datapaths_for(*w) {
                    if !ipv6::blocks(unavailable, *w, d) {
                        samples.push(sample(r, d, *w, 1000.0 * r as f64));
                    }
                }
            }
        }
        let summaries = report::summarize(&plan, &samples);
        let mut skipped = crate::bench::skipped(&plan);
        skipped.extend(ipv6::skipped(&plan, unavailable));
        BenchReport {
            schema: report::SCHEMA,
            settings: Settings {
                rounds: 2,
                duration_secs: 1,
                quick: true,
                datapaths: plan.datapaths.clone(),
                workloads: plan.workloads.clone(),
                cpus: Cpus {
                    client: 0,
                    server: 1,
                },
                kernel: "6.x <test & co>".into(),
                cpu_model: "cpu".into(),
                tools: BTreeMap::new(),
                started_at: 0,
                method: Method {
                    order: String::new(),
                    warmup: String::new(),
                    tcp: String::new(),
                    udp: String::new(),
                    request_response: String::new(),
                    connection_rate: String::new(),
                    prefill: String::new(),
                    ipv6: String::new(),
                },
            },
            labs: vec![],
            skipped,
            samples,
            failures: vec![],
            summaries,
        }
    }

    /// Minimal XML well-formedness: every tag closes in order, attributes
    /// are quoted, no stray `<` or `&` in text. Returns the element names.
    fn check_well_formed(xml: &str) -> Vec<String> {
        let mut stack: Vec<String> = Vec::new();
        let mut elements = Vec::new();
        let mut rest = xml;
        while let Some(open) = rest.find('<') {
            let text = &rest[..open];
            assert!(!text.contains('>'), "stray > in text: {text}");
            for (i, _) in text.match_indices('&') {
                let ent = &text[i..];
                assert!(
                    ["&amp;", "&lt;", "&gt;", "&quot;"]
                        .iter()
                        .any(|e| ent.starts_with(e)),
                    "bare & in text: {text}"
                );
            }
            let close = rest[open..].find('>').expect("unterminated tag") + open;
            let tag = &rest[open + 1..close];
            assert!(!tag.contains('<'), "< inside a tag: {tag}");
            assert_eq!(tag.matches('"').count() % 2, 0, "unbalanced quotes: {tag}");
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(
                    stack.pop().as_deref(),
                    Some(name.trim()),
                    "mismatched </{name}>"
                );
            } else {
                let name = tag
                    .split_whitespace()
                    .next()
                    .unwrap()
                    .trim_end_matches('/')
                    .to_string();
                elements.push(name.clone());
                if !tag.ends_with('/') {
                    stack.push(name);
                }
            }
            rest = &rest[close + 1..];
        }
        assert!(rest.trim().is_empty(), "text after the root element");
        assert!(stack.is_empty(), "unclosed: {stack:?}");
        elements
    }

    #[test]
    fn well_formed_with_one_panel_per_figure() {
        let report = report();
        let svg = render(&report);
        let elements = check_well_formed(&svg);
        assert_eq!(elements[0], "svg");
        // ns_tcp_1 (1 metric) + ns_rr (3) + inet_conn_rate (1).
        assert_eq!(report.summaries.len(), 5);
        assert_eq!(svg.matches(r#"class="panel""#).count(), 5);
        for s in &report.summaries {
            assert!(
                svg.contains(&format!(r#"id="{}""#, s.figure)),
                "{}",
                s.figure
            );
        }
        // Bars: 4 datapaths for 4 ns figures, 3 for the NAT one; direct gets "n/a".
        assert_eq!(svg.matches(r#"class="bar""#).count(), 4 * 4 + 3);
        assert_eq!(svg.matches(r#"class="whisker""#).count(), 4 * 4 + 3);
        assert!(svg.contains(">n/a<"));
        // Text was escaped.
        assert!(svg.contains("&lt;test &amp; co&gt;"));
    }

    #[test]
    fn an_unavailable_ipv6_path_is_said_in_place_of_its_figures() {
        let mut unavailable = Unavailable::new();
        unavailable.insert(BenchDatapath::Ebpf, "no NAT66".into());
        let report = report_of(&[Workload::InetUdp64, Workload::Inet6Udp64], &unavailable);
        let svg = render(&report);
        check_well_formed(&svg);
        // kernel and ebpf-xdp have bars on both figures, ebpf on IPv4 only.
        assert_eq!(svg.matches(r#"class="bar""#).count(), 3 + 2);
        assert_eq!(svg.matches(">IPv6 unavailable<").count(), 1);
        assert_eq!(svg.matches(">failed<").count(), 0);
        let table = report::table(&report).to_string();
        let row = table
            .lines()
            .find(|l| l.contains("IPv6 UDP 64 B"))
            .expect("the IPv6 row");
        assert!(row.contains("IPv6 unavailable"), "{table}");
        let notes = report::notes(&report).join("\n");
        assert!(
            notes.contains("skipped for ebpf (IPv6 unavailable: no NAT66): inet6_udp_64"),
            "{notes}"
        );
    }
}
