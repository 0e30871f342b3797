//! What a figure shows, drawn onto a plotters drawing area: the figure title, each chart's
//! axes, series, error bars, reference lines, legend and caption lines.

use anyhow::anyhow;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::axis::{format_tick, in_range, ranges, runs, usable, Axis, Ranges};
use crate::render::{font, styled_width};
use crate::{Chart, LegendPosition, SeriesStyle, PALETTE};

/// A plotters error (whose error types carry a backend parameter) as text.
pub(crate) fn pe<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("plotters: {e:?}")
}

/// The whole figure: white background, the optional title band, the charts row by row.
pub(crate) fn draw_grid<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    title_h: u32,
    rows: usize,
    cols: usize,
    charts: &[Chart],
) -> anyhow::Result<()> {
    root.fill(&WHITE).map_err(pe)?;
    let body = if title.is_empty() {
        root.clone()
    } else {
        let (top, body) = root.split_vertically(title_h);
        let w = top.dim_in_pixel().0 as i32;
        top.draw(&Text::new(
            title.to_string(),
            (w / 2, title_h as i32 / 2),
            font(26.0).pos(Pos::new(HPos::Center, VPos::Center)),
        ))
        .map_err(pe)?;
        body
    };
    let panels = body.split_evenly((rows, cols));
    for (area, chart) in panels.iter().zip(charts) {
        draw_chart(area, chart)?;
    }
    Ok(())
}

/// One chart: its axes above, its caption lines (if any) below.
fn draw_chart<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, c: &Chart) -> anyhow::Result<()> {
    let r = ranges(c)?;
    let line_h = 22u32;
    let (plot, notes) = if c.annotations.is_empty() {
        (area.clone(), None)
    } else {
        let h = area.dim_in_pixel().1;
        let notes_h = (line_h * c.annotations.len() as u32 + 8).min(h / 2);
        let (p, n) = area.split_vertically(h - notes_h);
        (p, Some(n))
    };
    let x = Axis::new(r.x, c.log_x, c.x_ticks.as_deref());
    let y = Axis::new(r.y, c.log_y, c.y_ticks.as_deref());
    draw_axes(&plot, c, &r, x, y)?;
    if let Some(notes) = notes {
        for (i, line) in c.annotations.iter().enumerate() {
            notes.draw(&Text::new(line.clone(), (70, 4 + (i as u32 * line_h) as i32), font(15.0))).map_err(pe)?;
        }
    }
    Ok(())
}

/// The emptiest corner, in the axes' own (log or linear) coordinates.
fn auto_legend(c: &Chart, r: &Ranges) -> SeriesLabelPosition {
    let norm = |v: f64, (lo, hi): (f64, f64), log: bool| {
        if log {
            (v.ln() - lo.ln()) / (hi.ln() - lo.ln())
        } else {
            (v - lo) / (hi - lo)
        }
    };
    let mut counts = [0usize; 4]; // UR, UL, LR, LL
    for s in &c.series {
        for &(x, y, _) in &s.points {
            if !(usable(x, c.log_x) && usable(y, c.log_y)) {
                continue;
            }
            let (u, v) = (norm(x, r.x, c.log_x), norm(y, r.y, c.log_y));
            let (right, left, top, bottom) = (u > 0.55, u < 0.45, v > 0.65, v < 0.35);
            counts[0] += (right && top) as usize;
            counts[1] += (left && top) as usize;
            counts[2] += (right && bottom) as usize;
            counts[3] += (left && bottom) as usize;
        }
    }
    match (0..4).min_by_key(|&i| counts[i]).unwrap_or(0) {
        0 => SeriesLabelPosition::UpperRight,
        1 => SeriesLabelPosition::UpperLeft,
        2 => SeriesLabelPosition::LowerRight,
        _ => SeriesLabelPosition::LowerLeft,
    }
}

/// The sample drawn beside a legend label.
#[derive(Debug, Clone, Copy)]
enum Mark {
    /// A short line and/or a marker, as the series is drawn.
    Series(SeriesStyle, RGBColor),
    /// Two dashes (a horizontal reference line).
    Dashes(ShapeStyle),
    /// Four dots (a vertical reference line).
    Dots(ShapeStyle),
}

fn draw_axes<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    c: &Chart,
    r: &Ranges,
    xs: Axis,
    ys: Axis,
) -> anyhow::Result<()> {
    let mut builder = ChartBuilder::on(area);
    builder.margin(12).margin_right(24).x_label_area_size(56).y_label_area_size(84);
    if !c.title.is_empty() {
        builder.caption(&c.title, font(22.0));
    }
    let mut chart = builder.build_cartesian_2d(xs, ys).map_err(pe)?;
    let fx = |v: &f64| format_tick(*v);
    let fy = fx;
    chart
        .configure_mesh()
        .x_desc(c.x_label.as_str())
        .y_desc(c.y_label.as_str())
        .axis_desc_style(font(18.0))
        .label_style(font(15.0))
        .x_labels(8)
        .y_labels(8)
        .x_label_formatter(&fx)
        .y_label_formatter(&fy)
        .bold_line_style(RGBColor(215, 215, 215))
        .light_line_style(RGBColor(240, 240, 240))
        .axis_style(BLACK.stroke_width(1))
        .draw()
        .map_err(pe)?;

    let mut legend: Vec<(&str, Mark)> = vec![];
    for (i, s) in c.series.iter().enumerate() {
        let color = PALETTE[s.color.unwrap_or(i) % PALETTE.len()];
        let line = color.stroke_width(2);
        let runs = runs(s, c, r);
        // Lines.
        let lines = matches!(s.style, SeriesStyle::Line | SeriesStyle::LinePoints | SeriesStyle::Dashed);
        if lines {
            for run in &runs {
                if s.style == SeriesStyle::Dashed {
                    chart.draw_series(DashedLineSeries::new(run.iter().copied(), 8, 5, line)).map_err(pe)?;
                } else {
                    chart.draw_series(LineSeries::new(run.iter().copied(), line)).map_err(pe)?;
                }
            }
        }
        // Markers (points outside a fixed range are not drawn).
        let markers = matches!(s.style, SeriesStyle::Points | SeriesStyle::LinePoints);
        if markers {
            let pts: Vec<(f64, f64)> =
                runs.iter().flatten().copied().filter(|p| in_range(p.1, r.y) && in_range(p.0, r.x)).collect();
            chart.draw_series(pts.iter().map(|&p| Circle::new(p, 4, color.filled()))).map_err(pe)?;
        }
        // A labelled series is in the legend if something of it was drawn (a line series with
        // no drawable run is not; a marker series always is).
        if !s.label.is_empty() && (markers || !runs.is_empty()) {
            legend.push((&s.label, Mark::Series(s.style, color)));
        }
        // Error bars: a vertical segment with 10-pixel caps, clipped to the y range (no cap
        // where the bar is cut by the range).
        let bars: Vec<(f64, f64, f64)> = s
            .points
            .iter()
            .filter_map(|&(x, y, e)| {
                let e = e?.abs();
                if !(e.is_finite() && e > 0.0 && usable(x, c.log_x) && usable(y, c.log_y) && in_range(x, r.x)) {
                    return None;
                }
                let lo = (y - e).max(r.y.0);
                let hi = (y + e).min(r.y.1);
                (lo < hi).then_some((x, lo, hi))
            })
            .collect();
        let cap =
            |x: f64, y: f64| EmptyElement::at((x, y)) + PathElement::new(vec![(-5, 0), (5, 0)], color.stroke_width(2));
        chart
            .draw_series(
                bars.iter().map(|&(x, lo, hi)| PathElement::new(vec![(x, lo), (x, hi)], color.stroke_width(2))),
            )
            .map_err(pe)?;
        chart
            .draw_series(bars.iter().flat_map(|&(x, lo, hi)| {
                [(lo == r.y.0, cap(x, lo)), (hi == r.y.1, cap(x, hi))]
                    .into_iter()
                    .filter(|(edge, _)| !edge)
                    .map(|(_, c)| c)
            }))
            .map_err(pe)?;
    }

    // Reference lines: dashed horizontal, dotted vertical, in black and two greys.
    let refs = [RGBColor(0, 0, 0), RGBColor(110, 110, 110), RGBColor(170, 170, 170)];
    for (i, (label, y)) in c.hlines.iter().enumerate() {
        if !(usable(*y, c.log_y) && in_range(*y, r.y)) {
            continue;
        }
        let style = refs[i % refs.len()].stroke_width(2);
        chart.draw_series(DashedLineSeries::new([(r.x.0, *y), (r.x.1, *y)], 10, 6, style)).map_err(pe)?;
        if !label.is_empty() {
            legend.push((label, Mark::Dashes(style)));
        }
    }
    for (i, (label, x)) in c.vlines.iter().enumerate() {
        if !(usable(*x, c.log_x) && in_range(*x, r.x)) {
            continue;
        }
        let style = refs[i % refs.len()].stroke_width(2);
        chart.draw_series(DashedLineSeries::new([(*x, r.y.0), (*x, r.y.1)], 3, 4, style)).map_err(pe)?;
        if !label.is_empty() {
            legend.push((label, Mark::Dots(style)));
        }
    }

    let position = match c.legend {
        LegendPosition::Hidden => None,
        LegendPosition::Auto => Some(auto_legend(c, r)),
        LegendPosition::UpperLeft => Some(SeriesLabelPosition::UpperLeft),
        LegendPosition::UpperRight => Some(SeriesLabelPosition::UpperRight),
        LegendPosition::LowerLeft => Some(SeriesLabelPosition::LowerLeft),
        LegendPosition::LowerRight => Some(SeriesLabelPosition::LowerRight),
    };
    if let (Some(position), false) = (position, legend.is_empty()) {
        draw_legend(&chart.plotting_area().strip_coord_spec(), position, &legend)?;
    }
    Ok(())
}

/// The legend box in a corner of the plotting area, laid out as plotters lays out its series
/// labels (10-pixel margin, a 30-pixel column for the samples, lines 1.25 em apart, 5 pixels
/// from the axes), with the labels measured in the embedded font.
fn draw_legend<DB: DrawingBackend>(
    plot: &DrawingArea<DB, Shift>,
    position: SeriesLabelPosition,
    entries: &[(&str, Mark)],
) -> anyhow::Result<()> {
    // Text 15 pixels tall (see `font`).
    const PX: f64 = 15.0;
    const MARGIN: i32 = 10;
    const SAMPLE_W: i32 = 30;
    let line_step = PX * 1.25;
    // Height of one label's box, as plotters computes it (size / 1.24); the sample sits at
    // its middle.
    let line_box = (PX / 1.24).floor() as i32;
    let mut text_w = 0i32;
    for (label, _) in entries {
        text_w = text_w.max(styled_width(label, PX)?.ceil() as i32);
    }
    let line_top = |i: usize| (i as f64 * line_step).round() as i32;
    let w = text_w + SAMPLE_W + 2 * MARGIN;
    let h = line_top(entries.len() - 1) + line_box + 2 * MARGIN;
    let (area_w, area_h) = plot.dim_in_pixel();
    let (left, top) = match position {
        SeriesLabelPosition::UpperLeft => (true, true),
        SeriesLabelPosition::LowerLeft => (true, false),
        SeriesLabelPosition::LowerRight => (false, false),
        _ => (false, true),
    };
    let x = if left { 5 } else { area_w as i32 - w - 5 };
    let y = if top { 5 } else { area_h as i32 - h - 5 };
    plot.draw(&Rectangle::new([(x, y), (x + w, y + h)], WHITE.mix(0.85).filled())).map_err(pe)?;
    // The border as a 1-pixel path (drawn crisp, see `render::tidy_svg`).
    let corners = vec![(x, y), (x + w, y), (x + w, y + h), (x, y + h), (x, y)];
    plot.draw(&PathElement::new(corners, RGBColor(160, 160, 160).stroke_width(1))).map_err(pe)?;
    for (i, (label, mark)) in entries.iter().enumerate() {
        let ty = y + MARGIN + line_top(i);
        plot.draw(&Text::new(label.to_string(), (x + SAMPLE_W + MARGIN, ty), font(PX))).map_err(pe)?;
        draw_mark(plot, (x + MARGIN, ty + line_box / 2), *mark)?;
    }
    Ok(())
}

/// A legend sample whose left end is at `(lx, ly)`, 24 pixels wide.
fn draw_mark<DB: DrawingBackend>(
    plot: &DrawingArea<DB, Shift>,
    (lx, ly): (i32, i32),
    mark: Mark,
) -> anyhow::Result<()> {
    let segments = |style: ShapeStyle, xs: &[(i32, i32)]| -> anyhow::Result<()> {
        for &(a, b) in xs {
            plot.draw(&PathElement::new(vec![(lx + a, ly), (lx + b, ly)], style)).map_err(pe)?;
        }
        Ok(())
    };
    match mark {
        Mark::Series(style, color) => {
            let stroke = color.stroke_width(2);
            match style {
                SeriesStyle::Points => {}
                SeriesStyle::Dashed => segments(stroke, &[(0, 9), (15, 24)])?,
                SeriesStyle::Line | SeriesStyle::LinePoints => segments(stroke, &[(0, 24)])?,
            }
            if matches!(style, SeriesStyle::Points | SeriesStyle::LinePoints) {
                plot.draw(&Circle::new((lx + 12, ly), 4, color.filled())).map_err(pe)?;
            }
        }
        Mark::Dashes(style) => segments(style, &[(0, 9), (15, 24)])?,
        Mark::Dots(style) => segments(style, &[(0, 3), (7, 10), (14, 17), (21, 24)])?,
    }
    Ok(())
}
