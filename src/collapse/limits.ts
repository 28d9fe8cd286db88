// Numeric limits of the collapse algorithm. The WASM core takes the same numbers from
// `init()`, so both implementations always run with identical limits (see docs/collapse.md).

export interface CollapseLimits {
  /** A repeated block must cover at least this many normalised lines. */
  minPeriodLines: number;
  /** A block must repeat at least this many times in a row. */
  minRepetitions: number;
  /** Longest block, in items (lines or already-collapsed repeats). */
  maxPeriodItems: number;
  /** How many candidate periods are tried at one start position. */
  candidatesPerStart: number;
  /** Bytes of input held at once; a segment is processed when the next line would not fit. */
  segmentBytes: number;
  /** Lines held at once. */
  segmentLines: number;
  /** A line longer than this streams straight through and is never part of a repeat. */
  longLineBytes: number;
  /** Nesting depth and passes per level. */
  maxDepth: number;
  /** A branch re-walk becomes a reference to earlier output when it covers at least this many keyed lines. */
  minReferenceLines: number;
}

export const DEFAULT_LIMITS: Readonly<CollapseLimits> = Object.freeze({
  minPeriodLines: 5,
  minRepetitions: 3,
  maxPeriodItems: 1024,
  candidatesPerStart: 32,
  segmentBytes: 16 * 1024 * 1024,
  segmentLines: 1 << 18,
  longLineBytes: 16 * 1024 * 1024,
  maxDepth: 16,
  minReferenceLines: 5,
});

/** Checks limits supplied by a caller (tests shrink them to exercise segment edges). */
export function resolveLimits(overrides: Partial<CollapseLimits> = {}): CollapseLimits {
  const limits = { ...DEFAULT_LIMITS, ...overrides };
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isSafeInteger(value) || value < 1 || value > 0x7fffffff) {
      throw new RangeError(`collapse limit ${name} must be an integer in 1..2^31-1, got ${value}`);
    }
  }
  if (limits.minRepetitions < 3) throw new RangeError('collapse limit minRepetitions must be >= 3');
  if (limits.segmentBytes < 1024) throw new RangeError('collapse limit segmentBytes must be >= 1024');
  if (limits.longLineBytes > limits.segmentBytes) {
    throw new RangeError('collapse limit longLineBytes must not exceed segmentBytes');
  }
  return limits;
}
