// The report builder: show the subject picker and the sections of the chosen template.
(function () {
  const form = document.getElementById("report-builder");
  if (!form) return;
  const template = form.querySelector("#template");
  const hint = form.querySelector("[data-template-hint]");

  function apply(initial) {
    const option = template.selectedOptions[0];
    if (!option) return;
    const subject = option.dataset.subject;
    const allowed = option.dataset.sections.split(",");
    const defaults = option.dataset.defaults.split(",");
    // The first paint keeps what the server ticked (a refused form comes back as it was sent).
    const keep = initial && form.querySelector("[data-sections] input:checked") !== null;
    form.querySelectorAll("[data-subject-field]").forEach((field) => {
      const shown = field.dataset.subjectField === subject;
      field.hidden = !shown;
      field.querySelectorAll("select").forEach((select) => { select.disabled = !shown; });
    });
    form.querySelectorAll("[data-section]").forEach((label) => {
      const box = label.querySelector("input");
      const ok = allowed.includes(label.dataset.section);
      label.hidden = !ok;
      box.disabled = !ok;
      if (!keep) box.checked = ok && defaults.includes(label.dataset.section);
    });
    if (hint) hint.textContent = option.title || "";
  }

  template.addEventListener("change", () => apply(false));
  apply(true);
})();
