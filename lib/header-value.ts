/** A request or response header as one string: repeated fields joined with commas (RFC 9110 5.3). */
export function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(', ') : value;
}
