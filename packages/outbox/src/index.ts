// @trellis/outbox: built under issue 20 (transactional outbox). Exports are added with the implementation.
export {};
