// Reconstruction pages: a job page that follows its job, the slice viewer, and resumable uploads.
// Every page works without it (the job page then needs a reload; the upload then goes in one request).
document.addEventListener("DOMContentLoaded", () => {
  followJob();
  sliceViewer();
  chunkedUpload();
});

function followJob() {
  const box = document.querySelector("[data-job-live]");
  if (!box || box.dataset.jobFinished === "1") return;
  const url = box.dataset.jobLive;
  const tick = async () => {
    try {
      const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (!response.ok) return setTimeout(tick, 5000);
      const job = await response.json();
      document.querySelector("[data-job-progress]").value = job.progress;
      document.querySelector("[data-job-percent]").textContent = `${job.progress} %`;
      const log = document.querySelector("[data-job-log]");
      if (log) log.textContent = job.log;
      if (["succeeded", "failed", "cancelled"].includes(job.state)) { window.location.reload(); return; }
      document.querySelector("[data-job-state]").textContent = job.state;
    } catch (error) { /* offline for a moment: try again */ }
    setTimeout(tick, 2000);
  };
  setTimeout(tick, 1500);
}

function sliceViewer() {
  const viewer = document.querySelector("[data-slice-viewer]");
  if (!viewer) return;
  const base = viewer.dataset.url.replace(/xy\.png$/, "");
  const plane = viewer.querySelector("[data-plane]");
  const slider = viewer.querySelector("[data-slice]");
  const low = viewer.querySelector("[data-low-input]");
  const high = viewer.querySelector("[data-high-input]");
  const image = viewer.querySelector("[data-slice-image]");
  const label = viewer.querySelector("[data-slice-label]");
  const resize = () => {
    const size = Number(plane.selectedOptions[0].dataset.size);
    slider.max = String(size - 1);
    slider.value = String(Math.floor(size / 2));
  };
  let pending = null;
  const show = () => {
    clearTimeout(pending);
    pending = setTimeout(() => {
      const params = new URLSearchParams({ index: slider.value, low: low.value, high: high.value });
      image.src = `${base}${plane.value}.png?${params}`;
      label.textContent = `${Number(slider.value) + 1} of ${Number(slider.max) + 1}`;
    }, 60);
  };
  plane.addEventListener("change", () => { resize(); show(); });
  [slider, low, high].forEach((input) => input.addEventListener("input", show));
  resize();
  show();
}

const CHUNK = 8 * 1024 * 1024;

function csrf() {
  const input = document.querySelector("input[name=csrfmiddlewaretoken]");
  return input ? input.value : "";
}

// Files above one chunk go to the dataset-uploads API in 8 MiB pieces; a failed piece is retried from the
// offset the server reports, so a dropped connection resumes. The form is then sent with the upload's id.
function chunkedUpload() {
  const form = document.querySelector("[data-dataset-form]");
  if (!form) return;
  const fileInput = form.querySelector("input[type=file][name=file]");
  const progress = form.querySelector("[data-upload-progress]");
  form.addEventListener("submit", async (event) => {
    const file = fileInput && fileInput.files[0];
    if (!file || file.size <= CHUNK) return;
    event.preventDefault();
    const api = form.dataset.uploadApi;
    const headers = { "X-CSRFToken": csrf() };
    progress.hidden = false;
    try {
      const labResponse = await fetch(`${api}`, {
        method: "POST", credentials: "same-origin",
        headers: { ...headers, "Content-Type": "application/json" },
        body: JSON.stringify({ filename: file.name, size_bytes: file.size }),
      });
      const upload = await labResponse.json();
      if (!labResponse.ok) throw new Error(upload.detail || JSON.stringify(upload));
      let offset = 0;
      let failures = 0;
      while (offset < file.size) {
        const piece = file.slice(offset, offset + CHUNK);
        const response = await fetch(`${api}${upload.id}/chunk/?offset=${offset}`, {
          method: "PUT", credentials: "same-origin",
          headers: { ...headers, "Content-Type": "application/octet-stream" }, body: piece,
        }).catch(() => null);
        if (response && response.ok) {
          offset = (await response.json()).received_bytes;
          failures = 0;
        } else {
          failures += 1;
          if (failures > 20) throw new Error("the connection keeps dropping; try again later — the upload resumes");
          await new Promise((resolve) => setTimeout(resolve, 1000 * failures));
          const state = await fetch(`${api}${upload.id}/`, { credentials: "same-origin" }).then((r) => r.json()).catch(() => null);
          if (state) offset = state.received_bytes;
        }
        progress.textContent = `Uploading ${file.name}: ${Math.round((100 * offset) / file.size)} %`;
      }
      const hidden = document.createElement("input");
      hidden.type = "hidden"; hidden.name = "upload"; hidden.value = upload.id;
      form.appendChild(hidden);
      fileInput.value = "";
      progress.textContent = "Upload complete; reading the file…";
      form.submit();
    } catch (error) {
      progress.textContent = `Upload failed: ${error.message}`;
    }
  });
}
