/**
 * The endpoint types and `defineEndpoints` live in `contract/` (shared by the client and the
 * adapters' `serve`); re-exported here so existing imports keep working.
 * @module
 */
export * from '../contract/endpoint.js';
