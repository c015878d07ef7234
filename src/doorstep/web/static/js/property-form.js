// The multi-step property form: steps are shown one at a time and each is checked in the
// browser before the next; the server checks everything again on the one submission and, on a
// refusal, renders the form with each message beside its field, opened on the first bad step.
(function () {
  "use strict";
  var form = document.querySelector("[data-testid=property-form]");
  if (!form) return;
  var steps = Array.prototype.slice.call(form.querySelectorAll("[data-step]"));
  var markers = form.querySelectorAll("[data-step-marker]");
  var back = form.querySelector("[data-step-back]");
  var next = form.querySelector("[data-step-next]");
  var submit = form.querySelector("[data-step-submit]");
  var current = parseInt(form.getAttribute("data-start-step"), 10) || 1;

  function kind() {
    var checked = form.querySelector("input[name=property_type]:checked");
    return checked ? checked.value : "";
  }

  function showType() {
    form.querySelectorAll("[data-type-fields]").forEach(function (group) {
      var on = group.getAttribute("data-type-fields") === kind();
      group.hidden = !on;
      group.querySelectorAll("input, select").forEach(function (el) { el.disabled = !on; });
    });
  }

  function show(step) {
    current = step;
    steps.forEach(function (el) { el.hidden = parseInt(el.getAttribute("data-step"), 10) !== step; });
    markers.forEach(function (el) {
      el.classList.toggle("active", parseInt(el.getAttribute("data-step-marker"), 10) === step);
    });
    back.hidden = step === 1;
    next.hidden = step === steps.length;
    submit.hidden = step !== steps.length;
    form.setAttribute("data-step", String(step));
  }

  function valid(step) {
    var fields = steps[step - 1].querySelectorAll("input:not([disabled]), select:not([disabled]), textarea");
    if (step === 1 && !kind()) {
      form.querySelector("input[name=property_type]").focus();
      return false;
    }
    for (var i = 0; i < fields.length; i++) {
      if (!fields[i].checkValidity()) { fields[i].reportValidity(); return false; }
    }
    return true;
  }

  next.addEventListener("click", function () { if (valid(current)) show(current + 1); });
  back.addEventListener("click", function () { show(current - 1); });
  form.querySelectorAll("input[name=property_type]").forEach(function (el) { el.addEventListener("change", showType); });
  showType();
  show(current);
  form.setAttribute("data-ready", "true");
})();
