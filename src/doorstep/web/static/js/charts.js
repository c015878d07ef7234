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

  // Every view of a spec: the spec itself, and its layers (and theirs).
  function views(spec) {
    return [spec].concat(...(spec.layer || []).map(views));
  }

  // Value labels drawn just past the end of horizontal bars (a left-aligned text mark) lie
  // outside the plot, where vega does not make room for them: keep some on the right.
  function roomForLabels(spec) {
    const labels = views(spec).some(function (v) {
      return v.mark && v.mark.type === "text" && v.mark.align === "left";
    });
    if (labels) {
      spec.padding = { left: 5, top: 5, bottom: 5, right: 44 };
    }
  }

  // A discrete x axis whose labels run into each other (a narrow chart, a phone) is drawn
  // again: many short labels (hours) keep every other one, a few long ones (weekdays) slant.
  const LABEL_GAP_PX = 3;
  function crowdedX(el) {
    const axis = el.querySelector(
      'svg g.role-axis[aria-label^="X-axis"][aria-label*="for a discrete scale"]'
    );
    if (!axis) return false;
    const boxes = Array.from(axis.querySelectorAll(".role-axis-label text"))
      .map(function (text) { return text.getBoundingClientRect(); })
      .filter(function (box) { return box.width > 0; })
      .sort(function (a, b) { return a.left - b.left; });
    return boxes.some(function (box, i) {
      return i > 0 && box.left < boxes[i - 1].right + LABEL_GAP_PX;
    });
  }

  function spreadLabels(spec) {
    const values = (spec.data && spec.data.values) || [];
    let changed = false;
    views(spec).forEach(function (v) {
      const x = v.encoding && v.encoding.x;
      if (!x || (x.type !== "ordinal" && x.type !== "nominal")) return;
      const count = new Set(values.map(function (row) { return row[x.field]; })).size;
      x.axis = Object.assign({}, x.axis);
      if (count > 12) {
        x.axis.labelOverlap = "parity";
        x.axis.labelSeparation = LABEL_GAP_PX;
      } else {
        x.axis.labelAngle = -40;
      }
      changed = true;
    });
    return changed;
  }

  // In a narrow chart (a phone) a colour gradient's legend goes below the plot, which keeps
  // the width for the cells of a heatmap.
  const NARROW_PX = 480;
  function legendsBelow(spec, width) {
    if (width >= NARROW_PX) return;
    views(spec).forEach(function (v) {
      const color = v.encoding && v.encoding.color;
      if (color && color.type === "quantitative") {
        color.legend = Object.assign({}, color.legend, {
          orient: "bottom",
          direction: "horizontal",
          gradientLength: Math.max(80, Math.min(220, width - 100)),
        });
      }
    });
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
    roomForLabels(spec);
    legendsBelow(spec, el.clientWidth);
    embed(el, spec, true);
  }

  function embed(el, spec, firstTry) {
    const drill = spec.usermeta && spec.usermeta.drill;
    window.vegaEmbed(el, spec, { actions: false, renderer: "svg" }).then(function (result) {
      if (firstTry && crowdedX(el) && spreadLabels(spec)) {
        result.finalize();
        embed(el, spec, false);
        return;
      }
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

  // The location filter keeps the other filters (a quick period stays a quick period).
  function followLocation(select) {
    select.addEventListener("change", function () {
      const url = new URL(window.location.href);
      if (select.value) {
        url.searchParams.set("location_id", select.value);
      } else {
        url.searchParams.delete("location_id");
      }
      window.location.assign(url.toString());
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    drawAll(document);
    document.querySelectorAll("select[data-location-filter]").forEach(followLocation);
  });
  document.body && document.body.addEventListener("htmx:afterSwap", function (e) { drawAll(e.target); });
})();
