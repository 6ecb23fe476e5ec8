import './messenger.css';
import { version } from '../guest/parley-guest.js';
document.title = `Parley messenger ${version}`;
