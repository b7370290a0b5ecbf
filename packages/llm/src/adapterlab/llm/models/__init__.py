"""Backbones (real offline LLMs, tiny random ones for tests), the cached-bottom view used for
training the top layers, and Generative Adapter's generator."""
