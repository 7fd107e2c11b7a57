/**
 * Just enough XML for S3's answers: they are flat, namespace-default documents without
 * attributes we need, CDATA or comments, so reading `<Tag>text</Tag>` is all it takes.
 * Not a general XML parser.
 */

/** The inner text of every `<tag>...</tag>` directly or deeply inside `xml`, in order. */
export function xmlBlocks(xml: string, tag: string): string[] {
  const out: string[] = [];
  const open = new RegExp(`<${tag}(?:\\s[^>]*)?>`, 'g');
  const close = `</${tag}>`;
  let m: RegExpExecArray | null;
  while ((m = open.exec(xml)) !== null) {
    const start = m.index + m[0].length;
    const end = xml.indexOf(close, start);
    if (end === -1) break;
    out.push(xml.slice(start, end));
    open.lastIndex = end + close.length;
  }
  return out;
}

/** The decoded text of the first `<tag>`, or null when there is none (`<tag/>` is ''). */
export function xmlText(xml: string, tag: string): string | null {
  const block = xmlBlocks(xml, tag)[0];
  if (block !== undefined) return decodeXml(block);
  return new RegExp(`<${tag}\\s*/>`).test(xml) ? '' : null;
}

const NAMED: Readonly<Record<string, string>> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

export function decodeXml(text: string): string {
  return text.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[a-z]+);/g, (whole, ref: string) => {
    if (ref.startsWith('#x')) return String.fromCodePoint(Number.parseInt(ref.slice(2), 16));
    if (ref.startsWith('#')) return String.fromCodePoint(Number.parseInt(ref.slice(1), 10));
    return NAMED[ref] ?? whole;
  });
}

export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&${c === '&' ? 'amp' : c === '<' ? 'lt' : c === '>' ? 'gt' : c === '"' ? 'quot' : 'apos'};`);
}
