import bytes from 'bytes';

/**
 * A size as the upload errors state it ("10 MB", "1.5 MB", "1000 B"): binary units, one decimal at
 * most. A quota of 1,000 bytes read "0.0 MB" (of which "0.0 MB used") when every size was put in MB.
 */
export function formatSize(size: number): string {
  return bytes.format(size, { decimalPlaces: 1, unitSeparator: ' ' }) ?? `${size} B`;
}
