"""The alert receiver: the FastAPI app (`app.create_app`), its settings (`config`), and serving it (`serve`).

Nothing is imported here, so the CLI's other commands do not pay for FastAPI and uvicorn.
"""
