import { createWriteStream } from 'node:fs';
import yazl from 'yazl';

/** Zip files under the names given (folder/name inside the archive), to a buffer or a file. */
export function zipFiles(entries: { path: string; name: string }[], outPath?: string): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const zip = new yazl.ZipFile();
    for (const e of entries) zip.addFile(e.path, e.name);
    if (outPath) {
      zip.outputStream
        .pipe(createWriteStream(outPath))
        .on('close', () => resolve(null))
        .on('error', reject);
    } else {
      const chunks: Buffer[] = [];
      zip.outputStream
        .on('data', (c: Buffer) => chunks.push(c))
        .on('end', () => resolve(Buffer.concat(chunks)))
        .on('error', reject);
    }
    zip.end();
  });
}
