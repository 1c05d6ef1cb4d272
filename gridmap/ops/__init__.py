"""Operations: backup and restore, the production server."""
