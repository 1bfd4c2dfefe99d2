// Stack IO: reading EM stacks (multi-page TIFF, folders of slice images, single images) and writing TIFF stacks.
//
//   openStack(path) ──> stack.ts ──┬─ TIFF ─────────> tiff-read.ts (IFDs at open, pages on demand) ─> tiff-codecs.ts
//                                  ├─ folder ───────> per file: tiff-read.ts or image-read.ts (sharp)
//                                  └─ PNG/JPEG ─────> image-read.ts
//                     readSlice(z) ─> slice-cache.ts (LRU, bounded by bytes and slices) ─> Image2D
//   writeTiffStack(path, slices) ─> tiff-write.ts (streamed, atomic rename, BigTIFF past 4 GiB, ImageJ metadata)
//
// Every problem with a user's file is a StackError (`<file>: <problem>`, userFacing).
export { openStack, type OpenStackOptions, type Stack, type StackInfo } from './stack';
export { writeTiffStack, type WriteTiffOptions, type WriteTiffResult } from './tiff-write';
export { StackError } from './errors';
export type { PixelSizeNm, PixelType } from './types';
