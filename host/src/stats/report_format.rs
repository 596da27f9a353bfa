use std::io::Write;

use super::DailyRow;

/// How `callqa stats` prints its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    /// Aligned columns for a terminal.
    Table,
    /// RFC 4180 CSV with a header row.
    Csv,
    /// A JSON array of objects, one per row.
    Json,
}

const FIGURES: [&str; 13] = [
    "contacts",
    "inbound",
    "outbound",
    "transfer",
    "callback",
    "api",
    "other",
    "abandoned",
    "avg_queue_wait",
    "p90_queue_wait",
    "avg_handle_time",
    "avg_hold",
    "avg_after_contact_work",
];

impl ReportFormat {
    pub fn write(self, rows: &[DailyRow], groups: &[&str], out: &mut dyn Write) -> anyhow::Result<()> {
        if self == ReportFormat::Json {
            serde_json::to_writer_pretty(&mut *out, rows)?;
            writeln!(out)?;
            return Ok(());
        }
        let mut header: Vec<String> = vec!["date".into()];
        header.extend(groups.iter().map(|g| g.to_string()));
        header.extend(FIGURES.iter().map(|f| f.to_string()));
        let cells: Vec<Vec<String>> = rows.iter().map(|row| row_cells(row, groups)).collect();
        self.write_cells(&header, &cells, 1 + groups.len(), out)
    }

    /// Rows of text cells as an aligned table (the first `text_columns`
    /// left-aligned, the rest right-aligned) or as CSV; JSON is the
    /// caller's, from its own types.
    pub fn write_cells(
        self,
        header: &[String],
        cells: &[Vec<String>],
        text_columns: usize,
        out: &mut dyn Write,
    ) -> anyhow::Result<()> {
        match self {
            ReportFormat::Csv => {
                writeln!(out, "{}", header.iter().map(|h| csv_field(h)).collect::<Vec<_>>().join(","))?;
                for row in cells {
                    writeln!(out, "{}", row.iter().map(|c| csv_field(c)).collect::<Vec<_>>().join(","))?;
                }
            }
            _ => {
                let widths: Vec<usize> = (0..header.len())
                    .map(|i| cells.iter().map(|r| r[i].chars().count()).chain([header[i].len()]).max().unwrap_or(0))
                    .collect();
                let render = |row: &[String]| {
                    row.iter()
                        .enumerate()
                        .map(|(i, cell)| {
                            let pad = widths[i].saturating_sub(cell.chars().count());
                            if i < text_columns {
                                format!("{cell}{}", " ".repeat(pad))
                            } else {
                                format!("{}{cell}", " ".repeat(pad))
                            }
                        })
                        .collect::<Vec<_>>()
                        .join("  ")
                };
                writeln!(out, "{}", render(header).trim_end())?;
                for row in cells {
                    writeln!(out, "{}", render(row).trim_end())?;
                }
            }
        }
        Ok(())
    }
}

fn row_cells(row: &DailyRow, groups: &[&str]) -> Vec<String> {
    let number = |v: Option<f64>| v.map(|v| format!("{v:.2}")).unwrap_or_default();
    let mut cells = vec![row.date.clone()];
    cells.extend(groups.iter().map(|g| row.group.get(g).cloned().unwrap_or_default()));
    cells.extend(
        [row.contacts, row.inbound, row.outbound, row.transfer, row.callback, row.api, row.other, row.abandoned]
            .iter()
            .map(u64::to_string),
    );
    cells.extend(
        [row.avg_queue_wait, row.p90_queue_wait, row.avg_handle_time, row.avg_hold, row.avg_after_contact_work]
            .into_iter()
            .map(number),
    );
    cells
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}
