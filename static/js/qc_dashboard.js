// Draws each dashboard chart with Chart.js (static/vendor/chartjs) from the configuration the server
// wrote next to it; the numbers are also in the table under each chart and in its CSV.
document.addEventListener("DOMContentLoaded", () => {
  if (!window.Chart) return;
  Chart.defaults.maintainAspectRatio = false;
  Chart.defaults.animation = false;
  document.querySelectorAll("canvas[data-chart]").forEach((canvas) => {
    const source = document.getElementById(canvas.dataset.chart);
    if (source) new Chart(canvas, JSON.parse(source.textContent));
  });
});
