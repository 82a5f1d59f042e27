// Draws the figures embedded in the page (JSON in <script type="application/json">) with the
// locally served plotly.js, makes points that carry a trial number link to that trial, and
// reloads the page when the results change (it polls the page's /api/version URL).
(function () {
  "use strict";

  function draw() {
    document.querySelectorAll("[data-figure]").forEach(function (el) {
      var source = document.getElementById(el.dataset.figure);
      if (!source || !window.Plotly) return;
      var fig = JSON.parse(source.textContent);
      if (!fig) return;
      window.Plotly.newPlot(el, fig.data, fig.layout, {
        responsive: true,
        displaylogo: false,
        modeBarButtonsToRemove: ["select2d", "lasso2d"],
      }).then(function () {
        el.classList.add("drawn");
        var trialUrl = el.dataset.trialUrl;
        if (trialUrl && el.on) {
          el.on("plotly_click", function (event) {
            var point = event.points && event.points[0];
            if (point && point.customdata !== undefined && point.customdata !== null) {
              window.location.href = trialUrl.replace("__N__", encodeURIComponent(point.customdata));
            }
          });
        }
      });
    });
  }

  function poll() {
    var body = document.body;
    var url = body.dataset.versionUrl;
    var seconds = parseFloat(body.dataset.refresh);
    if (!url || !(seconds > 0)) return;
    window.setInterval(function () {
      if (document.hidden) return;
      fetch(url, { cache: "no-store" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (reply) {
          if (reply && reply.version && reply.version !== body.dataset.version) {
            var live = document.getElementById("live");
            if (live) live.hidden = false;
            window.location.reload();
          }
        })
        .catch(function () { /* the server may be restarting: try again next time */ });
    }, seconds * 1000);
  }

  document.addEventListener("DOMContentLoaded", function () {
    draw();
    poll();
  });
})();
