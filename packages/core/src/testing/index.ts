/**
 * Test helpers for code that uses Trellis: a manual clock. Not for production code.
 * @module
 */
export { createTestClock, type TestClock } from './TestClock.js';
