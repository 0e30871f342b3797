//! Draws one line chart (two series with error bars, a reference line, a caption) to
//! `<temp dir>/slt-plot-example/fig1.{svg,png}` and prints the two paths.
//!
//! ```text
//! cargo run --release -p slt-plot --example line_chart
//! ```

use slt_plot::{line_chart, Chart, Series};

fn main() -> anyhow::Result<()> {
    let chart = Chart::new("LLC vs width", "hidden width", "λ̂")
        .log_x()
        .x_ticks(vec![16.0, 32.0, 64.0, 128.0])
        .series(Series::line_points(
            "SGD",
            vec![(16.0, 10.0, Some(0.5)), (32.0, 14.0, Some(0.9)), (64.0, 19.0, Some(0.8)), (128.0, 24.0, Some(1.3))],
        ))
        .series(Series::line_points(
            "NGD",
            vec![(16.0, 12.5, Some(0.4)), (32.0, 17.0, Some(0.7)), (64.0, 26.0, Some(1.1)), (128.0, 33.0, Some(2.0))],
        ))
        .hline("SGD at width 256", 27.0)
        .annotation("Welch t-test at width 128: t = 3.84, df = 7.1, p = 0.0061");
    let dir = std::env::temp_dir().join("slt-plot-example");
    let files = line_chart(&dir.join("fig1"), &chart)?;
    println!("{}\n{}", files.svg.display(), files.png.display());
    Ok(())
}
