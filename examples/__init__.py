"""Runnable examples: the seed README's agents with only their import paths changed."""
