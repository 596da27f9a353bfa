//! A chart as the pages and the report describe it to `workbench.js`:
//! plain data, drawn in the browser by Chartist.

use serde::Serialize;

#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ChartKind {
    Line,
    Bar,
}

#[derive(Clone, Debug, Serialize)]
pub struct Series {
    pub name: String,
    /// One per label; `None` where there is nothing to plot (a day without sheets).
    pub values: Vec<Option<f64>>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Chart {
    /// The element's id: tests find the drawing by it.
    pub id: String,
    pub title: String,
    pub kind: ChartKind,
    /// Bars drawn left to right with their labels on the left (long rule ids).
    pub horizontal: bool,
    pub labels: Vec<String>,
    pub series: Vec<Series>,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

impl Chart {
    pub fn line(id: &str, title: &str, labels: Vec<String>, series: Vec<Series>) -> Chart {
        Chart {
            id: id.into(),
            title: title.into(),
            kind: ChartKind::Line,
            horizontal: false,
            labels,
            series,
            min: None,
            max: None,
        }
    }

    pub fn bars(id: &str, title: &str, labels: Vec<String>, values: Vec<f64>) -> Chart {
        Chart {
            id: id.into(),
            title: title.into(),
            kind: ChartKind::Bar,
            horizontal: false,
            labels,
            series: vec![Series { name: title.into(), values: values.into_iter().map(Some).collect() }],
            min: Some(0.0),
            max: None,
        }
    }

    pub fn horizontal(mut self) -> Chart {
        self.horizontal = true;
        self
    }

    pub fn range(mut self, min: f64, max: f64) -> Chart {
        self.min = Some(min);
        self.max = Some(max);
        self
    }
}
