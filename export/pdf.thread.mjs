// Worker-thread entry for PDF sheets (export/pdf.run.ts starts it): loads the TypeScript through
// tsx's loader, as bin/tuban.mjs does for the CLI, then runs export/pdf.worker.ts.
import { register } from 'tsx/esm/api';

register();
await import('./pdf.worker.ts');
