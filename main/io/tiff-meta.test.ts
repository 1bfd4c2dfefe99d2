// Pixel size from ImageJ, OME-XML and plain resolution metadata.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nmPerUnit, parseImageJDescription, parseOmeDescription, pixelSizeFromTiff } from './tiff-meta';

const close = (a: number | undefined, b: number): void => assert.ok(a !== undefined && Math.abs(a - b) < 1e-9 * b, `${a} ≈ ${b}`);

test('ImageJ: resolution in pixels per unit, z from spacing, escaped µ', () => {
  const px = pixelSizeFromTiff({ description: 'ImageJ=1.53t\nimages=30\nunit=micron\nspacing=0.05\nloop=false\n', xResolution: 250, yResolution: 200, resolutionUnit: 1 });
  close(px?.x, 4);
  close(px?.y, 5);
  close(px?.z, 50);
  const esc = pixelSizeFromTiff({ description: 'ImageJ=1.54f\nunit=\\u00B5m\n', xResolution: 125 });
  close(esc?.x, 8);
  close(esc?.y, 8);
  assert.equal(esc?.z, undefined);
  close(pixelSizeFromTiff({ description: 'ImageJ=1.54f\nunit=nm\nspacing=30\n', xResolution: 0.25 })?.z, 30);
  // ImageJ without calibration (unit=pixel) and no resolution: unknown.
  assert.equal(pixelSizeFromTiff({ description: 'ImageJ=1.54f\nunit=pixel\n' }), undefined);
  assert.equal(parseImageJDescription('hello'), undefined);
  assert.equal(parseImageJDescription('ImageJ=1.5\nimages=3\n')?.get('images'), '3');
});

test('OME-XML: PhysicalSize with units, default µm', () => {
  const xml = `<?xml version="1.0" encoding="UTF-8"?><OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06"><Image ID="Image:0"><Pixels ID="Pixels:0" DimensionOrder="XYZCT" Type="uint8" SizeX="512" SizeY="512" SizeZ="30" SizeC="1" SizeT="1" PhysicalSizeX="4.5" PhysicalSizeXUnit="nm" PhysicalSizeY="4.5" PhysicalSizeYUnit="nm" PhysicalSizeZ="0.04"></Pixels></Image></OME>`;
  const px = pixelSizeFromTiff({ description: xml, xResolution: 72 });
  close(px?.x, 4.5);
  close(px?.y, 4.5);
  close(px?.z, 40);
  assert.equal(parseOmeDescription(xml)?.sizeC, 1);
  const mu = pixelSizeFromTiff({ description: '<OME><Image><Pixels PhysicalSizeX="0.006" PhysicalSizeXUnit="μm"/></Image></OME>' });
  close(mu?.x, 6);
  close(mu?.y, 6);
});

test('plain resolution: centimetre and inch; 72/96 dpi placeholders are ignored', () => {
  const cm = pixelSizeFromTiff({ xResolution: 2.5e6, yResolution: 2.5e6, resolutionUnit: 3 });
  close(cm?.x, 4);
  const inch = pixelSizeFromTiff({ xResolution: 2.54e7 / 5, yResolution: 2.54e7 / 5 });
  close(inch?.x, 5);
  assert.equal(pixelSizeFromTiff({ xResolution: 72, yResolution: 72, resolutionUnit: 2 }), undefined);
  assert.equal(pixelSizeFromTiff({ xResolution: 96, yResolution: 96 }), undefined);
  assert.equal(pixelSizeFromTiff({ xResolution: 300, resolutionUnit: 1 }), undefined);
  assert.equal(pixelSizeFromTiff({}), undefined);
  assert.equal(nmPerUnit('furlong'), undefined);
});
