import { describe, expect, it } from 'vitest';
import { cameraInstant, evidenceStage, photoFlags, type PhotoFacts } from '../workflow/evidence.proof.ts';

const rules = { maxDistanceM: 100, cityOffsetH: 8 };
const facts = (over: Partial<PhotoFacts>): PhotoFacts => ({
  takenAt: '2024-03-20T10:00:00',
  hasPosition: true,
  distanceM: 12,
  uploadedAt: new Date('2024-03-20T02:30:00Z'), // 10:30 in the city
  dispatchedAt: new Date('2024-03-18T01:00:00Z'),
  rectifyFrom: null,
  stage: 'verify',
  ...over,
});

describe('what a photo proves', () => {
  it("reads a camera's clock in its own offset, else in the city's", () => {
    expect(cameraInstant('2024-03-20T10:00:00', 8)?.toISOString()).toBe('2024-03-20T02:00:00.000Z');
    expect(cameraInstant('2024-03-20T10:00:00+09:00', 8)?.toISOString()).toBe('2024-03-20T01:00:00.000Z');
    expect(cameraInstant('2024-03-20T10:00:00', 5.5)?.toISOString()).toBe('2024-03-20T04:30:00.000Z');
    expect(cameraInstant('2024-13-45T10:00:00', 8)).toBeNull();
    expect(cameraInstant(null, 8)).toBeNull();
  });

  it('flags nothing on a photo taken on site between dispatch and upload', () => {
    expect(photoFlags(facts({}), rules)).toEqual([]);
  });

  it('flags time and place missing, before dispatch, after upload and far, each on its own', () => {
    expect(photoFlags(facts({ takenAt: null, hasPosition: false, distanceM: null }), rules)).toEqual([
      'no_time',
      'no_position',
    ]);
    expect(photoFlags(facts({ takenAt: '2024-03-17T23:00:00' }), rules)).toEqual(['before_dispatch']);
    // EXIF keeps whole seconds: a photo in the minute of the dispatch is after it
    expect(photoFlags(facts({ takenAt: '2024-03-18T08:59:30' }), rules)).toEqual([]);
    expect(photoFlags(facts({ takenAt: '2024-03-20T10:39:00' }), rules)).toEqual([]); // 9 minutes ahead: a drifting clock
    expect(photoFlags(facts({ takenAt: '2024-03-20T10:41:00' }), rules)).toEqual(['after_upload']);
    expect(photoFlags(facts({ distanceM: 100 }), rules)).toEqual([]);
    expect(photoFlags(facts({ distanceM: 100.5 }), rules)).toEqual(['far']);
  });

  it('flags a rectification photo taken before the order, and knows the stage from the state', () => {
    const order = new Date('2024-03-19T06:00:00Z'); // 14:00 in the city
    expect(photoFlags(facts({ stage: 'rectify', rectifyFrom: order, takenAt: '2024-03-19T13:00:00' }), rules)).toEqual([
      'before_rectify',
    ]);
    expect(photoFlags(facts({ stage: 'rectify', rectifyFrom: order }), rules)).toEqual([]);
    expect(evidenceStage('dispatched')).toBe('verify');
    expect(evidenceStage('illegal')).toBe('verify');
    expect(evidenceStage('rectifying')).toBe('rectify');
    expect(evidenceStage('rectified')).toBe('rectify');
  });
});
