// Draws the charts a page describes in <script type="application/json"
// class="chart-data"> elements, with Chartist (vendored from npm, see
// package.json). Loaded from our own origin: the pages' Content-Security-
// Policy allows no inline script. The HTML report inlines this same file.
(function () {
  "use strict";
  function draw(spec) {
    var target = document.getElementById(spec.id);
    if (!target || !window.Chartist) { return; }
    var data = { labels: spec.labels, series: spec.series.map(function (s) { return s.values; }) };
    var options = { fullWidth: true, chartPadding: { right: 48 }, axisY: { onlyInteger: false } };
    if (spec.min !== null && spec.min !== undefined) { options.low = spec.min; }
    if (spec.max !== null && spec.max !== undefined) { options.high = spec.max; }
    if (spec.kind === "bar") {
      if (spec.horizontal) { options.horizontalBars = true; options.reverseData = true; options.axisY = { offset: 140 }; }
      new Chartist.BarChart(target, data, options);
    } else {
      options.showPoint = true;
      options.lineSmooth = false;
      new Chartist.LineChart(target, data, options);
    }
    target.setAttribute("data-drawn", "true");
  }
  function drawAll() {
    var blocks = document.querySelectorAll("script.chart-data");
    for (var i = 0; i < blocks.length; i++) {
      var specs = JSON.parse(blocks[i].textContent);
      for (var j = 0; j < specs.length; j++) { draw(specs[j]); }
    }
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", drawAll);
  } else {
    drawAll();
  }
})();
