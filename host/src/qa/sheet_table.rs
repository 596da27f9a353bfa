use std::fmt;

use super::{ItemStatus, QaSheet};

/// Sheets as a person reads them in a terminal: one line a session with its
/// score, grade and the rules it failed. `callqa check` prints this instead
/// of NDJSON when stdout is a terminal and no `--out` is given.
pub struct SheetTable<'a> {
    pub sheets: &'a [QaSheet],
}

impl fmt::Display for SheetTable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self.sheets.iter().map(|s| s.session_id.chars().count()).max().unwrap_or(7).clamp(7, 40);
        writeln!(f, "{:<width$}  {:<7}  {:>5}  {:<9}  failed", "session", "channel", "score", "grade")?;
        for sheet in self.sheets {
            let id: String = sheet.session_id.chars().take(width).collect();
            let score = sheet.score.map(|s| format!("{:.0}", s * 100.0)).unwrap_or_else(|| "-".into());
            let failed: Vec<String> = sheet
                .items
                .iter()
                .filter(|item| !item.shadow && matches!(item.outcome, ItemStatus::Fail | ItemStatus::Error))
                .map(|item| {
                    let mark = if item.critical { "!" } else { "" };
                    let error = if item.outcome == ItemStatus::Error { " (error)" } else { "" };
                    format!("{mark}{}{error}", item.rule_id)
                })
                .collect();
            writeln!(
                f,
                "{id:<width$}  {:<7}  {score:>5}  {:<9}  {}{}",
                sheet.channel,
                sheet.grade.as_deref().unwrap_or("-"),
                if failed.is_empty() { "-".to_string() } else { failed.join(", ") },
                if sheet.complete { "" } else { "  [incomplete]" },
            )?;
        }
        write!(
            f,
            "{} sheets (score 0–100; ! a critical item). This is a summary for the terminal: pipe stdout or pass \
             --out FILE for the sheets as NDJSON.",
            self.sheets.len()
        )
    }
}
