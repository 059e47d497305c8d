"""Mail transport: SMTP sending, IMAP IDLE watching, messages and reply parsing."""
