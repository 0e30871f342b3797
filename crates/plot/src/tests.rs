use super::*;
use crate::axis::{format_tick, Axis};

/// Width and height from a PNG's IHDR chunk, after checking the signature.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
    assert_eq!(&bytes[12..16], b"IHDR");
    let be = |i: usize| u32::from_be_bytes(bytes[i..i + 4].try_into().unwrap());
    (be(16), be(20))
}

/// Decodes the PNG fully (catches truncated or corrupt data).
fn decode(path: &Path) -> resvg::tiny_skia::Pixmap {
    resvg::tiny_skia::Pixmap::load_png(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Checks both files of a figure: the PNG's size and colour type (8-bit RGBA), the SVG's
/// shape and `texts`, and that the PNG is exactly the rasterisation of the SVG. Returns the
/// PNG's RGB pixels (the figures are opaque).
fn check(files: &FigureFiles, size: (u32, u32), texts: &[&str]) -> Vec<u8> {
    let bytes = std::fs::read(&files.png).unwrap();
    assert_eq!(png_size(&bytes), size);
    assert_eq!((bytes[24], bytes[25]), (8, 6), "8-bit RGBA");
    let png = decode(&files.png);
    assert_eq!((png.width(), png.height()), size);
    let svg = std::fs::read_to_string(&files.svg).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"), "{}", &svg[..80.min(svg.len())]);
    assert!(svg.contains(&format!(r#"width="{}" height="{}""#, size.0, size.1)), "{}", &svg[..120.min(svg.len())]);
    for t in texts {
        assert!(svg.contains(t), "SVG lacks {t:?}");
    }
    let raster = render::rasterise(&svg).unwrap();
    assert!(raster.data() == png.data(), "{}: the PNG is not the SVG's rasterisation", files.png.display());
    assert!(png.pixels().iter().all(|p| p.alpha() == 255), "transparent pixels");
    png.data().chunks(4).flat_map(|p| [p[0], p[1], p[2]]).collect()
}

/// Pixels neither white nor light grey (grid): text, axes, data.
fn dark_pixels(rgb: &[u8]) -> usize {
    rgb.chunks(3).filter(|p| p.iter().map(|&v| v as u32).sum::<u32>() < 300).count()
}

/// Dark pixels of an RGB image `width` pixels wide inside the rectangle `[x0, x1) × [y0, y1)`.
fn dark_in(rgb: &[u8], width: u32, (x0, x1): (u32, u32), (y0, y1): (u32, u32)) -> usize {
    (y0..y1)
        .flat_map(|y| (x0..x1).map(move |x| ((y * width + x) * 3) as usize))
        .filter(|&i| rgb[i..i + 3].iter().map(|&v| v as u32).sum::<u32>() < 300)
        .count()
}

fn demo_chart() -> Chart {
    Chart::new("LLC vs width", "hidden width", "λ̂ (LLC)")
        .log_x()
        .x_ticks(vec![16.0, 32.0, 64.0, 128.0])
        .series(Series::line_points(
            "SGD",
            vec![(16.0, 10.0, Some(0.5)), (32.0, 14.0, Some(0.9)), (64.0, 19.0, Some(0.8)), (128.0, 24.0, Some(1.3))],
        ))
        .series(Series::line_points(
            "NGD",
            vec![(16.0, 12.5, Some(0.4)), (32.0, f64::NAN, None), (64.0, 26.0, Some(1.1)), (128.0, 33.0, Some(2.0))],
        ))
        .hline("SGD at width 256", 27.0)
        .annotation("Welch t-test at width 128: t = 3.84, df = 7.1, p = 0.0061")
        .annotation("5 seeds per point; error bars: ± 1 standard error")
}

#[test]
fn line_chart_writes_png_and_svg() {
    let dir = tempfile::tempdir().unwrap();
    let files = line_chart(&dir.path().join("fig1"), &demo_chart()).unwrap();
    assert_eq!(files.png, dir.path().join("fig1.png"));
    let pixels = check(&files, SINGLE_SIZE, &["LLC vs width", "hidden width", "λ̂ (LLC)", "SGD", "NGD", "p = 0.0061"]);
    // Text and lines were really rasterised (the embedded font works): lots of dark pixels.
    assert!(dark_pixels(&pixels) > 3000, "{}", dark_pixels(&pixels));
    // No temporary files left behind.
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

#[test]
fn nan_points_log_axes_and_empty_charts_draw() {
    let dir = tempfile::tempdir().unwrap();
    // Only unusable points (NaN, and values ≤ 0 on log axes): valid, titled, empty axes.
    let bad = Chart::new("nothing to show", "x", "y").log_x().log_y().series(Series::points(
        "bad",
        vec![(f64::NAN, 1.0, None), (0.0, 1.0, None), (1.0, -2.0, Some(f64::NAN)), (1.0, f64::INFINITY, None)],
    ));
    let files = line_chart(&dir.path().join("bad"), &bad).unwrap();
    check(&files, SINGLE_SIZE, &["nothing to show"]);
    let empty = Chart::new("empty", "x", "y");
    check(&line_chart(&dir.path().join("empty"), &empty).unwrap(), SINGLE_SIZE, &["empty"]);
    // A single point on linear axes (zero-width range) and a constant series.
    let one = Chart::new("one point", "x", "y").series(Series::points("p", vec![(3.0, 3.0, Some(1.0))]));
    check(&line_chart(&dir.path().join("one"), &one).unwrap(), SINGLE_SIZE, &["one point"]);
    // An impossible fixed range is an error naming the chart.
    let err = line_chart(&dir.path().join("x"), &Chart::new("inverted", "x", "y").y_range(2.0, 1.0)).unwrap_err();
    assert!(format!("{err:#}").contains("inverted"), "{err:#}");
    let err = line_chart(&dir.path().join("x"), &Chart::new("neg", "x", "y").log_y().y_range(-1.0, 1.0)).unwrap_err();
    assert!(format!("{err:#}").contains("log axis"), "{err:#}");
}

#[test]
fn panels_scatter_and_density() {
    let dir = tempfile::tempdir().unwrap();
    let a = demo_chart();
    let b = Chart::new("λ̂ over epochs", "epoch", "λ̂")
        .series(Series::line(
            "NGD lr 1e-2",
            (0..20).map(|e| (e as f64, 10.0 + (e as f64).sqrt() * 3.0, None)).collect(),
        ))
        .series(Series::new(
            "SGD",
            SeriesStyle::Dashed,
            (0..20).map(|e| (e as f64, 10.0 + e as f64 * 0.05, None)).collect(),
        ))
        .vline("split", 5.0);
    let files = panel_grid(&dir.path().join("grid"), "Figure 4: split runs", 1, 2, &[a.clone(), b.clone()]).unwrap();
    check(
        &files,
        (2 * PANEL_SIZE.0, PANEL_SIZE.1 + 44),
        &["Figure 4: split runs", "λ̂ over epochs", "LLC vs width", "split"],
    );
    // Three charts in a 2 × 2 grid leave one cell blank; five is an error.
    panel_grid(&dir.path().join("grid3"), "", 2, 2, &[a.clone(), b.clone(), a.clone()]).unwrap();
    let err = panel_grid(&dir.path().join("grid5"), "", 2, 2, &vec![a.clone(); 5]).unwrap_err();
    assert!(err.to_string().contains("do not fit"), "{err}");

    let pts: Vec<(f64, f64)> =
        (0..12).map(|i| (i as f64, 2.0 * i as f64 + ((i * 7) % 5) as f64)).chain([(f64::NAN, 1.0)]).collect();
    let files =
        scatter_with_fit(&dir.path().join("corr"), "λ̂ vs validation loss", "validation loss", "λ̂", "epochs", &pts)
            .unwrap();
    check(&files, SINGLE_SIZE, &["λ̂ vs validation loss", "least squares: r = 0.9", "n = 12"]);
    // Too few points for a correlation: drawn, with the reason in the caption.
    let files =
        scatter_with_fit(&dir.path().join("corr2"), "two points", "x", "y", "p", &[(1.0, 1.0), (2.0, 3.0)]).unwrap();
    check(&files, SINGLE_SIZE, &["no fit", "at least 3"]);

    // A Gaussian-mixture "spectral density" with exact zeros in the tails (log-y must not
    // break on them).
    let grid: Vec<f64> = (0..400).map(|i| -2.0 + i as f64 * 0.05).collect();
    let dens = |w: f64| -> Vec<f64> {
        grid.iter()
            .map(|&x| {
                let d = 0.9 * (-x * x / 0.01).exp() * 4.0 + 0.1 * (-(x - w) * (x - w) / 0.5).exp();
                if d < 1e-200 {
                    0.0
                } else {
                    d
                }
            })
            .collect()
    };
    let (d1, d2) = (dens(8.0), dens(14.0));
    let files = density_chart(
        &dir.path().join("density"),
        "Hessian spectrum",
        DensityCurve { label: "SGD", grid: &grid, density: &d1 },
        true,
    )
    .unwrap();
    check(&files, SINGLE_SIZE, &["Hessian spectrum", "eigenvalue", "density"]);
    let files = density_pair(
        &dir.path().join("pair"),
        "Hessian spectral density",
        DensityCurve { label: "SGD", grid: &grid, density: &d1 },
        DensityCurve { label: "NGD", grid: &grid, density: &d2 },
        true,
    )
    .unwrap();
    check(&files, (2 * PANEL_SIZE.0, PANEL_SIZE.1 + 44), &["SGD", "NGD", "Hessian spectral density"]);
    let err =
        density_chart(&dir.path().join("bad"), "t", DensityCurve { label: "", grid: &grid, density: &d1[..3] }, true)
            .unwrap_err();
    assert!(err.to_string().contains("grid"), "{err}");

    // Keep copies for looking at by hand: SLT_FIGURE_DEMO_DIR=/some/dir cargo test ...
    if let Ok(out) = std::env::var("SLT_FIGURE_DEMO_DIR") {
        let out = Path::new(&out);
        line_chart(&out.join("demo_line"), &demo_chart()).unwrap();
        panel_grid(&out.join("demo_grid"), "Figure 4: split runs", 1, 2, &[a, b]).unwrap();
        scatter_with_fit(&out.join("demo_corr"), "λ̂ vs validation loss", "validation loss", "λ̂", "epochs", &pts)
            .unwrap();
        density_pair(
            &out.join("demo_pair"),
            "Hessian spectral density",
            DensityCurve { label: "SGD", grid: &grid, density: &d1 },
            DensityCurve { label: "NGD", grid: &grid, density: &d2 },
            true,
        )
        .unwrap();
        density_chart(
            &out.join("demo_density"),
            "Hessian spectrum",
            DensityCurve { label: "SGD", grid: &grid, density: &d1 },
            true,
        )
        .unwrap();
    }
}

#[test]
fn tick_formats() {
    assert_eq!(format_tick(0.0), "0");
    assert_eq!(format_tick(2.5), "2.5");
    assert_eq!(format_tick(120.0), "120");
    assert_eq!(format_tick(0.0125), "0.0125");
    assert_eq!(format_tick(2e-5), "2e-5");
    assert_eq!(format_tick(1.5e6), "1.5e6");
    // Log axes: powers of ten over wide ranges, 1-2-5 over narrow ones, given ticks kept.
    let a = Axis::new((3e-9, 40.0), true, None);
    assert_eq!(a.major.len(), 5, "{a:?}"); // 1e-8 … 10 thinned to every other decade
    assert!(a.major.contains(&1e-8) && a.major.contains(&1.0));
    let a = Axis::new((13.0, 300.0), true, None);
    assert_eq!(a.major, vec![20.0, 50.0, 100.0, 200.0]);
    let a = Axis::new((2.5, 8.0), true, None);
    assert_eq!(a.major, vec![3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
    let a = Axis::new((13.0, 300.0), true, Some(&[16.0, 32.0, 64.0, 128.0, 256.0, 512.0]));
    assert_eq!(a.major, vec![16.0, 32.0, 64.0, 128.0, 256.0]);
    let a = Axis::new((-0.1, 1.05), false, None);
    assert_eq!(a.major, vec![0.0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0]);
    assert_eq!(format_tick(a.major[3]), "0.6");
    assert_eq!(Axis::new((-0.55, 11.55), false, None).major, vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
    assert_eq!(format_p(0.00012), "1.20e-4");
    assert_eq!(format_p(0.0412), "0.041");
}

#[test]
fn png_is_the_rasterised_svg() {
    let dir = tempfile::tempdir().unwrap();
    let files = line_chart(&dir.path().join("same"), &demo_chart()).unwrap();
    let svg = std::fs::read_to_string(&files.svg).unwrap();
    let png = decode(&files.png);
    // Same size: the SVG's own width and height are the PNG's.
    let tree = resvg::usvg::Tree::from_str(&svg, &resvg::usvg::Options::default()).unwrap();
    let size = tree.size().to_int_size();
    assert_eq!((size.width(), size.height()), (png.width(), png.height()));
    assert_eq!((png.width(), png.height()), SINGLE_SIZE);
    // Same picture: rasterising the written SVG again gives the PNG's pixels exactly.
    assert!(render::rasterise(&svg).unwrap().data() == png.data());
    // The text is SVG text in the embedded font, not paths.
    assert!(svg.contains(r#"font-family="DejaVu Sans, sans-serif""#), "{svg}");
    // Sizes as before: the caption's lines are 22 pixels tall (ascent − descent), an em of
    // 22 / 1.164 = 18.9 pixels; the tick labels' 15 pixels, an em of 12.89.
    assert!(svg.contains(r#"font-size="18.9""#) && svg.contains(r#"font-size="12.89""#), "font sizes");
    // A panel grid too.
    let files = panel_grid(&dir.path().join("grid"), "two panels", 1, 2, &[demo_chart(), demo_chart()]).unwrap();
    check(&files, (2 * PANEL_SIZE.0, PANEL_SIZE.1 + 44), &["two panels"]);
}

#[test]
fn text_is_rasterised_with_the_embedded_font() {
    let dir = tempfile::tempdir().unwrap();
    let titled = Chart::new("Loss over training", "epoch", "loss").legend(LegendPosition::Hidden);
    let untitled = Chart { title: String::new(), ..titled.clone() };
    let (w, h) = SINGLE_SIZE;
    let with = check(&line_chart(&dir.path().join("titled"), &titled).unwrap(), (w, h), &["Loss over training"]);
    let without = check(&line_chart(&dir.path().join("untitled"), &untitled).unwrap(), (w, h), &[]);
    // The caption sits centred above the axes (12-pixel margin, then a line of 22-pixel
    // text): its region is dark where the title is drawn and blank without it.
    let region = ((w / 2 - 120, w / 2 + 120), (8, 46));
    let ink = dark_in(&with, w, region.0, region.1);
    assert!(ink > 300, "title region has {ink} dark pixels");
    assert_eq!(dark_in(&without, w, region.0, region.1), 0);
    // Axis descriptions and tick labels are drawn too (bottom band: "epoch" and 0 … 1).
    assert!(dark_in(&with, w, (100, w - 24), (h - 60, h)) > 200);
    // The figure title of a panel grid, in its 44-pixel band.
    let files = panel_grid(&dir.path().join("grid"), "Figure 4", 1, 2, &[untitled.clone(), untitled]).unwrap();
    let grid = check(&files, (2 * PANEL_SIZE.0, PANEL_SIZE.1 + 44), &["Figure 4"]);
    let gw = 2 * PANEL_SIZE.0;
    assert!(dark_in(&grid, gw, (gw / 2 - 80, gw / 2 + 80), (0, 44)) > 150);
    // Measurement follows the font: wider text, wider box; no text, no width.
    let (a, b) = (render::text_width("ll", 15.0).unwrap(), render::text_width("WW", 15.0).unwrap());
    assert!(0.0 < a && a < b, "{a} {b}");
    assert_eq!(render::text_width("", 15.0).unwrap(), 0.0);
    assert!((render::text_height(10.0).unwrap() - 11.64).abs() < 0.1, "DejaVu Sans: ascent − descent ≈ 1.164 em");
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let out = |name: &str| dir.path().join(name);
    // All-NaN and empty charts draw (empty axes); these are not errors.
    let nan = Chart::new("all NaN", "x", "y")
        .series(Series::line("nan", vec![(f64::NAN, f64::NAN, Some(f64::NAN)); 3]))
        .hline("nan line", f64::NAN)
        .vline("inf line", f64::INFINITY)
        .x_ticks(vec![f64::NAN, f64::INFINITY]);
    check(&line_chart(&out("nan"), &nan).unwrap(), SINGLE_SIZE, &["all NaN"]);
    check(&line_chart(&out("empty"), &Chart::default()).unwrap(), SINGLE_SIZE, &[]);
    // Impossible fixed ranges are errors naming the chart.
    for (name, chart) in [
        ("nan x", Chart::new("nan x", "x", "y").x_range(f64::NAN, 1.0)),
        ("inf y", Chart::new("inf y", "x", "y").y_range(0.0, f64::INFINITY)),
        ("empty y", Chart::new("empty y", "x", "y").y_range(1.0, 1.0)),
        ("log x", Chart::new("log x", "x", "y").log_x().x_range(0.0, 10.0)),
    ] {
        let err = line_chart(&out("bad"), &chart).unwrap_err();
        assert!(format!("{err:#}").contains(name), "{err:#}");
    }
    let err = panel_grid(&out("none"), "", 0, 2, &[]).unwrap_err();
    assert!(err.to_string().contains("holds no panels"), "{err}");
    // A failed figure leaves no files behind.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 4, "nan.png/svg and empty.png/svg only");
    // Density curves of NaN: drawn, no panic.
    let grid = [0.0, 1.0, 2.0];
    let dens = [f64::NAN; 3];
    density_pair(
        &out("dens"),
        "NaN densities",
        DensityCurve { label: "a", grid: &grid, density: &dens },
        DensityCurve { label: "b", grid: &grid, density: &dens },
        true,
    )
    .unwrap();
}

#[test]
fn writes_are_atomic_and_create_directories() {
    let dir = tempfile::tempdir().unwrap();
    let stem = dir.path().join("a/b/fig");
    let files = line_chart(&stem, &demo_chart()).unwrap();
    assert_eq!(files, FigureFiles { png: dir.path().join("a/b/fig.png"), svg: dir.path().join("a/b/fig.svg") });
    // Overwriting replaces both files and leaves no temporary files.
    let files = line_chart(&stem, &Chart::new("second", "x", "y")).unwrap();
    assert!(std::fs::read_to_string(&files.svg).unwrap().contains("second"));
    let mut names: Vec<_> =
        std::fs::read_dir(dir.path().join("a/b")).unwrap().map(|e| e.unwrap().file_name()).collect();
    names.sort();
    assert_eq!(names, ["fig.png", "fig.svg"]);
    // A stem with a dot keeps it: `run.v2` → `run.v2.png`.
    let files = line_chart(&dir.path().join("run.v2"), &Chart::default()).unwrap();
    assert_eq!(files.png, dir.path().join("run.v2.png"));
}

#[test]
fn svg_tidying() {
    let svg = r#"<text font-size="12.886010067114093">a "b" stroke-width="1"</text><line stroke-width="1" x1="0"/><line stroke-width="2"/><text font-size="15">x</text>"#;
    assert_eq!(
        render::tidy_svg(svg),
        r#"<text font-size="12.89">a "b" stroke-width="1" shape-rendering="crispEdges"</text><line stroke-width="1" shape-rendering="crispEdges" x1="0"/><line stroke-width="2"/><text font-size="15">x</text>"#
    );
    // plotters escapes quotes in text, so a label cannot contain an attribute.
    let dir = tempfile::tempdir().unwrap();
    let files = line_chart(&dir.path().join("q"), &Chart::new(r#"a stroke-width="1" b"#, "x", "y")).unwrap();
    let svg = std::fs::read_to_string(files.svg).unwrap();
    assert!(svg.contains("a stroke-width=&quot;1&quot; b"), "{svg}");
}
