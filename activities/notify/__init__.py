"""Notifications: channels, approval e-mails in and out."""
