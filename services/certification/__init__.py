"""Certification: issuance rules, certificates, public verification, revocation (issue 5)."""
