// Draws every chart spec on the page (`.chart[data-spec]`, built by web/charts.py) with
// vega-embed. A spec whose `usermeta.drill` names a query parameter drills down on click:
// "day" narrows the range to that day; any other parameter (product_id, location_id) is set.
(function () {
  "use strict";

  function isoDay(value) {
    if (typeof value === "number" || value instanceof Date) {
      return new Date(value).toISOString().slice(0, 10);
    }
    return String(value).slice(0, 10);
  }

  function drillTo(drill, value) {
    const url = new URL(window.location.href);
    if (drill.param === "day") {
      const day = isoDay(value);
      url.searchParams.set("start", day);
      url.searchParams.set("end", day);
      url.searchParams.delete("period");
    } else {
      url.searchParams.set(drill.param, String(value));
    }
    window.location.assign(url.toString());
  }

  function draw(el) {
    let spec;
    try {
      spec = JSON.parse(el.dataset.spec);
    } catch (err) {
      el.textContent = "This chart could not be read.";
      el.dataset.rendered = "error";
      return;
    }
    const drill = spec.usermeta && spec.usermeta.drill;
    window.vegaEmbed(el, spec, { actions: false, renderer: "svg" }).then(function (result) {
      el.dataset.rendered = "1";
      if (drill) {
        result.view.addEventListener("click", function (_event, item) {
          const datum = item && item.datum;
          if (datum && datum[drill.field] !== undefined && datum[drill.field] !== null) {
            drillTo(drill, datum[drill.field]);
          }
        });
      }
    }).catch(function (err) {
      el.textContent = "This chart could not be drawn: " + err.message;
      el.dataset.rendered = "error";
    });
  }

  function drawAll(root) {
    (root || document).querySelectorAll(".chart[data-spec]").forEach(draw);
  }

  document.addEventListener("DOMContentLoaded", function () { drawAll(document); });
  document.body && document.body.addEventListener("htmx:afterSwap", function (e) { drawAll(e.target); });
})();
