// Small progressive enhancements; every page works without them.
document.addEventListener("DOMContentLoaded", () => {
  // Grouped menus: opening one closes the others; a tap outside closes them all.
  const menus = [...document.querySelectorAll("details.menu")];
  menus.forEach((menu) => menu.addEventListener("toggle", () => {
    if (menu.open) menus.forEach((other) => { if (other !== menu) other.open = false; });
  }));
  document.addEventListener("click", (ev) => {
    if (!ev.target.closest("details.menu")) menus.forEach((menu) => { menu.open = false; });
    // A folded list of tick boxes closes on a tap elsewhere; its summary says what is ticked.
    document.querySelectorAll("details.checklist[open]").forEach((list) => {
      if (!list.contains(ev.target)) list.open = false;
    });
  });
  document.querySelectorAll("details.checklist").forEach((list) => {
    const summary = list.querySelector("summary");
    const boxes = [...list.querySelectorAll("input[type=checkbox]")];
    const names = (box) => box.parentElement.textContent.trim();
    list.addEventListener("change", () => {
      const ticked = boxes.filter((box) => box.checked).map(names);
      summary.textContent = ticked.length > 1 ? `${ticked.length} chosen: ${ticked.join(", ")}` : (ticked[0] || list.dataset.none);
    });
  });
  // Choices that must agree: a select marked data-facility-filter="beamline" offers only the options of
  // the facility chosen in the [name=beamline] select (the server refuses a mismatch all the same).
  document.querySelectorAll("select[data-facility-filter]").forEach((select) => {
    const source = select.form && select.form.querySelector(`select[name=${select.dataset.facilityFilter}]`);
    if (!source) return;
    const sync = () => {
      const chosen = source.selectedOptions[0];
      const facility = chosen ? chosen.dataset.facility : "";
      [...select.options].forEach((o) => {
        o.hidden = Boolean(facility && o.value && o.dataset.facility !== facility);
      });
      if (select.selectedOptions[0] && select.selectedOptions[0].hidden) select.value = "";
    };
    source.addEventListener("change", sync);
    sync();
  });
  // "Select all" checkbox for bulk actions.
  document.querySelectorAll("[data-select-all]").forEach((box) => {
    box.addEventListener("change", () => {
      document.querySelectorAll(box.dataset.selectAll).forEach((b) => { b.checked = box.checked; });
    });
  });
  // A bulk-action button may send the selection to another page (GET with ?grids=1&grids=2…).
  document.querySelectorAll("[data-bulk-target]").forEach((btn) => {
    btn.addEventListener("click", (ev) => {
      ev.preventDefault();
      const ids = [...document.querySelectorAll("input[name=grids]:checked")].map((b) => b.value);
      if (!ids.length) { alert("Select at least one grid first."); return; }
      const url = new URL(btn.dataset.bulkTarget, window.location.origin);
      ids.forEach((id) => url.searchParams.append("grids", id));
      window.location = url.toString();
    });
  });
  // Print buttons (no inline onclick: the content security policy allows no inline script).
  document.querySelectorAll("[data-print]").forEach((btn) => {
    btn.addEventListener("click", () => window.print());
  });
  // Colour swatches: the colour comes from the data, set through the CSSOM (no inline style attribute).
  document.querySelectorAll("[data-colour]").forEach((el) => { el.style.background = el.dataset.colour; });
});
