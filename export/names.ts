/**
 * Names that leave the server: the download name of an export and the folders inside a town
 * package. Codes and names come from users and from imported layers, so they are reduced to
 * letters, digits, `.`, `_` and `-` before they name anything; no separator, no leading dot.
 */

/** `name` made safe as a file or folder name: anything else becomes `_`, leading dots go. */
export function safeName(name: string, fallback = 'export'): string {
  const s = name
    .normalize('NFC')
    .replace(/[^\p{L}\p{N}._-]+/gu, '_')
    .replace(/^[._]+/, '')
    .slice(0, 120);
  return s || fallback;
}

/** A download name: safe, and ASCII for the plain `filename=` parameter (the UTF-8 one carries the rest). */
export function downloadName(name: string): string {
  return safeName(name).replace(/[^\x20-\x7e]/g, '_');
}
