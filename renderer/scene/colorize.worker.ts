// The colorize worker: tile pixels + style in, an ImageBitmap out (transferred, not copied). Keeping this off the UI
// thread means a slice switch or a brightness change never stalls panning; the UI thread only draws bitmaps.
import { colorize, type TilePixels, type TileStyle } from './colorize';

export interface ColorizeRequest {
  id: number;
  style: TileStyle;
  width: number;
  height: number;
  data: TilePixels;
  /** The previous round's tile, for the difference view. */
  previous?: TilePixels;
}

export type ColorizeReply = { id: number; bitmap: ImageBitmap } | { id: number; error: string };

const scope = self as unknown as {
  onmessage: ((e: MessageEvent<ColorizeRequest>) => void) | null;
  postMessage(m: ColorizeReply, transfer?: Transferable[]): void;
};

scope.onmessage = (e) => {
  const r = e.data;
  try {
    const rgba = colorize(r.style, r.width, r.height, r.data, r.previous);
    createImageBitmap(new ImageData(rgba, r.width, r.height)).then(
      (bitmap) => scope.postMessage({ id: r.id, bitmap }, [bitmap]),
      (err: unknown) => scope.postMessage({ id: r.id, error: String(err) }),
    );
  } catch (err) {
    scope.postMessage({ id: r.id, error: String(err) });
  }
};
