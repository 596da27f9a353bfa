//! The two languages of every label (the teams this serves work in both):
//! chosen by `?lang=`, then the `callqa_lang` cookie the switch sets, then
//! the browser's `Accept-Language`.

use std::collections::BTreeMap;
use std::sync::OnceLock;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Locale {
    En,
    Zh,
}

pub const COOKIE: &str = "callqa_lang";

impl Locale {
    pub fn code(self) -> &'static str {
        match self {
            Locale::En => "en",
            Locale::Zh => "zh",
        }
    }

    pub fn parse(code: &str) -> Option<Locale> {
        let code = code.trim().to_ascii_lowercase();
        if code == "zh" || code.starts_with("zh-") {
            Some(Locale::Zh)
        } else if code == "en" || code.starts_with("en-") {
            Some(Locale::En)
        } else {
            None
        }
    }

    /// The first language of an `Accept-Language` header we have, by the
    /// order of its q-values; English when none.
    pub fn from_accept_language(header: &str) -> Locale {
        let mut tags: Vec<(f32, usize, &str)> = header
            .split(',')
            .enumerate()
            .filter_map(|(i, part)| {
                let mut fields = part.split(';');
                let tag = fields.next()?.trim();
                let q =
                    fields.find_map(|f| f.trim().strip_prefix("q=").and_then(|q| q.parse::<f32>().ok())).unwrap_or(1.0);
                Some((q, i, tag))
            })
            .collect();
        tags.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        tags.iter().find_map(|(_, _, tag)| Locale::parse(tag)).unwrap_or(Locale::En)
    }

    /// A command's language: Chinese when `$LANG` (or `$LC_ALL`) says so.
    pub fn from_env() -> Locale {
        ["LC_ALL", "LANG"]
            .iter()
            .filter_map(|v| std::env::var(v).ok())
            .find(|v| !v.is_empty())
            .and_then(|v| Locale::parse(v.split(['.', '_']).next().unwrap_or("")))
            .unwrap_or(Locale::En)
    }

    /// The labels, by key.
    pub fn labels(self) -> &'static BTreeMap<String, String> {
        static EN: OnceLock<BTreeMap<String, String>> = OnceLock::new();
        static ZH: OnceLock<BTreeMap<String, String>> = OnceLock::new();
        let (cell, text) = match self {
            Locale::En => (&EN, include_str!("../../web/locales/en.toml")),
            Locale::Zh => (&ZH, include_str!("../../web/locales/zh.toml")),
        };
        // Checked by the tests below: a catalog that does not parse fails the build's tests.
        cell.get_or_init(|| toml::from_str(text).expect("the built-in label catalog parses"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_catalogs_have_the_same_keys() {
        let en: Vec<_> = Locale::En.labels().keys().collect();
        let zh: Vec<_> = Locale::Zh.labels().keys().collect();
        assert_eq!(en, zh);
        assert_eq!(Locale::Zh.labels()["nav_sheets"], "质检单");
    }

    #[test]
    fn accept_language_is_read_by_preference() {
        assert_eq!(Locale::from_accept_language("zh-CN,zh;q=0.9,en;q=0.8"), Locale::Zh);
        assert_eq!(Locale::from_accept_language("en-US,en;q=0.9,zh-CN;q=0.8"), Locale::En);
        assert_eq!(Locale::from_accept_language("fr;q=0.9, zh-TW;q=0.5"), Locale::Zh);
        assert_eq!(Locale::from_accept_language("de"), Locale::En);
        assert_eq!(Locale::from_accept_language(""), Locale::En);
    }
}
