"""Per-address request rate limits: rules, the sliding window, and where the counts are kept
(the database or Redis) so that every API replica counts the same requests."""
