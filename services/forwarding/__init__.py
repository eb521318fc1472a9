"""Forwarding: statements sent on to other LRSs (a national or ministry LRS), durably and in order (issue 15)."""
