// Slice-range parsing shared by the CLI and the API: "20-29", "0-9,15,17-19".
export function parseSliceRange(spec: string, depth?: number): number[] {
  const out = new Set<number>();
  for (const part of spec.split(',').map((s) => s.trim()).filter(Boolean)) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) throw Object.assign(new Error(`bad slice range '${spec}' (expected e.g. 20-29 or 0-9,15)`), { userFacing: true });
    const a = Number(m[1]);
    const b = m[2] !== undefined ? Number(m[2]) : a;
    if (b < a) throw Object.assign(new Error(`bad slice range '${part}': end before start`), { userFacing: true });
    for (let i = a; i <= b; i++) out.add(i);
  }
  const list = [...out].sort((x, y) => x - y);
  if (depth !== undefined) {
    const bad = list.find((i) => i >= depth);
    if (bad !== undefined) throw Object.assign(new Error(`slice ${bad} is out of range: the stack has ${depth} slices (0-${depth - 1})`), { userFacing: true });
  }
  return list;
}

export function formatSliceRange(list: number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < list.length; ) {
    let j = i;
    while (j + 1 < list.length && list[j + 1] === list[j] + 1) j++;
    parts.push(i === j ? `${list[i]}` : `${list[i]}-${list[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}
