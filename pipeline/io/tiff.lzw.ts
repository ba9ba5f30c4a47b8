/**
 * TIFF LZW decoding (TIFF 6.0 §13): MSB-first codes of 9 to 12 bits, Clear (256) and
 * EndOfInformation (257), code width growing one code early as libtiff writes it. Used by the
 * fast reader for LZW blocks; the output size is known from the block geometry.
 *
 * Every string in the table has already been written to the output once, so an entry is kept as
 * where it was written and how long it is, and emitting it is a copy from earlier output (no walk
 * down a chain of prefixes). Codes come from a bit buffer refilled two bytes at a time. Output that
 * would run past the block is dropped; input that ends without EndOfInformation keeps what was
 * decoded, as libtiff does.
 */
export function lzwDecode(input: Uint8Array, expectedBytes: number): Uint8Array {
  const out = new Uint8Array(expectedBytes);
  const cap = out.length;
  // entry k ≥ 258 is the string out[start[k], start[k] + length[k]); codes below 256 are single bytes
  const start = new Int32Array(4096);
  const length = new Int32Array(4096);
  let next = 258,
    width = 9,
    mask = 511,
    limit = 511;
  let op = 0,
    old = -1,
    oldStart = 0,
    oldLen = 0;
  let buf = 0,
    bits = 0,
    ip = 0;
  const n = input.length;
  for (;;) {
    if (bits < width) {
      // at most 11 bits are left, so 16 more fit in the 32-bit buffer; bits above them are masked off
      if (ip + 1 < n) {
        buf = (buf << 16) | (input[ip] << 8) | input[ip + 1];
        ip += 2;
        bits += 16;
      } else if (ip < n) {
        buf = (buf << 8) | input[ip++];
        bits += 8;
        if (bits < width) return out;
      } else return out;
    }
    bits -= width;
    const code = (buf >>> bits) & mask;
    const here = op;
    let len: number;
    if (code < 256) {
      out[op] = code; // op < cap: the loop ends when the output is full
      len = 1;
    } else if (code === 256) {
      next = 258;
      width = 9;
      mask = limit = 511;
      old = -1;
      continue;
    } else if (code === 257) {
      break;
    } else if (old === -1) {
      throw new Error(`LZW: first code after a clear is ${code}`);
    } else if (code < next) {
      len = length[code];
      let s = start[code];
      const e = op + len <= cap ? op + len : cap;
      for (let d = op; d < e; d++) out[d] = out[s++];
    } else if (code === next) {
      // the KwKwK case: the string is old's string plus its own first byte
      len = oldLen + 1;
      let s = oldStart;
      const e = op + len <= cap ? op + len : cap;
      const e1 = e < op + oldLen ? e : op + oldLen;
      for (let d = op; d < e1; d++) out[d] = out[s++];
      if (op + oldLen < cap) out[op + oldLen] = out[oldStart];
    } else {
      throw new Error(`LZW: code ${code} is beyond the table (${next})`);
    }
    if (old !== -1 && next < 4096) {
      // old's string and this string's first byte, just written one after the other
      start[next] = oldStart;
      length[next] = oldLen + 1;
      next++;
      if (next >= limit && width < 12) {
        width++; // early change
        mask = limit = (1 << width) - 1;
      }
    }
    op += len;
    old = code;
    oldStart = here;
    oldLen = len;
    if (op >= cap) break;
  }
  return out;
}
