-- Calls are kept for `[engine] keep-calls-days`, then forgotten oldest first.
CREATE INDEX inbound_calls_received ON inbound_calls (received_at);
