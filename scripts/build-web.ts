// `npm run build` (and `npm ci`/`npm install`, as prepare): the web app into dist/web, once, so that
// `tuban serve` starts without bundling.
import { bundleWeb, WEB_DIST } from '../server/web.ts';

const t0 = performance.now();
await bundleWeb();
console.log(`web app built into ${WEB_DIST} in ${Math.round(performance.now() - t0)} ms`);
