// Draws the analytics view with Chart.js (bundled from npm by the web build; nothing is loaded from a CDN).
import {
  ArcElement, BarController, BarElement, CategoryScale, Chart, DoughnutController, Legend, LinearScale, Tooltip,
} from 'chart.js';
import { disconnectTypes, durations, leversAndReasons, timeline } from './analytics.js';

Chart.register(ArcElement, BarController, BarElement, CategoryScale, DoughnutController, Legend, LinearScale, Tooltip);

const PALETTE = ['#2563eb', '#dc2626', '#16a34a', '#d97706', '#7c3aed', '#0891b2', '#db2777', '#4b5563'];
const charts = new Map();

function draw(id, config, total) {
  charts.get(id)?.destroy();
  const canvas = document.getElementById(id);
  // What a chart holds, readable without pixels: tests and assistive tools read these.
  canvas.dataset.total = String(total);
  canvas.setAttribute('role', 'img');
  canvas.setAttribute('aria-label', `${canvas.closest('figure')?.querySelector('figcaption')?.textContent ?? id}: ${describe(config)}`);
  charts.set(id, new Chart(canvas, {
    ...config,
    options: { animation: false, responsive: true, maintainAspectRatio: false, ...config.options },
  }));
}

function describe(config) {
  const { labels } = config.data;
  return config.data.datasets
    .map((set) => `${set.label ?? ''} ${labels.map((l, i) => `${l}=${set.data[i]}`).filter((x) => !x.endsWith('=0')).join(', ')}`.trim())
    .join('; ') || 'no data';
}

const integerAxis = { beginAtZero: true, ticks: { precision: 0 } };

function doughnut(id, counts) {
  const labels = [...counts.keys()];
  const data = [...counts.values()];
  draw(id, {
    type: 'doughnut',
    data: { labels, datasets: [{ data, backgroundColor: labels.map((_, i) => PALETTE[i % PALETTE.length]) }] },
    options: { plugins: { legend: { position: 'right' } } },
  }, data.reduce((a, b) => a + b, 0));
}

/** @param {{conversations: object[], from: number, to: number}} result @param {object[]} audits @param {string} range */
export function renderCharts({ conversations, from, to }, audits, range) {
  const t = timeline(conversations, range, from, to);
  draw('chart-timeline', {
    type: 'bar',
    data: {
      labels: t.labels,
      datasets: [
        { label: 'started', data: t.started, backgroundColor: PALETTE[0] },
        { label: 'ended', data: t.ended, backgroundColor: PALETTE[1] },
      ],
    },
    options: { scales: { y: integerAxis } },
  }, conversations.length);

  const d = durations(conversations);
  draw('chart-durations', {
    type: 'bar',
    data: { labels: d.labels, datasets: [{ label: 'ended conversations', data: d.counts, backgroundColor: PALETTE[2] }] },
    options: { scales: { y: integerAxis }, plugins: { legend: { display: false } } },
  }, d.counts.reduce((a, b) => a + b, 0));

  doughnut('chart-disconnects', disconnectTypes(conversations));
  const { levers, reasons } = leversAndReasons(audits, conversations);
  doughnut('chart-levers', levers);
  const reasonLabels = [...reasons.keys()];
  draw('chart-reasons', {
    type: 'bar',
    data: { labels: reasonLabels, datasets: [{ label: 'terminations', data: [...reasons.values()], backgroundColor: PALETTE[3] }] },
    options: { indexAxis: 'y', scales: { x: integerAxis }, plugins: { legend: { display: false } } },
  }, [...reasons.values()].reduce((a, b) => a + b, 0));
}
