// Worker-thread entry for chips (export/chip.pool.ts starts it): loads the TypeScript through tsx's
// loader, as bin/tuban.mjs does for the CLI, then runs export/chip.worker.ts.
import { register } from 'tsx/esm/api';

register();
await import('./chip.worker.ts');
