//! Training curves as PNG files, drawn with plotters and a font built into
//! the binary (no system font libraries needed).

use std::path::Path;
use std::sync::Once;

use anyhow::{Context, Result};
use embkit::History;
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

/// DejaVu Sans (Bitstream Vera licence, see `assets/DejaVuSans-LICENSE.txt`).
const FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

fn ensure_font() {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        // Only fails for a font that cannot be parsed, and this one is
        // built in.
        let _ = register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// Draws the loss per epoch (and the validation loss, when there is one)
/// into a PNG at `path`, written to a temporary file and renamed.
pub fn loss_curve(history: &History, title: &str, path: &Path) -> Result<()> {
    ensure_font();
    let tmp = path.with_extension("tmp.png");
    draw(history, title, &tmp).with_context(|| format!("drawing {}", path.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming into {}", path.display()))?;
    Ok(())
}

fn draw(history: &History, title: &str, path: &Path) -> Result<()> {
    let train: Vec<(f64, f64)> = history.epochs.iter().map(|e| (e.epoch as f64, e.loss)).collect();
    let val: Vec<(f64, f64)> =
        history.epochs.iter().filter_map(|e| Some((e.epoch as f64, e.val_loss?))).collect();
    let epochs = history.epochs.len().max(1) as f64;
    let ymax = train.iter().chain(&val).map(|p| p.1).fold(0.0f64, f64::max).max(1e-3) * 1.1;

    let root = BitMapBackend::new(path, (800, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 24))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(0.5f64..epochs + 0.5, 0.0f64..ymax)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc("loss")
        .x_labels(history.epochs.len().clamp(2, 20))
        .x_label_formatter(&|x| format!("{x:.0}"))
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    chart
        .draw_series(LineSeries::new(train.clone(), BLUE.stroke_width(2)))
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .label("training loss")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE.stroke_width(2)));
    chart
        .draw_series(train.iter().map(|&p| Circle::new(p, 3, BLUE.filled())))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if !val.is_empty() {
        chart
            .draw_series(LineSeries::new(val.clone(), RED.stroke_width(2)))
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .label("validation loss")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED.stroke_width(2)));
        chart
            .draw_series(val.iter().map(|&p| Circle::new(p, 3, RED.filled())))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    chart
        .configure_series_labels()
        .label_font(("sans-serif", 14))
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    root.present().map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(())
}
