"""Datasets: the LLM-Adapters JSON format and the offline embedded tasks."""
