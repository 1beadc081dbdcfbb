"""Messages generated from proto/nearcache.proto (tools/genproto.py)."""
