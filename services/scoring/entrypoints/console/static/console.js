/* Expansion Radar console: draws the charts (uPlot, vendored) from JSON the server embedded, and polls for
   live alerts. Text from accounts is only ever set with textContent, never as HTML. */
(function () {
  "use strict";
  const PALETTE = ["#4f46e5", "#0ea5e9", "#16a34a", "#f59e0b", "#db2777", "#64748b"];
  const LEVELS = { "80%": "#facc15", "90%": "#f97316", "95%": "#ef4444", limit: "#111827" };

  function readJson(id) {
    const node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }
  function width(el) { return Math.max(240, el.clientWidth || el.parentElement.clientWidth || 480); }
  function markDrawn(el) { el.dataset.drawn = "true"; }

  function usageChart(el, chart) {
    const times = chart.times.length > 1 ? chart.times : [chart.times[0] - 86400, chart.times[0]];
    const values = chart.values.length > 1 ? chart.values : [null, chart.values[0]];
    const data = [times, values];
    const series = [{}, { label: chart.metric, stroke: PALETTE[0], width: 2, fill: "rgba(79,70,229,0.08)", points: { size: 6 } }];
    Object.entries(chart.lines).forEach(([label, level]) => {
      data.push(times.map(() => level));
      series.push({ label, stroke: LEVELS[label] || "#94a3b8", width: 1, dash: label === "limit" ? [] : [6, 4], points: { show: false } });
    });
    const top = Math.max(chart.lines.limit || 0, ...chart.values) * 1.1 || 1;
    new uPlot({ width: width(el), height: 180, series, scales: { y: { range: [0, top] } }, legend: { show: true, live: false },
      axes: [{}, { size: 60 }] }, data, el);
    markDrawn(el);
  }

  function categoryChart(el, source, bars) {
    const labels = source.labels;
    const known = Object.values(source.series).some((values) => values.some((v) => v != null));
    if (!labels.length || !known) {
      el.textContent = "No data for these quarters yet.";
      el.classList.add("empty");
      markDrawn(el);
      return;
    }
    const asPercent = el.dataset.percent === "1";
    const xs = labels.map((_, i) => i);
    const data = [xs];
    const series = [{}];
    Object.entries(source.series).forEach(([name, values], i) => {
      data.push(values);
      const s = { label: name, stroke: PALETTE[i % PALETTE.length], width: 2,
        value: (u, v) => v == null ? "—" : (asPercent || name === "Precision" ? (v * 100).toFixed(1) + "%" : v.toFixed(2) + "×") };
      if (bars) {
        s.fill = PALETTE[i % PALETTE.length] + "cc";
        s.paths = uPlot.paths.bars({ size: [0.35, 60], align: i === 1 ? -1 : 1 });
        s.points = { show: false };
        if (name === "Lift") s.scale = "lift";
      } else { s.points = { size: 7 }; }
      series.push(s);
    });
    const axes = [
      { values: (u, splits) => splits.map((v) => labels[v] || ""), splits: () => xs, gap: 8 },
      { size: 56, values: (u, vals) => vals.map((v) => (asPercent || bars ? (v * 100).toFixed(0) + "%" : v)) },
    ];
    const scales = { x: { time: false, range: [-0.6, xs.length - 0.4] },
      y: { range: (u, min, max) => [Math.min(0, min || 0), Math.max(asPercent ? 1.1 : 1, max || 0)] },
      lift: { range: (u, min, max) => [0, Math.max(2, max || 0)] } };
    if (bars) { axes.push({ side: 1, scale: "lift", grid: { show: false }, values: (u, vals) => vals.map((v) => v.toFixed(1) + "×") }); }
    new uPlot({ width: width(el), height: 220, series, axes, scales, legend: { live: false } }, data, el);
    markDrawn(el);
  }

  function drawCharts() {
    if (typeof uPlot === "undefined") return;
    const usage = readJson("usage-data") || [];
    document.querySelectorAll('[data-chart="usage"]').forEach((el) => usageChart(el, usage[Number(el.dataset.index)]));
    document.querySelectorAll('[data-chart="lines"]').forEach((el) => categoryChart(el, readJson(el.dataset.source), false));
    document.querySelectorAll('[data-chart="bars"]').forEach((el) => categoryChart(el, readJson(el.dataset.source), true));
  }

  function liveItem(alert) {
    const li = document.createElement("li");
    li.dataset.alertId = alert.alert_id;
    const link = document.createElement("a");
    link.href = alert.url;
    link.textContent = alert.account_name;
    const score = document.createElement("span");
    score.className = "score";
    score.textContent = alert.score;
    const what = document.createElement("div");
    what.className = "sub";
    what.textContent = `${alert.tier} · ${alert.what} · ${new Date(alert.at).toLocaleString()}`;
    const head = document.createElement("div");
    head.append(score, " ", link);
    li.append(head, what);
    return li;
  }

  function pollLive() {
    const list = document.getElementById("live-alerts");
    if (!list) return;
    const status = document.getElementById("live-status");
    let after = null;
    const seen = new Set();
    async function tick() {
      try {
        const response = await fetch(list.dataset.poll + (after ? "?after=" + encodeURIComponent(after) : ""), { credentials: "same-origin" });
        if (response.status === 401) { window.location.href = "/ui/login"; return; }
        const body = await response.json();
        body.items.slice().reverse().forEach((alert) => {
          if (seen.has(alert.alert_id)) return;
          seen.add(alert.alert_id);
          const item = liveItem(alert);
          if (after) item.classList.add("fresh");
          list.prepend(item);
        });
        if (body.items.length) after = body.items[0].at;
        status.textContent = `updated ${new Date().toLocaleTimeString()} · ${seen.size} alert${seen.size === 1 ? "" : "s"}`;
      } catch (error) {
        status.textContent = "connection lost; retrying";
      }
      setTimeout(tick, 3000);
    }
    tick();
  }

  document.addEventListener("DOMContentLoaded", () => { drawCharts(); pollLive(); });
})();
