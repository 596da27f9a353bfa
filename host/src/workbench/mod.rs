//! What people look at: the workbench's pages (served by `serve/pages/`)
//! and the HTML report (`callqa check --report`, `callqa sheets report`).
//! Both render the same templates (`host/web/templates/`) with the same
//! labels and charts, so a figure means one thing wherever it is shown.

pub mod assets;
pub mod chart;
pub mod dashboard;
pub mod evidence;
pub mod locale;
pub mod report;
pub mod templates;
