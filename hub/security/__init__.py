"""Who is asking, and what they may see: authentication, access levels, small-cell
suppression, request limits and the audit log (docs/security.md)."""
