// Characterization pages: drag-and-drop upload with progress, metrics polling, click-to-place
// targets and landmarks on an image preview. Vanilla JS, no dependencies; every page works without it.
(function () {
  "use strict";

  function csrfToken(scope) {
    const input = (scope || document).querySelector("input[name=csrfmiddlewaretoken]");
    if (input) return input.value;
    const match = document.cookie.match(/(?:^|; )csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => node.setAttribute(k, v));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // --- upload: drag and drop, one XMLHttpRequest per file with its progress bar -------------
  function initUpload(form) {
    const zone = form.querySelector("[data-dropzone]");
    const input = form.querySelector("[data-file-input]");
    const list = form.querySelector("[data-upload-list]");
    let active = 0;
    let succeeded = 0;
    let refused = 0;

    function finished() {
      if (active !== 0 || !succeeded) return;
      if (!refused) { setTimeout(() => window.location.reload(), 800); return; }
      // Keep the refusals on screen; offer the reload.
      if (!list.querySelector("[data-reload]")) {
        const li = el("li", { "data-reload": "" });
        const link = el("a", { href: window.location.pathname }, "Show the uploaded images");
        li.append(link);
        list.append(li);
      }
    }

    function send(file) {
      const row = el("li");
      const name = el("span", {}, file.name + " (" + Math.round(file.size / 1024) + " KiB)");
      const bar = el("progress", { max: "100", value: "0" });
      const status = el("span", { class: "muted" }, "uploading…");
      row.append(name, bar, status);
      list.append(row);
      const data = new FormData();
      data.append("file", file);
      ["kind", "modality"].forEach((field) => {
        const control = form.elements[field];
        if (control && control.value) data.append(field, control.value);
      });
      const xhr = new XMLHttpRequest();
      xhr.open("POST", form.action);
      xhr.setRequestHeader("X-CSRFToken", csrfToken(form));
      xhr.setRequestHeader("Accept", "application/json");
      xhr.upload.addEventListener("progress", (ev) => {
        if (ev.lengthComputable) bar.value = Math.round((100 * ev.loaded) / ev.total);
      });
      xhr.addEventListener("load", () => {
        active -= 1;
        let body = {};
        try { body = JSON.parse(xhr.responseText); } catch (e) { body = {}; }
        if (xhr.status < 300 && body.uploaded && body.uploaded.length) {
          bar.value = 100;
          status.className = "ok";
          status.textContent = "uploaded; computing metrics…";
          succeeded += 1;
        } else {
          refused += 1;
          status.className = "bad";
          status.textContent = (body.refused && body.refused[0] && body.refused[0].detail) || ("refused (HTTP " + xhr.status + ")");
          bar.remove();
        }
        finished();
      });
      xhr.addEventListener("error", () => {
        active -= 1;
        refused += 1;
        status.className = "bad";
        status.textContent = "network error: the file was not stored";
        finished();
      });
      active += 1;
      xhr.send(data);
    }

    function sendAll(files) {
      [...files].forEach(send);
    }

    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      if (!input.files.length) { input.click(); return; }
      sendAll(input.files);
      input.value = "";
    });
    input.addEventListener("change", () => { if (input.files.length) { sendAll(input.files); input.value = ""; } });
    ["dragenter", "dragover"].forEach((type) => zone.addEventListener(type, (ev) => { ev.preventDefault(); zone.classList.add("over"); }));
    ["dragleave", "drop"].forEach((type) => zone.addEventListener(type, (ev) => { ev.preventDefault(); zone.classList.remove("over"); }));
    zone.addEventListener("drop", (ev) => { if (ev.dataTransfer && ev.dataTransfer.files.length) sendAll(ev.dataTransfer.files); });
  }

  // --- metrics status: poll the API until done or failed, then reload ------------------------
  function initPoll(box) {
    const url = box.dataset.pollImage;
    const badge = box.querySelector("[data-status]");
    const bar = box.querySelector("[data-progress]");
    let delay = 1000;
    function tick() {
      fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then((r) => (r.ok ? r.json() : Promise.reject(r.status)))
        .then((data) => {
          if (badge) badge.textContent = data.metrics_status;
          if (bar) bar.value = data.metrics_progress;
          if (data.metrics_status === "done" || data.metrics_status === "failed") { window.location.reload(); return; }
          delay = Math.min(delay * 1.5, 10000);
          setTimeout(tick, delay);
        })
        .catch(() => setTimeout(tick, 10000));
    }
    setTimeout(tick, delay);
  }

  // --- image map: targets and landmarks placed by clicking the preview ----------------------
  function initMap(map) {
    const img = map.querySelector("img");
    const width = Number(map.dataset.width);
    const height = Number(map.dataset.height);
    const targets = JSON.parse((document.getElementById("targets-data") || {}).textContent || "[]");
    let landmarks = JSON.parse((document.getElementById("landmarks-data") || {}).textContent || "[]")
      .map((m) => ({ x: m.x, y: m.y, square: m.square }));
    const coords = document.querySelector("[data-map-coords]");
    const targetForm = document.querySelector("[data-target-form]");
    const calibrationForm = document.querySelector("[data-calibration-form]");
    const landmarkList = document.querySelector("[data-landmark-list]");
    const landmarkField = calibrationForm && calibrationForm.elements.landmarks;
    let pending = null;

    function marker(x, y, label, kind) {
      const m = el("div", { class: "marker " + (kind || "") });
      m.style.left = (100 * x) / width + "%";
      m.style.top = (100 * y) / height + "%";
      if (label) m.append(el("span", {}, label));
      map.append(m);
      return m;
    }

    function toPixels(ev) {
      const rect = img.getBoundingClientRect();
      const x = ((ev.clientX - rect.left) / rect.width) * width;
      const y = ((ev.clientY - rect.top) / rect.height) * height;
      return { x: Math.max(0, Math.min(width - 0.01, x)), y: Math.max(0, Math.min(height - 0.01, y)) };
    }

    function mode() {
      const checked = document.querySelector("[data-map-mode]:checked");
      return checked ? checked.value : "target";
    }

    function renderLandmarks() {
      map.querySelectorAll(".marker.landmark").forEach((m) => m.remove());
      if (landmarkList) landmarkList.innerHTML = "";
      landmarks.forEach((m, i) => {
        marker(m.x, m.y, m.square || "?", "landmark");
        if (!landmarkList) return;
        const li = el("li", {}, "(" + m.x.toFixed(0) + ", " + m.y.toFixed(0) + ") square ");
        const square = el("input", { value: m.square || "", placeholder: "C4", "aria-label": "Square of landmark " + (i + 1) });
        square.addEventListener("input", () => { m.square = square.value.trim().toUpperCase(); sync(); });
        square.addEventListener("change", renderLandmarks);
        const remove = el("button", { type: "button", class: "small", "aria-label": "Remove landmark " + (i + 1) }, "×");
        remove.addEventListener("click", () => { landmarks.splice(i, 1); renderLandmarks(); });
        li.append(square, " ", remove);
        landmarkList.append(li);
      });
      sync();
    }

    function sync() {
      if (landmarkField) landmarkField.value = JSON.stringify(landmarks.map((m) => ({ x: Number(m.x.toFixed(2)), y: Number(m.y.toFixed(2)), square: m.square })));
    }

    targets.forEach((t) => marker(t.x, t.y, t.label + (t.square ? " · " + t.square : "")));
    renderLandmarks();

    img.addEventListener("mousemove", (ev) => {
      if (!coords) return;
      const p = toPixels(ev);
      coords.textContent = "x " + p.x.toFixed(0) + ", y " + p.y.toFixed(0) + " px";
    });
    img.addEventListener("click", (ev) => {
      const p = toPixels(ev);
      if (mode() === "landmark") {
        const square = window.prompt("Name of the square whose centre you clicked (e.g. C4):", "");
        if (square === null) return;
        landmarks.push({ x: p.x, y: p.y, square: square.trim().toUpperCase() });
        renderLandmarks();
        return;
      }
      if (!targetForm) return;
      targetForm.elements.x.value = p.x.toFixed(1);
      targetForm.elements.y.value = p.y.toFixed(1);
      if (pending) pending.remove();
      pending = marker(p.x, p.y, "new", "pending");
      const label = targetForm.elements.label;
      if (label) label.focus();
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll("[data-upload-zone]").forEach(initUpload);
    document.querySelectorAll("[data-poll-image]").forEach(initPoll);
    document.querySelectorAll("[data-image-map]").forEach(initMap);
  });
})();
