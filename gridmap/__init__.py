"""gridmap: grid-based governance (网格化服务管理) on a map.

The core (``gridmap.geo``, ``gridmap.storage``, ``gridmap.issues.counts``…) knows no Flask;
the web layer lives in ``gridmap.web`` and is built by :func:`gridmap.web.create_app`.
"""

__version__ = "0.1.0"


def create_app(config=None):
    """Build the Flask application (imported lazily so the core never loads Flask)."""
    from gridmap.web import create_app as _create_app

    return _create_app(config)
