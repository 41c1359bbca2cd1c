"""The service layer: validation, storage, delivery and presence, shared by every entry point."""
