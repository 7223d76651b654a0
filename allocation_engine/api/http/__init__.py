"""The HTTP edge beside gRPC: platform webhooks and REST (FastAPI, served by uvicorn)."""
