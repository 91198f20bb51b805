// Small progressive enhancements; every page works without them.
document.addEventListener("DOMContentLoaded", () => {
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
