-- A plugin may be a webhook: an HTTP handler the host calls instead of a
-- component (then `wasm` is empty).
ALTER TABLE plugins ADD COLUMN webhook TEXT;
