// The operations console (issue 13 item 6): a placeholder entry until the console lands. Chart.js is bundled from npm.
import './console.css';
import { Chart } from 'chart.js/auto';

document.getElementById('status').textContent = `Console placeholder (Chart.js ${Chart.version}).`;
