//! The evaluation form a ruleset describes beside its items: sections (each
//! item in one, each section weighted), critical items (一票否决: one failed
//! critical item sets the sheet's score to 0) and grade thresholds. A
//! ruleset without `[[section]]` or `[[grade]]` scores as before: the
//! weighted mean of its scored items.
//!
//! ```toml
//! [[section]]
//! id = "courtesy"
//! title = "服务礼仪"
//! weight = 1.0
//!
//! [[grade]]                  # the highest `min` the score reaches names the grade
//! name = "excellent"
//! min = 0.9
//! [[grade]]
//! name = "pass"
//! min = 0.7
//!
//! [[rule]]
//! id = "greeting"
//! module = "bundled:greeting"
//! section = "courtesy"
//! critical = true
//! ```

use anyhow::bail;
use serde::{Deserialize, Serialize};

/// `[[section]]` as written.
#[derive(Deserialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct Section {
    pub id: String,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default = "one")]
    pub weight: f64,
}

/// `[[grade]]` as written.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Grade {
    pub name: String,
    pub min: f64,
}

fn one() -> f64 {
    1.0
}

/// Sections in the ruleset's order; grades highest `min` first.
#[derive(Clone, Debug, Default)]
pub struct Form {
    pub sections: Vec<Section>,
    pub grades: Vec<Grade>,
}

impl Form {
    pub fn new(sections: Vec<Section>, mut grades: Vec<Grade>) -> anyhow::Result<Form> {
        for (i, s) in sections.iter().enumerate() {
            if s.id.trim().is_empty() {
                bail!("[[section]] number {} has an empty id", i + 1);
            }
            if sections[..i].iter().any(|o| o.id == s.id) {
                bail!("section `{}` is declared twice", s.id);
            }
            if !(s.weight.is_finite() && s.weight >= 0.0) {
                bail!("section `{}`: weight {} must be a non-negative number", s.id, s.weight);
            }
        }
        for (i, g) in grades.iter().enumerate() {
            if g.name.trim().is_empty() {
                bail!("[[grade]] number {} has an empty name", i + 1);
            }
            if !(0.0..=1.0).contains(&g.min) {
                bail!("grade `{}`: min {} must be within [0, 1] (sheet scores are)", g.name, g.min);
            }
            if grades[..i].iter().any(|o| o.name == g.name || o.min == g.min) {
                bail!("grade `{}`: another grade has the same name or the same min", g.name);
            }
        }
        grades.sort_by(|a, b| b.min.total_cmp(&a.min));
        Ok(Form { sections, grades })
    }

    /// Checks a rule's `section` against the form: once a ruleset has
    /// sections every item names one, and only a declared one.
    pub fn check_section(&self, section: Option<&str>) -> anyhow::Result<()> {
        match (section, self.sections.is_empty()) {
            (None, false) => bail!(
                "the ruleset has sections: name this item's with `section = \"…\"` (one of: {})",
                self.section_ids()
            ),
            (Some(s), true) => bail!("`section = \"{s}\"`, but the ruleset declares no [[section]]"),
            (Some(s), false) if !self.sections.iter().any(|d| d.id == s) => {
                bail!("unknown section `{s}` (declared: {})", self.section_ids())
            }
            _ => Ok(()),
        }
    }

    fn section_ids(&self) -> String {
        self.sections.iter().map(|s| s.id.as_str()).collect::<Vec<_>>().join(", ")
    }

    /// The grade a score reaches, if any.
    pub fn grade(&self, score: f64) -> Option<&str> {
        self.grades.iter().find(|g| score >= g.min).map(|g| g.name.as_str())
    }
}

/// A section's result on one sheet.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SectionScore {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub weight: f64,
    /// Weighted mean of the section's scored items; `None` when none scored.
    pub score: Option<f64>,
}
