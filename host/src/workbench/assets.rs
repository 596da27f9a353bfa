//! The static files pages load, compiled into the binary so `callqa serve`
//! stays one file and works offline. Chartist is taken from npm at the
//! version package.json pins and vendored under `host/web/vendor/` (the
//! first command builds without npm); a test checks the copy against
//! `node_modules`.

pub struct Asset {
    pub name: &'static str,
    pub content_type: &'static str,
    pub body: &'static str,
}

pub const CSS: &str = include_str!("../../web/static/workbench.css");
pub const WORKBENCH_JS: &str = include_str!("../../web/static/workbench.js");
pub const CHARTIST_JS: &str = include_str!("../../web/vendor/chartist/chartist.umd.js");
pub const CHARTIST_CSS: &str = include_str!("../../web/vendor/chartist/chartist.css");

pub const ALL: [Asset; 4] = [
    Asset { name: "workbench.css", content_type: "text/css; charset=utf-8", body: CSS },
    Asset { name: "workbench.js", content_type: "text/javascript; charset=utf-8", body: WORKBENCH_JS },
    Asset { name: "chartist.umd.js", content_type: "text/javascript; charset=utf-8", body: CHARTIST_JS },
    Asset { name: "chartist.css", content_type: "text/css; charset=utf-8", body: CHARTIST_CSS },
];

pub fn get(name: &str) -> Option<&'static Asset> {
    ALL.iter().find(|a| a.name == name)
}

/// Script text to put inside an inline `<script>` (the report): a `</` in
/// it would end the element early.
pub fn inline_script(js: &str) -> String {
    js.replace("</", "<\\/")
}
