/**
 * TIFF LZW decoding (TIFF 6.0 §13): MSB-first codes of 9 to 12 bits, Clear (256) and
 * EndOfInformation (257), code width growing one code early as libtiff writes it. Used by the
 * fast reader for LZW blocks; the output size is known from the block geometry.
 */
export function lzwDecode(input: Uint8Array, expectedBytes: number): Uint8Array {
  const out = new Uint8Array(expectedBytes);
  // The table as (prefix code, last byte, length); strings are written backwards from the end.
  const prefix = new Int32Array(4096);
  const suffix = new Uint8Array(4096);
  const length = new Int32Array(4096);
  for (let i = 0; i < 256; i++) {
    prefix[i] = -1;
    suffix[i] = i;
    length[i] = 1;
  }
  let next = 258, width = 9, op = 0, old = -1;
  let bitPos = 0;
  const totalBits = input.length * 8;
  const readCode = (): number => {
    if (bitPos + width > totalBits) return 257;
    let code = 0;
    for (let k = 0; k < width; ) {
      const byte = input[bitPos >> 3];
      const avail = 8 - (bitPos & 7);
      const take = Math.min(avail, width - k);
      const bits = (byte >> (avail - take)) & ((1 << take) - 1);
      code = (code << take) | bits;
      k += take;
      bitPos += take;
    }
    return code;
  };
  const emit = (code: number): number => {
    const len = length[code];
    let end = op + len;
    if (end > out.length) end = out.length; // the last string may run past the block: keep what fits
    let c = code;
    for (let i = op + len - 1; i >= op; i--) {
      if (i < end) out[i] = suffix[c];
      c = prefix[c];
    }
    const first = out[op] ?? suffix[code];
    op = end;
    return first;
  };
  for (;;) {
    const code = readCode();
    if (code === 257) break;
    if (code === 256) {
      next = 258;
      width = 9;
      old = -1;
      continue;
    }
    if (old === -1) {
      if (code > 255) throw new Error(`LZW: first code after a clear is ${code}`);
      emit(code);
      old = code;
      continue;
    }
    let first: number;
    if (code < next) {
      first = emit(code);
      if (next < 4096) {
        prefix[next] = old;
        suffix[next] = first;
        length[next] = length[old] + 1;
        next++;
      }
    } else if (code === next) {
      // the KwKwK case: the string is old's string plus its own first byte
      const firstOfOld = firstByte(old, prefix, suffix);
      if (next < 4096) {
        prefix[next] = old;
        suffix[next] = firstOfOld;
        length[next] = length[old] + 1;
        next++;
      }
      emit(code);
    } else {
      throw new Error(`LZW: code ${code} is beyond the table (${next})`);
    }
    old = code;
    if (op >= out.length) break;
    if (next + 1 >= 1 << width && width < 12) width++; // early change
  }
  return out;
}

function firstByte(code: number, prefix: Int32Array, suffix: Uint8Array): number {
  let c = code;
  while (prefix[c] !== -1) c = prefix[c];
  return suffix[c];
}
