"""Tables of the interoperability interfaces: Open311 API keys and request tokens."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from gridmap.storage.models import Base, UTCDateTime


class ApiKey(Base):
    """An Open311 client's key; only its SHA-256 hash is stored (the key is shown once)."""

    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Open311Token(Base):
    """The token handed out for a request posted through Open311 (GET tokens/{token})."""

    __tablename__ = "open311_tokens"
    token: Mapped[str] = mapped_column(String(32), primary_key=True)
    issue_id: Mapped[int] = mapped_column(ForeignKey("issues.id", ondelete="CASCADE"), index=True)
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
