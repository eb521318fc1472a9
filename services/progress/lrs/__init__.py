"""The xAPI Learning Record Store (issue 3): statements, documents, credentials."""
