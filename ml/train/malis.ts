// The MALIS loss (Turaga et al. 2009, "Maximin affinity learning of image segmentation"), in its constrained form
// (Funke et al. 2018, "Large scale image segmentation with structured loss based deep learning for connectome
// reconstruction"), for a map of P(membrane) per pixel rather than affinities.
//
// Two pixels end up in one segment when some path joins them whose strongest membrane value is low; the maximin edge of
// that path decides. MALIS weighs the loss at exactly those decisive pixels by how many pixel pairs they decide:
//  - the merge pass: every pair of pixels from two different true segments is joined, along the path whose highest
//    P(membrane) is lowest, at one pixel — the weakest point of the membrane between them. That pixel should read
//    membrane; it gets the pair's weight towards 1. One missing pixel in a long membrane decides every pair across it
//    and gets the weight of all of them, which a per-pixel loss gives only its one pixel's worth.
//  - the split pass: every pair of pixels of one true segment is joined, inside that segment, along the path whose
//    highest P(membrane) is lowest, at that highest pixel — where a spurious membrane across the cell is weakest. That
//    pixel should read interior; it gets the pair's weight towards 0.
// Constrained: the merge pass treats every edge inside a true segment as certain (joined first), the split pass uses
// only edges inside a true segment, so each pass sees one kind of error (Funke et al. 2018, section 2.2).
//
// Graph: 4-connected pixels; an edge's affinity is 1 − max(P) of its two pixels, and that pixel is the edge's decisive
// pixel. Kruskal's algorithm over edges in order of decreasing affinity with a union-find that counts, per component,
// the pixels of each true segment gives the pair counts of every merge in O(n log n).
import { checkImageSize, connectedComponents, find } from '../segmentation/components';

export interface MalisWeights {
  /** Per pixel: the share of all pairs of different true segments this pixel decides (sums to 1 when any exist). */
  toMembrane: Float32Array;
  /** Per pixel: the share of all pairs within one true segment this pixel decides (sums to 1 when any exist). */
  toInterior: Float32Array;
}

/** Edge k < n·2: pixel k >> 1 and its right (k even) or lower (k odd) neighbour. */
function edgeOther(k: number, width: number): number {
  const i = k >> 1;
  return k & 1 ? i + width : i + 1;
}

/**
 * MALIS weights for one map (P(membrane), row-major) against a membrane mask (1 = membrane, 0 = interior; true
 * segments are its 4-connected interior components).
 */
export function malisWeights(prob: ArrayLike<number>, target: ArrayLike<number>, width: number, height: number): MalisWeights {
  const n = width * height;
  checkImageSize(prob.length, width, height, 'malisWeights (map)');
  checkImageSize(target.length, width, height, 'malisWeights (target)');
  const interior = new Uint8Array(n);
  for (let i = 0; i < n; i++) interior[i] = target[i] > 0.5 ? 0 : 1;
  const { labels: seg, count: segments } = connectedComponents(interior, width, height, 4);

  // Candidate edges and their decisive pixels.
  const edges: number[] = [];
  for (let y = 0, i = 0; y < height; y++) {
    for (let x = 0; x < width; x++, i++) {
      if (x + 1 < width) edges.push(2 * i);
      if (y + 1 < height) edges.push(2 * i + 1);
    }
  }
  const decisive = (k: number): number => {
    const i = k >> 1;
    const j = edgeOther(k, width);
    return prob[i] >= prob[j] ? i : j;
  };
  const within = (k: number): boolean => {
    const a = seg[k >> 1];
    return a !== 0 && a === seg[edgeOther(k, width)];
  };
  // Lowest membrane value first = highest affinity first; ties by edge index, so the result is deterministic.
  const byAffinity = (list: number[]): number[] => {
    const key = new Float64Array(list.length);
    list.forEach((k, t) => (key[t] = prob[decisive(k)]));
    const order = Array.from(list.keys()).sort((a, b) => key[a] - key[b] || list[a] - list[b]);
    return order.map((t) => list[t]);
  };

  const toInterior = new Float32Array(n);
  const toMembrane = new Float32Array(n);

  // Split pass: edges inside true segments only; every component holds one segment's pixels, so a merge decides
  // size(A)·size(B) pairs.
  {
    const parent = new Int32Array(n);
    const size = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      parent[i] = i;
      size[i] = 1;
    }
    let total = 0;
    for (const k of byAffinity(edges.filter(within))) {
      const a = find(parent, k >> 1);
      const b = find(parent, edgeOther(k, width));
      if (a === b) continue;
      const pairs = size[a] * size[b];
      toInterior[decisive(k)] += pairs;
      total += pairs;
      const [big, small] = size[a] < size[b] ? [b, a] : [a, b];
      parent[small] = big;
      size[big] += size[small];
    }
    if (total > 0) for (let i = 0; i < n; i++) toInterior[i] /= total;
  }

  // Merge pass: edges inside true segments are joined first, whatever the map says; then the others by affinity.
  // A merge of components A and B decides Σ_{s≠t} A_s·B_t pairs of different segments (membrane pixels count none).
  {
    // Joining the edges inside true segments first makes each segment one component (segments are connected):
    // start from there, with one count per component, and every membrane pixel alone.
    const parent = new Int32Array(n);
    const counts: Array<Map<number, number> | undefined> = new Array(n);
    const labelled = new Float64Array(n);
    const root = new Int32Array(segments + 1).fill(-1);
    for (let i = 0; i < n; i++) {
      const s = seg[i];
      if (!s) {
        parent[i] = i;
        continue;
      }
      if (root[s] < 0) root[s] = i;
      const r = root[s];
      parent[i] = r;
      labelled[r]++;
    }
    for (let s = 1; s <= segments; s++) counts[root[s]] = new Map([[s, labelled[root[s]]]]);
    const union = (a: number, b: number): number => {
      // Small into large (by distinct segments), so every count moves O(log n) times.
      if ((counts[a]?.size ?? 0) < (counts[b]?.size ?? 0)) [a, b] = [b, a];
      let same = 0;
      const cb = counts[b];
      if (cb) {
        const into = counts[a] ?? (counts[a] = new Map());
        for (const [s, c] of cb) {
          const had = into.get(s) ?? 0;
          same += had * c;
          into.set(s, had + c);
        }
        counts[b] = undefined;
      }
      const pairs = labelled[a] * labelled[b] - same;
      labelled[a] += labelled[b];
      parent[b] = a;
      return pairs;
    };
    let total = 0;
    for (const k of byAffinity(edges.filter((k) => !within(k)))) {
      const a = find(parent, k >> 1);
      const b = find(parent, edgeOther(k, width));
      if (a === b) continue;
      const pairs = union(a, b);
      if (pairs > 0) {
        toMembrane[decisive(k)] += pairs;
        total += pairs;
      }
    }
    if (total > 0) for (let i = 0; i < n; i++) toMembrane[i] /= total;
  }
  return { toMembrane, toInterior };
}

/**
 * Folds the MALIS term into a batch's per-pixel BCE targets and weights, in place. Cross-entropy is linear in its
 * target, so w·BCE(p, y) + a·BCE(p, 1) + b·BCE(p, 0) = (w + a + b)·BCE(p, (w·y + a) / (w + a + b)): the term needs no
 * other loss. Each crop's two passes are scaled to `lambda` times the crop's pixel count, so at lambda 1 each pass weighs
 * as much in the loss as the mean per-pixel term of the whole crop (balanced weights average 1).
 */
export function addMalisTerm(prob: Float32Array, target: Float32Array, weight: Float32Array, crops: number, cropPx: number, lambda: number): void {
  const px = cropPx * cropPx;
  for (let c = 0; c < crops; c++) {
    const o = c * px;
    const m = malisWeights(prob.subarray(o, o + px), target.subarray(o, o + px), cropPx, cropPx);
    for (let i = 0; i < px; i++) {
      const a = m.toMembrane[i] * lambda * px;
      const b = m.toInterior[i] * lambda * px;
      if (a === 0 && b === 0) continue;
      const w = weight[o + i];
      const total = w + a + b;
      target[o + i] = (w * target[o + i] + a) / total;
      weight[o + i] = total;
    }
  }
}
