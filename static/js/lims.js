// Small progressive enhancements; every page works without them.
document.addEventListener("DOMContentLoaded", () => {
  // Grouped menus: opening one closes the others; a tap outside closes them all.
  const menus = [...document.querySelectorAll("details.menu")];
  menus.forEach((menu) => menu.addEventListener("toggle", () => {
    if (menu.open) menus.forEach((other) => { if (other !== menu) other.open = false; });
  }));
  document.addEventListener("click", (ev) => {
    if (!ev.target.closest("details.menu")) menus.forEach((menu) => { menu.open = false; });
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
});
