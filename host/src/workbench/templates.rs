//! The page templates (`host/web/templates/`), compiled into the binary
//! and parsed once. minijinja escapes every value put into an `.html`
//! template; only the report's inlined stylesheet and scripts, which are
//! ours, are marked safe. Undefined values are errors outside `if` tests, so a label missing
//! from a catalog fails a render test instead of showing nothing.

use std::sync::OnceLock;

use anyhow::Context;
use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;

const TEMPLATES: [(&str, &str); 9] = [
    ("base.html", include_str!("../../web/templates/base.html")),
    ("charts.html", include_str!("../../web/templates/charts.html")),
    ("login.html", include_str!("../../web/templates/login.html")),
    ("error.html", include_str!("../../web/templates/error.html")),
    ("sheets.html", include_str!("../../web/templates/sheets.html")),
    ("sheet.html", include_str!("../../web/templates/sheet.html")),
    ("dashboard.html", include_str!("../../web/templates/dashboard.html")),
    ("rules.html", include_str!("../../web/templates/rules.html")),
    ("report.html", include_str!("../../web/templates/report.html")),
];

pub struct Templates {
    env: Environment<'static>,
}

impl Templates {
    pub fn get() -> &'static Templates {
        static TEMPLATES_CELL: OnceLock<Templates> = OnceLock::new();
        TEMPLATES_CELL.get_or_init(|| Templates::load().expect("the built-in templates parse (a unit test checks)"))
    }

    fn load() -> anyhow::Result<Templates> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
        for (name, source) in TEMPLATES {
            env.add_template(name, source).with_context(|| format!("the template {name}"))?;
        }
        Ok(Templates { env })
    }

    pub fn render(&self, name: &str, context: impl Serialize) -> anyhow::Result<String> {
        let template = self.env.get_template(name).with_context(|| format!("no template {name}"))?;
        template.render(context).map_err(|e| anyhow::anyhow!("rendering {name}: {e:#}"))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_templates_parse() {
        super::Templates::load().unwrap();
    }
}
