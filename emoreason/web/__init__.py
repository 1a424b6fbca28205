"""`emoreason web`: a browser app over the `chat` engine, a view of what the model saw, and eval results.

An application layer like the CLI: it may use `emoreason.eval` (the results view), and nothing in
the core imports it. Gradio is imported only by `app` and the modules it builds, so the helpers
(`uploads`, `inspection`, `results`) stay importable and testable without it.
"""
