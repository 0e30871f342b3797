//! Report figures drawn once as SVG with `plotters` and rasterised to PNG with `resvg`, so the
//! PNG is exactly the SVG's picture. A [`Chart`] is one set of axes (series with optional
//! error bars, horizontal / vertical reference lines, a legend and caption lines under the
//! axes); [`line_chart`] draws one, [`panel_grid`] several side by side, and
//! [`scatter_with_fit`], [`density_chart`] and [`density_pair`] draw correlation and
//! spectral-density figures. Every drawing function takes a path *stem* and writes `stem.svg`
//! and `stem.png`, each atomically (temporary file in the same directory, then rename). Text is
//! set in a subset of DejaVu Sans embedded in the crate (`assets/`), which resvg uses instead
//! of any system font, so figures render the same everywhere; the SVG names that font first
//! and `sans-serif` as the fallback. Points with a NaN or infinite coordinate (or a
//! non-positive one on a log axis) are skipped, breaking the line there; a chart with no
//! drawable point still draws its (empty) axes.
//!
//! ```no_run
//! use slt_plot::{line_chart, Chart, Series};
//! let chart = Chart::new("LLC vs width", "hidden width", "λ̂")
//!     .log_x()
//!     .series(Series::line_points("SGD", vec![(16.0, 10.0, Some(0.5)), (64.0, 20.0, Some(0.8))]))
//!     .series(Series::line_points("NGD", vec![(16.0, 12.0, Some(0.4)), (64.0, 26.0, Some(1.1))]))
//!     .annotation("Welch t-test, width 64: t = 4.2, p = 0.003");
//! line_chart(std::path::Path::new("results/fig1"), &chart)?;
//! # Ok::<(), anyhow::Error>(())
//! ```
//!
//! `examples/line_chart.rs` is a runnable version writing to a temporary directory.

#![warn(missing_docs)]

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use plotters::prelude::{IntoDrawingArea, SVGBackend};

mod axis;
mod draw;
mod render;
#[cfg(test)]
mod tests;

/// An RGB colour (plotters' type), as in [`PALETTE`].
pub use plotters::style::RGBColor;

/// Width × height in pixels of a figure holding one chart.
pub const SINGLE_SIZE: (u32, u32) = (960, 640);
/// Width × height in pixels of one panel of a [`panel_grid`].
pub const PANEL_SIZE: (u32, u32) = (640, 480);

/// The matplotlib "tab10" colours: series `i` gets `PALETTE[i % 10]` unless it names one.
pub const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SeriesStyle {
    /// A solid line through the points.
    Line,
    /// A dashed line through the points.
    Dashed,
    /// Markers only.
    Points,
    /// A solid line with a marker at each point.
    #[default]
    LinePoints,
}

/// One series: `(x, y, optional ± y error)` points, drawn in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series {
    /// Legend entry; an empty label leaves the series out of the legend.
    pub label: String,
    /// `(x, y, ± y error)`; points that cannot be drawn (NaN, ±∞, ≤ 0 on a log axis) break
    /// the line.
    pub points: Vec<(f64, f64, Option<f64>)>,
    /// Line, dashes, markers or line and markers.
    pub style: SeriesStyle,
    /// Index into [`PALETTE`]; `None`: the series' position in the chart.
    pub color: Option<usize>,
}

impl Series {
    /// A series drawn in `style`, points given with optional error bars.
    pub fn new(label: impl Into<String>, style: SeriesStyle, points: Vec<(f64, f64, Option<f64>)>) -> Self {
        Self { label: label.into(), points, style, color: None }
    }
    /// A solid line, points given with optional error bars.
    pub fn line(label: impl Into<String>, points: Vec<(f64, f64, Option<f64>)>) -> Self {
        Self::new(label, SeriesStyle::Line, points)
    }
    /// A line with markers, points given with optional error bars.
    pub fn line_points(label: impl Into<String>, points: Vec<(f64, f64, Option<f64>)>) -> Self {
        Self::new(label, SeriesStyle::LinePoints, points)
    }
    /// Markers only, points given with optional error bars.
    pub fn points(label: impl Into<String>, points: Vec<(f64, f64, Option<f64>)>) -> Self {
        Self::new(label, SeriesStyle::Points, points)
    }
    /// A line from plain `(x, y)` pairs (no error bars).
    pub fn xy(label: impl Into<String>, style: SeriesStyle, xy: impl IntoIterator<Item = (f64, f64)>) -> Self {
        Self::new(label, style, xy.into_iter().map(|(x, y)| (x, y, None)).collect())
    }
    /// Draws the series in `PALETTE[palette_index % 10]`.
    pub fn with_color(mut self, palette_index: usize) -> Self {
        self.color = Some(palette_index);
        self
    }
    /// Draws the series in `style`.
    pub fn with_style(mut self, style: SeriesStyle) -> Self {
        self.style = style;
        self
    }
}

/// Where the legend goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LegendPosition {
    /// The corner holding the fewest data points.
    #[default]
    Auto,
    /// Upper left corner of the plotting area.
    UpperLeft,
    /// Upper right corner.
    UpperRight,
    /// Lower left corner.
    LowerLeft,
    /// Lower right corner.
    LowerRight,
    /// No legend.
    Hidden,
}

/// One set of axes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Chart {
    /// Caption above the axes ("" for none).
    pub title: String,
    /// Description under the x axis.
    pub x_label: String,
    /// Description beside the y axis (rotated).
    pub y_label: String,
    /// A logarithmic x axis.
    pub log_x: bool,
    /// A logarithmic y axis.
    pub log_y: bool,
    /// Drawn in order, series `i` in `PALETTE[i]` unless it names a colour.
    pub series: Vec<Series>,
    /// Horizontal reference lines `(legend label, y)`, dashed (e.g. the SGD level in Fig. 3).
    pub hlines: Vec<(String, f64)>,
    /// Vertical reference lines `(legend label, x)`, dotted (e.g. the split epoch).
    pub vlines: Vec<(String, f64)>,
    /// Lines of text printed under the axes (test statistics, p-values, run counts).
    pub annotations: Vec<String>,
    /// Fixed x range; `None`: fitted to the data (log axes: widened to whole decades).
    pub x_range: Option<(f64, f64)>,
    /// Fixed y range; `None`: fitted to the data. Lines leaving a fixed range are clipped to it.
    pub y_range: Option<(f64, f64)>,
    /// Labelled x ticks (e.g. the widths 16, 32, …, 256 on a log axis); `None`: chosen
    /// automatically (1-2-5 steps; powers of ten on log axes spanning two decades or more).
    pub x_ticks: Option<Vec<f64>>,
    /// Labelled y ticks; `None`: automatic.
    pub y_ticks: Option<Vec<f64>>,
    /// Where the legend goes (it is drawn only if some entry has a label).
    pub legend: LegendPosition,
}

/// A spectral density on a grid (e.g. `slt_hessian::SlqDensity`'s `grid` and `density`).
#[derive(Debug, Clone, Copy)]
pub struct DensityCurve<'a> {
    /// Legend entry (or panel title in [`density_pair`]).
    pub label: &'a str,
    /// Eigenvalues, increasing.
    pub grid: &'a [f64],
    /// Density at each grid point (as long as `grid`).
    pub density: &'a [f64],
}

/// On a log-y density chart, the axis spans this many decades below the peak.
pub const DENSITY_DECADES: f64 = 10.0;

impl Chart {
    /// Empty axes with a caption and axis descriptions (linear axes, ranges fitted to the data).
    pub fn new(title: impl Into<String>, x_label: impl Into<String>, y_label: impl Into<String>) -> Self {
        Self { title: title.into(), x_label: x_label.into(), y_label: y_label.into(), ..Default::default() }
    }
    /// A logarithmic x axis.
    pub fn log_x(mut self) -> Self {
        self.log_x = true;
        self
    }
    /// A logarithmic y axis.
    pub fn log_y(mut self) -> Self {
        self.log_y = true;
        self
    }
    /// Adds a series.
    pub fn series(mut self, series: Series) -> Self {
        self.series.push(series);
        self
    }
    /// Adds a dashed horizontal reference line at `y` (in the legend unless `label` is empty).
    pub fn hline(mut self, label: impl Into<String>, y: f64) -> Self {
        self.hlines.push((label.into(), y));
        self
    }
    /// Adds a dotted vertical reference line at `x` (in the legend unless `label` is empty).
    pub fn vline(mut self, label: impl Into<String>, x: f64) -> Self {
        self.vlines.push((label.into(), x));
        self
    }
    /// Adds a caption line under the axes.
    pub fn annotation(mut self, line: impl Into<String>) -> Self {
        self.annotations.push(line.into());
        self
    }
    /// Fixes the x range.
    pub fn x_range(mut self, lo: f64, hi: f64) -> Self {
        self.x_range = Some((lo, hi));
        self
    }
    /// Fixes the y range (lines leaving it are clipped to it).
    pub fn y_range(mut self, lo: f64, hi: f64) -> Self {
        self.y_range = Some((lo, hi));
        self
    }
    /// Labels these x values (those inside the range) instead of automatic ticks.
    pub fn x_ticks(mut self, ticks: Vec<f64>) -> Self {
        self.x_ticks = Some(ticks);
        self
    }
    /// Labels these y values (those inside the range) instead of automatic ticks.
    pub fn y_ticks(mut self, ticks: Vec<f64>) -> Self {
        self.y_ticks = Some(ticks);
        self
    }
    /// Places (or hides) the legend.
    pub fn legend(mut self, position: LegendPosition) -> Self {
        self.legend = position;
        self
    }

    /// A correlation chart: the points, and the least-squares line labelled with Pearson's r,
    /// its p-value and n (when they are defined; otherwise the points alone, with the reason
    /// under the axes). Non-finite pairs are dropped before fitting.
    pub fn scatter_with_fit(
        title: impl Into<String>,
        x_label: impl Into<String>,
        y_label: impl Into<String>,
        label: impl Into<String>,
        points: &[(f64, f64)],
    ) -> Self {
        let pts: Vec<(f64, f64)> = points.iter().copied().filter(|(x, y)| x.is_finite() && y.is_finite()).collect();
        let mut chart =
            Chart::new(title, x_label, y_label).series(Series::xy(label, SeriesStyle::Points, pts.iter().copied()));
        let (xs, ys): (Vec<f64>, Vec<f64>) = pts.iter().copied().unzip();
        match (slt_stats::linear_fit(&xs, &ys), slt_stats::pearson(&xs, &ys)) {
            (Some((a, b)), Ok(c)) => {
                let (lo, hi) = xs.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &v| (l.min(v), h.max(v)));
                let line = Series::xy(
                    format!("least squares: r = {:.3}, p = {}, n = {}", c.r, format_p(c.p_value), c.n),
                    SeriesStyle::Line,
                    [(lo, a + b * lo), (hi, a + b * hi)],
                )
                .with_color(3);
                chart = chart.series(line);
            }
            (_, Err(e)) => chart = chart.annotation(format!("no fit: {e}")),
            (None, Ok(_)) => chart = chart.annotation("no fit: x is constant"),
        }
        chart
    }

    /// A spectral-density chart: x = eigenvalue, y = density, one line per curve. With `log_y`
    /// the y axis spans [`DENSITY_DECADES`] decades below the highest peak and smaller values
    /// (zeros included) sit on the bottom edge.
    pub fn density(title: impl Into<String>, curves: &[DensityCurve<'_>], log_y: bool) -> Self {
        let mut chart = Chart::new(title, "eigenvalue", "density");
        chart.log_y = log_y;
        chart.legend = if curves.iter().any(|c| !c.label.is_empty()) {
            LegendPosition::UpperRight
        } else {
            LegendPosition::Hidden
        };
        for c in curves {
            chart.series.push(Series::xy(
                c.label,
                SeriesStyle::Line,
                c.grid.iter().copied().zip(c.density.iter().copied()),
            ));
        }
        if log_y {
            if let Some(range) = density_log_range(curves) {
                chart.y_range = Some(range);
            }
        }
        chart
    }
}

fn density_log_range(curves: &[DensityCurve<'_>]) -> Option<(f64, f64)> {
    let peak = curves.iter().flat_map(|c| c.density.iter().copied()).filter(|v| v.is_finite()).fold(0.0f64, f64::max);
    (peak > 0.0).then(|| {
        let hi = 10f64.powf(peak.log10().ceil());
        let lo = 10f64.powf((peak.log10() - DENSITY_DECADES).floor());
        (lo, if hi <= peak { hi * 10.0 } else { hi })
    })
}

/// A p-value for a legend or caption: 3 significant digits, scientific below 1e-3.
pub fn format_p(p: f64) -> String {
    if p == 0.0 {
        "0".into()
    } else if p < 1e-3 {
        format!("{p:.2e}")
    } else {
        format!("{p:.3}")
    }
}

/// The two files a figure was written to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FigureFiles {
    /// `stem.png`: the SVG rasterised by resvg.
    pub png: PathBuf,
    /// `stem.svg`: the figure as drawn.
    pub svg: PathBuf,
}

fn with_suffix(stem: &Path, ext: &str) -> PathBuf {
    let mut s: OsString = stem.as_os_str().to_owned();
    s.push(".");
    s.push(ext);
    PathBuf::from(s)
}

/// Draws one chart to `stem.png` and `stem.svg` ([`SINGLE_SIZE`] pixels).
pub fn line_chart(stem: &Path, chart: &Chart) -> anyhow::Result<FigureFiles> {
    write_figure(stem, "", 1, 1, std::slice::from_ref(chart), SINGLE_SIZE)
}

/// Draws `charts` row by row in a `rows` × `cols` grid ([`PANEL_SIZE`] pixels each) under an
/// optional figure `title` ("" for none). Fewer charts than cells leave the last cells blank;
/// more is an error.
pub fn panel_grid(stem: &Path, title: &str, rows: usize, cols: usize, charts: &[Chart]) -> anyhow::Result<FigureFiles> {
    write_figure(stem, title, rows, cols, charts, PANEL_SIZE)
}

/// A correlation figure ([`Chart::scatter_with_fit`]): the points, the least-squares line and
/// Pearson's r in the legend.
pub fn scatter_with_fit(
    stem: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    label: &str,
    points: &[(f64, f64)],
) -> anyhow::Result<FigureFiles> {
    line_chart(stem, &Chart::scatter_with_fit(title, x_label, y_label, label, points))
}

/// A spectral density (x = eigenvalue, y = density; `log_y` as in [`Chart::density`]).
pub fn density_chart(stem: &Path, title: &str, curve: DensityCurve<'_>, log_y: bool) -> anyhow::Result<FigureFiles> {
    if curve.grid.len() != curve.density.len() {
        bail!("{}: density grid has {} points but density {}", stem.display(), curve.grid.len(), curve.density.len());
    }
    line_chart(stem, &Chart::density(title, &[curve], log_y))
}

/// Two spectral densities side by side (e.g. SGD and NGD solutions), with the same y axis so
/// they compare at a glance; each panel is titled by its curve's label.
pub fn density_pair(
    stem: &Path,
    title: &str,
    left: DensityCurve<'_>,
    right: DensityCurve<'_>,
    log_y: bool,
) -> anyhow::Result<FigureFiles> {
    for c in [left, right] {
        if c.grid.len() != c.density.len() {
            bail!(
                "{}: density '{}' has {} grid points but {} values",
                stem.display(),
                c.label,
                c.grid.len(),
                c.density.len()
            );
        }
    }
    let shared_y = if log_y {
        density_log_range(&[left, right])
    } else {
        let peak = [left, right]
            .iter()
            .flat_map(|c| c.density.iter().copied())
            .filter(|v| v.is_finite())
            .fold(0.0f64, f64::max);
        (peak > 0.0).then_some((0.0, peak * 1.05))
    };
    let panel = |c: DensityCurve<'_>| {
        let mut chart = Chart::density(c.label, &[DensityCurve { label: "", ..c }], log_y);
        chart.y_range = shared_y.or(chart.y_range);
        chart
    };
    panel_grid(stem, title, 1, 2, &[panel(left), panel(right)])
}

/// Draws `charts` in a `rows` × `cols` grid (optionally under a figure title) as one SVG,
/// and rasterises that SVG to the PNG.
fn write_figure(
    stem: &Path,
    title: &str,
    rows: usize,
    cols: usize,
    charts: &[Chart],
    panel: (u32, u32),
) -> anyhow::Result<FigureFiles> {
    let files = FigureFiles { png: with_suffix(stem, "png"), svg: with_suffix(stem, "svg") };
    let context = || format!("drawing figure {}", files.svg.display());
    render::ensure_font().with_context(context)?;
    if rows == 0 || cols == 0 {
        bail!("{}: a {rows} × {cols} grid holds no panels", stem.display());
    }
    if charts.len() > rows * cols {
        bail!("{}: {} charts do not fit a {rows} × {cols} grid", stem.display(), charts.len());
    }
    let title_h = if title.is_empty() { 0 } else { 44 };
    let size = (panel.0 * cols as u32, panel.1 * rows as u32 + title_h);

    let mut svg = String::new();
    {
        let root = render::Measured(SVGBackend::with_string(&mut svg, size)).into_drawing_area();
        draw::draw_grid(&root, title, title_h, rows, cols, charts).with_context(context)?;
        root.present().map_err(draw::pe).with_context(context)?;
    }
    let svg = render::tidy_svg(&svg);
    let png = render::rasterise(&svg)
        .and_then(|pixmap| pixmap.encode_png().context("encoding the PNG"))
        .with_context(|| format!("rasterising figure {}", files.svg.display()))?;
    render::write_atomic(&files.svg, svg.as_bytes())?;
    render::write_atomic(&files.png, &png)?;
    Ok(files)
}
